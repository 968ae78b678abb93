"""Keypoint metrics: pixel errors and PCK (percentage of correct keypoints)."""
import numpy as np


def keypoint_errors(pred, true):
  """[N, K] distances between predicted and true keypoints [N, K, 2]."""
  return np.linalg.norm(np.asarray(pred) - np.asarray(true), axis=-1)


def keypoint_metrics(pred, true, image_hw, pixel_thresholds=(2, 5, 10),
                     diagonal_fraction=0.05, names=None):
  """Errors between predicted and true keypoints of a set of images.

  Args:
    pred, true: [N, K, 2] in pixels.
    image_hw: (height, width) of the images (for the diagonal threshold).
    pixel_thresholds: PCK radii in pixels.
    diagonal_fraction: one more PCK radius, as a fraction of the diagonal.
    names: K keypoint names for the per-keypoint errors.

  Returns:
    dict: mean_error_px, error_px/<name>, pck@<t>px, pck@<f>diag (in [0, 1]).
  """
  dist = keypoint_errors(pred, true)
  names = names or [str(k) for k in range(dist.shape[1])]
  out = {"mean_error_px": float(dist.mean())}
  for k, name in enumerate(names):
    out[f"error_px/{name}"] = float(dist[:, k].mean())
  for t in pixel_thresholds:
    out[f"pck@{t}px"] = float(np.mean(dist <= t))
  diag = float(np.hypot(*image_hw))
  out[f"pck@{diagonal_fraction:g}diag"] = float(
      np.mean(dist <= diagonal_fraction * diag))
  return out
