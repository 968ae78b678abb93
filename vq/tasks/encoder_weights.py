"""`model.backbone_weights`: one field that starts any family's encoder from
a Keras file, a torchvision file or another vq run's workdir.

Each task says which encoder it has (`Task.encoder()`: architecture, width
and where it sits in the model); this module resolves the conventions the
weights bring ('auto' input scaling and padding) and puts them in place.
"""
import dataclasses
import functools
import json
import os

from vq import checkpoint, run_config
from vq.config_base import ConfigError
from vq.models import pretrained, preprocessing
from vq.task_registry import get_task_class

PADDINGS = ("keras", "torch")


@dataclasses.dataclass(frozen=True)
class Encoder:
  """A task's pretrainable encoder."""
  architecture: str   # mobilenet_v2 | efficientnet_b0 | efficientnet_lite0/1/2
  alpha: float        # MobileNetV2 width multiplier (1.0 otherwise)
  module_path: str    # where its variables sit ('backbone', '' = root)


def add_config_fields(model_config):
  """The fields of `model` every family with an encoder has."""
  model_config.backbone_weights = ""  # Keras .h5, torchvision .pth /
                                      # .safetensors, a vq workdir, or
                                      # efficientnet_lite0_imagenet (1, 2)
  model_config.input_scaling = "auto"  # auto (the weights') | unit | keras |
                                       # torch (vq/models/preprocessing.py)
  model_config.padding = "auto"        # auto (the weights') | keras | torch
  # Depthwise convolutions: auto (XLA's grouped convolution on GPU/TPU,
  # shifted multiply-adds on CPU) | grouped | shifted; same parameters.
  model_config.depthwise = "auto"


def _workdir_conventions(workdir):
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"model.backbone_weights={workdir!r} is not a vq "
                            f"run: no config.json")
  with open(path) as f:
    model = json.load(f).get("model", {})
  scaling = model.get("input_scaling", "unit")
  padding = model.get("padding", "keras")
  return {"input_scaling": "unit" if scaling == "auto" else scaling,
          "padding": "keras" if padding == "auto" else padding}


def _implied(weights, encoder):
  """The conventions the weights bring; None when they cannot be known (a
  trained run's source since moved: its config records them)."""
  if not weights:
    return {"input_scaling": "unit", "padding": "keras"}
  if os.path.isdir(weights):
    return _workdir_conventions(weights)
  named = pretrained.named_architecture(weights)
  if named and named != encoder.architecture:
    raise ConfigError(f"model.backbone_weights={weights} are "
                      f"{named} weights; this model's encoder is "
                      f"{encoder.architecture}")
  weights = pretrained.resolve(weights)
  if not os.path.isfile(weights):
    return None
  return pretrained.file_conventions(weights, encoder.architecture)


def conventions(model_config, encoder):
  """(input scaling, padding) of the model: the config's, with 'auto'
  resolved from the weights `model.backbone_weights` names (none: [0, 1]
  input, Keras padding)."""
  weights = model_config.get("backbone_weights", "")
  if weights and encoder is None:
    raise ConfigError("model.backbone_weights needs a model with an encoder "
                      "(mobilenet_v2, efficientnet_b0 or "
                      "efficientnet_lite0/1/2)")
  scaling = model_config.get("input_scaling", "unit")
  padding = model_config.get("padding", "keras")
  implied = _implied(weights, encoder)
  if implied is None and "auto" in (scaling, padding):
    raise FileNotFoundError(f"model.backbone_weights: {weights} not found")
  if scaling == "auto":
    scaling = implied["input_scaling"]
  if scaling not in preprocessing.SCALINGS:
    raise ConfigError(f"model.input_scaling must be one of "
                      f"{preprocessing.SCALINGS} or 'auto', got {scaling!r}")
  if padding == "auto":
    padding = implied["padding"]
  if padding not in PADDINGS:
    raise ConfigError(f"model.padding must be one of {PADDINGS} or 'auto', "
                      f"got {padding!r}")
  if weights and implied and padding != implied["padding"]:
    raise ConfigError(f"model.padding={padding!r}, but the weights in "
                      f"{weights} need {implied['padding']!r} (or 'auto')")
  return scaling, padding


@functools.lru_cache(maxsize=4)
def _load_file(path, mtime_ns, size, architecture, alpha):
  """A weights file, read once per process while it is unchanged (a run
  reads it for its state's shapes, then for the state). Its arrays are
  shared: callers copy them, never write them."""
  del mtime_ns, size  # in the cache key: a rewritten file is read again
  return pretrained.load_file(path, architecture, alpha)


def load(path, encoder):
  """The encoder's variables from a Keras or torchvision file or from
  another run's workdir (its own encoder, which must be the same), or
  installed weights by name (`pretrained.NAMED_WEIGHTS`)."""
  path = pretrained.resolve(path)
  if not os.path.isdir(path):
    if not os.path.isfile(path):
      raise FileNotFoundError(f"model.backbone_weights: {path} not found")
    stat = os.stat(path)
    return _load_file(path, stat.st_mtime_ns, stat.st_size,
                      encoder.architecture, encoder.alpha)
  config = run_config.load_config(path)
  source = get_task_class(config.task)(config).encoder()
  if source is None or (source.architecture, source.alpha) != (
      encoder.architecture, encoder.alpha):
    have = "no encoder" if source is None else (
        f"{source.architecture} alpha {source.alpha}")
    raise ConfigError(f"model.backbone_weights={path!r}: that run's model "
                      f"has {have}; this one needs {encoder.architecture} "
                      f"alpha {encoder.alpha}")
  variables = checkpoint.load_variables(path)
  out = {}
  for collection, tree in variables.items():
    for part in filter(None, source.module_path.split("/")):
      tree = tree[part]
    out[collection] = {k: v for k, v in tree.items() if k != "predictions"}
  return out


def with_weights(variables, model_config, encoder):
  """`variables` with the encoder's from `model.backbone_weights` (as they
  are when the field is empty)."""
  path = model_config.get("backbone_weights", "")
  if not path:
    return variables
  return pretrained.insert(variables, load(path, encoder),
                           encoder.module_path,
                           f"model.backbone_weights={path}")
