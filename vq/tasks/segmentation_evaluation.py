"""The segmentation task's evaluation on host arrays."""
import numpy as np

from vq import visualize
from vq.metrics import segmentation as seg_metrics


def evaluate(results, class_names, min_area, num_images, names):
  """[(host batch, host eval_step outputs)] -> (scalars, pictures, a row
  per image): IoU per class and its mean, Kaggle Dice, image-level rates (a
  class found on at least `min_area` pixels), up to `num_images` truth |
  prediction pictures; with several classes, which classes are confused
  (per pixel and per image). Each row names the image (`names`, in the
  results' order) and gives its truth, decision and Dice per class."""
  inter = union = overlap = true_pixels = 0
  dice, found, truth, head, drawn, presence = [], [], [], [], [], []
  class_head = []
  for batch, out in results:
    keep = batch["batch_mask"]
    pred, true = out["masks"][keep], batch["mask"][keep].astype(bool)
    i, u = seg_metrics.iou_totals(pred, true)
    inter, union = inter + i, union + u
    overlap = overlap + seg_metrics.class_overlap(pred, true)
    true_pixels = true_pixels + true.sum((0, 1, 2))
    presence.append(seg_metrics.image_presence(pred, true, min_area))
    dice.append(seg_metrics.dice_per_image(pred, true))
    found.append(pred.any(-1).sum((1, 2)) >= min_area)
    truth.append(batch["label"][keep] > 0)
    if "image_probs" in out:
      head.append(out["image_probs"][keep] > 0.5)
    if "class_probs" in out:
      class_head.append(out["class_probs"][keep] > 0.5)
    for img, p, t in zip(batch["image"][keep], pred, true):
      if len(drawn) < num_images:
        drawn.append(np.concatenate([visualize.overlay_masks(img, t),
                                     visualize.overlay_masks(img, p)], 1))
  iou = seg_metrics.iou_from_totals(inter, union)
  scalars = {f"iou/{n}": v for n, v in zip(class_names, iou)}
  scalars["miou"] = float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0
  scalars["dice"] = float(np.mean(np.concatenate(dice)))
  truth = np.concatenate(truth)
  for k, v in seg_metrics.binary_classification(np.concatenate(found),
                                                truth).items():
    scalars[f"image_{k}"] = v
  if head:
    for k, v in seg_metrics.binary_classification(np.concatenate(head),
                                                  truth).items():
      scalars[f"image_head_{k}"] = v
  if len(class_names) > 1:
    scalars.update(_confusion(class_names, overlap, true_pixels, presence,
                              class_head))
  pictures = {"truth_vs_prediction": np.stack(drawn)} if drawn else {}
  return scalars, pictures, image_rows(names, class_names, truth,
                                       np.concatenate(found),
                                       np.concatenate(dice))


def image_rows(names, class_names, truth, found, dice):
  """A row per image: its file, `label` (1 where its truth has a defect),
  `decision` (defective where a class is found on `eval.defect_min_area`
  pixels), `dice` (its Kaggle Dice, the mean over classes) and
  `dice/<class>`."""
  return tuple(
      {"file": name, "label": int(t),
       "decision": "defective" if f else "good", "dice": float(d.mean()),
       **{f"dice/{c}": float(v) for c, v in zip(class_names, d)}}
      for name, t, f, d in zip(names, truth, found, dice, strict=True))


def _confusion(class_names, overlap, true_pixels, presence, class_head):
  """'confusion/A_on_B': the share of class B's pixels predicted as A;
  'image_precision/A', 'image_recall/A': class A predicted on an image
  (on `eval.defect_min_area` pixels) against A in its truth;
  'image_head_precision/A', 'image_head_recall/A': the same for a
  per-class image head."""
  scalars = {}
  for i, predicted in enumerate(class_names):
    for j, true in enumerate(class_names):
      if i != j and true_pixels[j]:
        scalars[f"confusion/{predicted}_on_{true}"] = (
            overlap[i, j] / true_pixels[j])
  found = np.concatenate([p for p, _ in presence])
  truth = np.concatenate([t for _, t in presence])
  decisions = {"image": found}
  if class_head:
    decisions["image_head"] = np.concatenate(class_head)
  for prefix, decided in decisions.items():
    for k, name in enumerate(class_names):
      rates = seg_metrics.binary_classification(decided[:, k], truth[:, k])
      scalars[f"{prefix}_precision/{name}"] = rates["precision"]
      scalars[f"{prefix}_recall/{name}"] = rates["recall"]
  return scalars
