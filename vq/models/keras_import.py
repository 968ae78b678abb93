"""Keras application weight files -> variables of vq's MobileNetV2 and
EfficientNet-B0 (`padding='keras'`). Nothing is downloaded: the caller names
a file it already has.

Reads the published ImageNet `.h5` files (legacy HDF5 layout, e.g.
`mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5`,
`efficientnetb0_notop.h5`) and Keras 3 `.weights.h5` files, at every
MobileNetV2 alpha, with or without the classifier: Keras builds the model,
loads the file and vq copies every layer by name.
"""
import os
import warnings

import h5py
import numpy as np

from vq.models import preprocessing


def _put(tree, path, value):
  *parents, leaf = path.split("/")
  for p in parents:
    tree = tree.setdefault(p, {})
  tree[leaf] = np.asarray(value, np.float32)


def put_batch_norm(variables, name, scale, bias, mean, var):
  _put(variables["params"], f"{name}/scale", scale)
  _put(variables["params"], f"{name}/bias", bias)
  _put(variables["batch_stats"], f"{name}/mean", mean)
  _put(variables["batch_stats"], f"{name}/var", var)


def put_kernel(variables, name, kernel, bias=None):
  _put(variables["params"], f"{name}/kernel", kernel)
  if bias is not None:
    _put(variables["params"], f"{name}/bias", bias)


def variables_from_keras_layers(layers):
  """[(layer name, layer class name, [weights])] -> flax variables.

  Normalization layers (EfficientNet's input statistics) are checked, not
  copied: vq scales the input itself (`check_input_normalization`).
  """
  variables = {"params": {}, "batch_stats": {}}
  for name, kind, weights in layers:
    if not weights:
      continue
    if kind in ("Conv2D", "Dense"):
      put_kernel(variables, name, *weights)
    elif kind == "DepthwiseConv2D":  # [k, k, C, 1] -> [k, k, 1, C]
      put_kernel(variables, name, np.transpose(weights[0], (0, 1, 3, 2)))
    elif kind == "BatchNormalization":
      put_batch_norm(variables, name, *weights)
    elif kind == "Normalization":
      check_input_normalization(name, weights[0], weights[1])
    else:
      raise ValueError(f"unexpected Keras layer {name!r} of type {kind}")
  return variables


def check_input_normalization(name, mean, variance):
  """Keras EfficientNet normalises its input with ImageNet statistics (the
  published files store the standard deviations as 'variance' and Keras
  corrects for it); vq applies the same with `input_scaling='torch'`."""
  mean = np.ravel(mean)
  std = np.asarray(preprocessing.IMAGENET_STD)
  if not (np.allclose(mean, preprocessing.IMAGENET_MEAN, atol=1e-3) and
          (np.allclose(np.ravel(variance), std, atol=1e-3) or
           np.allclose(np.ravel(variance), std ** 2, atol=1e-3))):
    raise ValueError(
        f"layer {name!r} normalises the input with mean {mean.round(4)} and "
        f"variance {np.ravel(variance).round(4)}; vq expects ImageNet's "
        f"(mean {preprocessing.IMAGENET_MEAN})")


def has_classifier(path):
  """Whether a Keras weights file holds the classifier ('predictions')."""
  with h5py.File(path, "r") as f:
    if "layer_names" in f.attrs:  # the legacy layout of the published files
      names = [n.decode() if isinstance(n, bytes) else n
               for n in f.attrs["layer_names"]]
      return "predictions" in names
    # Keras 3 names the groups of a functional model's layers by class.
    return any(k.startswith("dense") for k in f.get("layers", {}))


def _keras_model(architecture, alpha, include_top):
  import keras  # pylint: disable=g-import-not-at-top
  shape = (224, 224, 3) if include_top else (None, None, 3)
  if architecture == "mobilenet_v2":
    return keras.applications.MobileNetV2(
        input_shape=shape, alpha=alpha, include_top=include_top,
        weights=None, classifier_activation=None)
  if architecture == "efficientnet_b0":
    return keras.applications.EfficientNetB0(
        input_shape=shape, include_top=include_top, weights=None,
        classifier_activation=None)
  raise ValueError(f"no Keras importer for {architecture!r}")


def load_keras(path, architecture, alpha=1.0):
  """Variables of vq's `architecture` ('mobilenet_v2' at `alpha`, or
  'efficientnet_b0') with `padding='keras'` from a Keras weights file; with
  'predictions' when the file holds the classifier."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Keras weights file not found: {path}")
  what = (f"Keras MobileNetV2 (alpha {alpha})"
          if architecture == "mobilenet_v2" else "Keras EfficientNetB0")
  try:
    include_top = has_classifier(path)
  except OSError as e:
    raise ValueError(f"{path}: not an HDF5 weights file ({e})") from e
  model = _keras_model(architecture, alpha, include_top)
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      model.load_weights(path)
  except Exception as e:  # pylint: disable=broad-except
    first = str(e).split("\n\n")[-1].splitlines()[0][:300]
    raise ValueError(f"{path}: not a {what} weights file "
                     f"({'with' if include_top else 'without'} top): "
                     f"{first}") from e
  return variables_from_keras_layers(
      [(l.name, type(l).__name__, l.get_weights()) for l in model.layers])
