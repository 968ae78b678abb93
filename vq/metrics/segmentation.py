"""Segmentation metrics on host arrays: IoU, Dice and image-level rates.

Masks are bool [N, H, W, C] with one channel per class. IoU is summed over
the dataset (intersection and union totals per class); the Kaggle Dice is
per image and class, 1 when both masks are empty, then averaged.
`class_overlap` and `image_presence` say which classes a model confuses.
"""
import numpy as np


def iou_totals(pred, true):
  """(intersection, union) per class, summed over the batch: two [C]."""
  pred, true = np.asarray(pred, bool), np.asarray(true, bool)
  axes = tuple(range(pred.ndim - 1))
  return (np.sum(pred & true, axis=axes, dtype=np.int64),
          np.sum(pred | true, axis=axes, dtype=np.int64))


def iou_from_totals(intersection, union):
  """Per-class IoU; a class absent from both prediction and truth gets NaN."""
  intersection = np.asarray(intersection, np.float64)
  union = np.asarray(union, np.float64)
  return np.where(union > 0, intersection / np.maximum(union, 1), np.nan)


def class_overlap(pred, true):
  """[C, C] pixel counts, summed over the batch: [i, j] is the pixels
  predicted as class i that are truly class j."""
  pred, true = np.asarray(pred, bool), np.asarray(true, bool)
  c = pred.shape[-1]
  return (pred.reshape(-1, c).T.astype(np.int64)
          @ true.reshape(-1, c).astype(np.int64))


def image_presence(pred, true, min_area=1):
  """([N, C], [N, C]) bool: each class predicted on at least `min_area`
  pixels of an image, and present in its truth."""
  pred, true = np.asarray(pred, bool), np.asarray(true, bool)
  return pred.sum((1, 2)) >= min_area, true.any((1, 2))


def dice_per_image(pred, true):
  """[N, C] Dice per image and class; both empty scores 1."""
  pred, true = np.asarray(pred, bool), np.asarray(true, bool)
  inter = np.sum(pred & true, axis=(1, 2))
  total = np.sum(pred, axis=(1, 2)) + np.sum(true, axis=(1, 2))
  return np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)


def binary_classification(pred, true):
  """Accuracy, precision, recall and F1 of bool decisions (0 where a rate's
  denominator is 0)."""
  pred, true = np.asarray(pred, bool), np.asarray(true, bool)
  tp = np.sum(pred & true)
  fp = np.sum(pred & ~true)
  fn = np.sum(~pred & true)
  precision = tp / (tp + fp) if tp + fp else 0.0
  recall = tp / (tp + fn) if tp + fn else 0.0
  f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
  return {"accuracy": float(np.mean(pred == true)),
          "precision": float(precision), "recall": float(recall),
          "f1": float(f1)}
