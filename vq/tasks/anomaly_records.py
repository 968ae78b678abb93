"""The anomaly task's prediction records: score, map, region in the
original pixels, the calibrated decision; and their drawing."""
import cv2
import numpy as np

from vq import visualize
from vq.data.augment import letterbox
from vq.data.formats import rle
from vq.data.embedded.surface_drawing import to_uint8
from vq.tasks.anomaly_evaluation import CALIBRATION_KEYS


def to_record(outputs, image_hw, level, keep_aspect, category, calibration):
  """One image's outputs -> {'score', 'map' (float32 at the input shape;
  with `keep_aspect` its part over the image), 'region': RLE of
  map >= `level` at the original (height, width) `image_hw`, 'region_area'
  in pixels}; with the `category`'s `calibration` (or None) also
  'category', 'normalized_score' and 'decision' (good | defective)."""
  anomaly_map = np.asarray(outputs["map"], np.float32)
  region = letterbox.to_original((anomaly_map >= level).astype(np.uint8),
                                 image_hw, keep_aspect, cv2.INTER_NEAREST)
  if keep_aspect:
    anomaly_map = letterbox.crop_to_image(anomaly_map, image_hw)
  score = float(outputs["score"])
  record = {"score": round(score, 5)}
  if calibration:
    record.update(category=category, **decide(
        score, *(calibration[k] for k in CALIBRATION_KEYS)))
  return dict(record, map=anomaly_map, region=rle.encode(region),
              region_area=int(region.sum()))


def draw(image, record, level):
  """The heat map blended over the image (its middle at `level`, or half
  the map's maximum where `level` is infinite), the region outlined."""
  h, w = image.shape[:2]
  anomaly_map = cv2.resize(np.asarray(record["map"], np.float32), (w, h))
  if not np.isfinite(level):
    level = max(float(anomaly_map.max()), 1e-6) / 2
  heat = cv2.applyColorMap(to_uint8(anomaly_map * 127.5 / level),
                           cv2.COLORMAP_JET)[..., ::-1]
  out = cv2.addWeighted(image, 0.6, heat, 0.4, 0)
  region = rle.decode(record["region"], (h, w)).astype(np.uint8)
  contours, _ = cv2.findContours(region,
                                 cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
  out = cv2.drawContours(out, contours, -1, (255, 255, 0),
                         max(1, min(h, w) // 200))
  if "decision" in record:
    out = visualize.caption(out, f"{record['decision']} "
                            f"{record['normalized_score']:.2f}")
  return out


def decide(score, threshold, score_min, score_max):
  """{'normalized_score' (min-max around the threshold, 0.5 there, clipped
  to [0, 1]), 'decision': 'defective' at or above the threshold}."""
  spread = max(score_max - score_min, 1e-12)
  normalized = min(max((score - threshold) / spread + 0.5, 0.0), 1.0)
  return {"normalized_score": round(normalized, 5),
          "decision": "defective" if score >= threshold else "good"}
