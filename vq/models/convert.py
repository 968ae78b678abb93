"""ImageNet weights for vq models from Keras and torchvision files.

Nothing is downloaded: the caller names a file it already has.

- `load_keras_mobilenet_v2(path)`: a Keras MobileNetV2 weights file (the
  official `.h5` ImageNet files or a Keras 3 `.weights.h5`), alpha 1.0, with
  top; returns variables for `MobileNetV2(padding='keras')`.
- `load_torchvision_mobilenet_v2(path)`: a torchvision `mobilenet_v2` state
  dict (`.pth`, read with `torch.load(weights_only=True)`, or `.safetensors`);
  returns variables for `MobileNetV2(padding='torch')`.
"""
import os

import numpy as np

from vq.models.mobilenet_v2 import INVERTED_RESIDUAL_SETTING


def _block_count():
  return sum(n for _, _, n, _ in INVERTED_RESIDUAL_SETTING)


def _put(tree, path, value):
  *parents, leaf = path.split("/")
  for p in parents:
    tree = tree.setdefault(p, {})
  tree[leaf] = np.asarray(value, np.float32)


def _put_bn(variables, name, scale, bias, mean, var):
  _put(variables["params"], f"{name}/scale", scale)
  _put(variables["params"], f"{name}/bias", bias)
  _put(variables["batch_stats"], f"{name}/mean", mean)
  _put(variables["batch_stats"], f"{name}/var", var)


def variables_from_keras_layers(layers):
  """[(layer name, layer class name, [weights])] -> flax variables."""
  variables = {"params": {}, "batch_stats": {}}
  for name, kind, weights in layers:
    if not weights:
      continue
    if kind == "Conv2D":
      _put(variables["params"], f"{name}/kernel", weights[0])
    elif kind == "DepthwiseConv2D":  # [3, 3, C, 1] -> [3, 3, 1, C]
      _put(variables["params"], f"{name}/kernel",
           np.transpose(weights[0], (0, 1, 3, 2)))
    elif kind == "BatchNormalization":
      _put_bn(variables, name, *weights)
    elif kind == "Dense":
      _put(variables["params"], f"{name}/kernel", weights[0])
      _put(variables["params"], f"{name}/bias", weights[1])
    else:
      raise ValueError(f"unexpected Keras layer {name!r} of type {kind}")
  return variables


def load_keras_mobilenet_v2(path):
  """Variables of MobileNetV2(alpha=1, include_top=True, padding='keras')."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Keras weights file not found: {path}")
  import keras  # pylint: disable=g-import-not-at-top
  model = keras.applications.MobileNetV2(
      input_shape=(224, 224, 3), alpha=1.0, include_top=True, weights=None)
  try:
    model.load_weights(path)
  except Exception as e:
    raise ValueError(f"{path}: not a Keras MobileNetV2 (alpha 1.0, with top) "
                     f"weights file: {e}") from e
  return variables_from_keras_layers(
      [(l.name, type(l).__name__, l.get_weights()) for l in model.layers])


def _torch_conv(w):
  """[out, in, kh, kw] -> [kh, kw, in, out]."""
  return np.transpose(np.asarray(w), (2, 3, 1, 0))


def _torch_depthwise(w):
  """[C, 1, 3, 3] -> [3, 3, 1, C]."""
  return np.transpose(np.asarray(w), (2, 3, 1, 0))


def torchvision_names():
  """(torchvision prefix, vq layer name, kind) of every MobileNetV2 layer."""
  names = [("features.0.0", "Conv1", "conv"), ("features.0.1", "bn_Conv1", "bn")]
  for b in range(_block_count()):
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
  last = f"features.{_block_count() + 1}"
  names += [(f"{last}.0", "Conv_1", "conv"), (f"{last}.1", "Conv_1_bn", "bn"),
            ("classifier.1", "predictions", "dense")]
  return names


def variables_from_torchvision(state_dict):
  """torchvision mobilenet_v2 state dict (name -> array) -> flax variables.

  Every tensor must be used (`num_batches_tracked` aside); anything missing
  or left over is an error naming it.
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items()
        if not k.endswith("num_batches_tracked")}
  used = set()

  def take(key):
    if key not in sd:
      raise KeyError(f"state dict has no {key!r}: not a torchvision "
                     f"mobilenet_v2 state dict")
    used.add(key)
    return sd[key]

  variables = {"params": {}, "batch_stats": {}}
  for prefix, name, kind in torchvision_names():
    if kind == "conv":
      _put(variables["params"], f"{name}/kernel",
           _torch_conv(take(prefix + ".weight")))
    elif kind == "dw":
      _put(variables["params"], f"{name}/kernel",
           _torch_depthwise(take(prefix + ".weight")))
    elif kind == "bn":
      _put_bn(variables, name, take(prefix + ".weight"), take(prefix + ".bias"),
              take(prefix + ".running_mean"), take(prefix + ".running_var"))
    else:  # dense: [out, in] -> [in, out]
      _put(variables["params"], f"{name}/kernel", take(prefix + ".weight").T)
      _put(variables["params"], f"{name}/bias", take(prefix + ".bias"))
  unused = sorted(set(sd) - used)
  if unused:
    raise ValueError(f"state dict tensors not used: {unused[:5]}"
                     f"{' ...' if len(unused) > 5 else ''}")
  return variables


def _read_state_dict(path):
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


def load_torchvision_mobilenet_v2(path):
  """Variables of MobileNetV2(alpha=1, include_top=True, padding='torch')."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"torchvision weights file not found: {path}")
  state_dict = _read_state_dict(path)
  try:
    return variables_from_torchvision(state_dict)
  except (KeyError, ValueError) as e:
    raise ValueError(f"{path}: {e}") from e
