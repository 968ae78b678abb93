"""torchvision weight files -> variables of vq's MobileNetV2 and
EfficientNet-B0 (`padding='torch'`). Nothing is downloaded: the caller names
a file it already has.

Reads a `mobilenet_v2` (any `width_mult`) or `efficientnet_b0` state dict
saved as `.pth` (`torch.load(weights_only=True)`) or `.safetensors`: the
whole model's, or without the classifier (no `classifier.*` tensors, or the
`features` module's own state dict).
"""
import os

import numpy as np

from vq.models.efficientnet import B0_BLOCKS
from vq.models.keras_import import put_batch_norm, put_kernel
from vq.models.mobilenet_v2 import INVERTED_RESIDUAL_SETTING

CLASSIFIER = ("classifier.1", "predictions", "dense")


def mobilenet_v2_names():
  """(torchvision prefix, vq layer name, kind) of every MobileNetV2 layer
  but the classifier."""
  names = [("features.0.0", "Conv1", "conv"), ("features.0.1", "bn_Conv1", "bn")]
  blocks = sum(n for _, _, n, _ in INVERTED_RESIDUAL_SETTING)
  for b in range(blocks):
    f = f"features.{b + 1}.conv"
    if b == 0:
      p = "expanded_conv_"
      names += [(f"{f}.0.0", p + "depthwise", "dw"),
                (f"{f}.0.1", p + "depthwise_BN", "bn"),
                (f"{f}.1", p + "project", "conv"),
                (f"{f}.2", p + "project_BN", "bn")]
    else:
      p = f"block_{b}_"
      names += [(f"{f}.0.0", p + "expand", "conv"),
                (f"{f}.0.1", p + "expand_BN", "bn"),
                (f"{f}.1.0", p + "depthwise", "dw"),
                (f"{f}.1.1", p + "depthwise_BN", "bn"),
                (f"{f}.2", p + "project", "conv"),
                (f"{f}.3", p + "project_BN", "bn")]
  last = f"features.{blocks + 1}"
  return names + [(f"{last}.0", "Conv_1", "conv"),
                  (f"{last}.1", "Conv_1_bn", "bn")]


def efficientnet_b0_names():
  """(torchvision prefix, vq layer name, kind) of every EfficientNet-B0
  layer but the classifier."""
  names = [("features.0.0", "stem_conv", "conv"),
           ("features.0.1", "stem_bn", "bn")]
  for stage, (_, repeats, _, _, expansion, _) in enumerate(B0_BLOCKS):
    for j in range(repeats):
      f = f"features.{stage + 1}.{j}.block"
      p = f"block{stage + 1}{chr(ord('a') + j)}_"
      layers = []
      if expansion != 1:
        layers += [("0", p + "expand_conv", "conv"), ("1", p + "expand_bn", "bn")]
      layers += [("0", p + "dwconv", "dw"), ("1", p + "bn", "bn"),
                 (None, p + "se_reduce", "se_fc1"),
                 (None, p + "se_expand", "se_fc2"),
                 ("0", p + "project_conv", "conv"),
                 ("1", p + "project_bn", "bn")]
      # torchvision groups conv + BN in numbered Conv2dNormActivation
      # modules, with the squeeze-and-excitation module between.
      module = 0
      for sub, name, kind in layers:
        if kind.startswith("se_"):
          names.append((f"{f}.{module}.{kind[3:]}", name, "conv_bias"))
          if kind == "se_fc2":
            module += 1
        else:
          names.append((f"{f}.{module}.{sub}", name, kind))
          if kind == "bn":
            module += 1
  return names + [("features.8.0", "top_conv", "conv"),
                  ("features.8.1", "top_bn", "bn")]


NAMES = {"mobilenet_v2": mobilenet_v2_names,
         "efficientnet_b0": efficientnet_b0_names}


def _torch_conv(w):
  """[out, in / groups, kh, kw] -> [kh, kw, in / groups, out] (a depthwise
  [C, 1, k, k] becomes flax's [k, k, 1, C])."""
  return np.transpose(np.asarray(w), (2, 3, 1, 0))


def variables_from_torchvision(state_dict, architecture="mobilenet_v2"):
  """A torchvision state dict (name -> array) -> flax variables of vq's
  `architecture`, with 'predictions' when it holds the classifier.

  Every tensor must be used (`num_batches_tracked` aside); anything missing
  or left over is an error naming it.
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items()
        if not k.endswith("num_batches_tracked")}
  if sd and not any(k.startswith(("features.", "classifier.")) for k in sd):
    sd = {"features." + k: v for k, v in sd.items()}  # model.features's own
  names = NAMES[architecture]()
  if any(k.startswith("classifier.") for k in sd):
    names.append(CLASSIFIER)
  used = set()

  def take(key):
    if key not in sd:
      raise KeyError(f"state dict has no {key!r}: not a torchvision "
                     f"{architecture} state dict")
    used.add(key)
    return sd[key]

  variables = {"params": {}, "batch_stats": {}}
  for prefix, name, kind in names:
    if kind in ("conv", "dw"):
      put_kernel(variables, name, _torch_conv(take(prefix + ".weight")))
    elif kind == "conv_bias":
      put_kernel(variables, name, _torch_conv(take(prefix + ".weight")),
                 take(prefix + ".bias"))
    elif kind == "bn":
      put_batch_norm(variables, name, take(prefix + ".weight"),
                     take(prefix + ".bias"), take(prefix + ".running_mean"),
                     take(prefix + ".running_var"))
    else:  # dense: [out, in] -> [in, out]
      put_kernel(variables, name, take(prefix + ".weight").T,
                 take(prefix + ".bias"))
  unused = sorted(set(sd) - used)
  if unused:
    raise ValueError(f"state dict tensors not used: {unused[:5]}"
                     f"{' ...' if len(unused) > 5 else ''} (not a torchvision "
                     f"{architecture} state dict?)")
  return variables


def read_state_dict(path):
  """{name: numpy array} of a .safetensors or .pth file; a damaged file is
  a ValueError naming it."""
  if path.endswith(".safetensors"):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    loader = load_file
  else:
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise ImportError(f"reading {path} needs PyTorch; convert it to "
                        f".safetensors or install torch") from None

    def loader(p):
      return {k: v.numpy() for k, v in torch.load(
          p, map_location="cpu", weights_only=True).items()}
  try:
    return loader(path)
  except Exception as e:  # pylint: disable=broad-except
    # torch and safetensors raise many types for truncated files.
    raise ValueError(f"{path}: cannot be read as a weights file "
                     f"({type(e).__name__}: {str(e).splitlines()[0][:200]})"
                     ) from e


def load_torchvision(path, architecture="mobilenet_v2"):
  """Variables of vq's `architecture` with `padding='torch'` from a
  torchvision `.pth` / `.safetensors` file."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"torchvision weights file not found: {path}")
  state_dict = read_state_dict(path)
  try:
    return variables_from_torchvision(state_dict, architecture)
  except (KeyError, ValueError) as e:
    raise ValueError(f"{path}: {e}") from e
