"""Keypoint annotations on disk: a CSV table and COCO keypoints JSON.

Both give one object (K keypoints) per image, in pixels; `KeypointImages`
loads each image and normalises its keypoints to [0, 1].

CSV: a header, then `image, x1, y1, x2, y2, ..., xK, yK` per row; image paths
are relative to the CSV file's folder.

COCO: `images` [{id, file_name, width, height}], `annotations` [{image_id,
keypoints: [x1, y1, v1, ...]}], `categories` [{keypoints: [names]}]; every
keypoint labelled (v > 0), one annotation per image.
"""
import csv
import io
import os

import numpy as np

from vq.data.formats.coco import load_coco
from vq.data.errors import AnnotationError, read_text
from vq.data.images import read_image
from vq.data.paths import dataset_path
from vq.data.sources import RecordSource


def read_keypoints_csv(path, num_keypoints, allow_outside=False):
  """Rows of a keypoint CSV -> records {id, image_path, keypoints_px [K, 2]}."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"keypoint CSV not found: {path}")
  folder = os.path.dirname(os.path.abspath(path))
  records = []
  with io.StringIO(read_text(path), newline="") as f:
    rows = csv.reader(f)
    header = next(rows, None)
    expected = 1 + 2 * num_keypoints
    if header is None or len(header) != expected:
      raise AnnotationError(
          f"{path}:1: expected a header of {expected} columns (image, x1, y1, "
          f"..., x{num_keypoints}, y{num_keypoints}), got {header}")
    for line_no, row in enumerate(rows, 2):
      if not row:
        continue
      if len(row) != expected:
        raise AnnotationError(
            f"{path}:{line_no}: expected {expected} columns, got {len(row)}")
      try:
        values = np.array([float(v) for v in row[1:]], np.float32)
      except ValueError:
        raise AnnotationError(
            f"{path}:{line_no}: keypoint coordinates must be numbers, got "
            f"{row[1:]}") from None
      records.append({"id": row[0],
                      "image_path": dataset_path(
                          folder, row[0], f"{path}:{line_no}",
                          allow_outside),
                      "keypoints_px": values.reshape(num_keypoints, 2),
                      "where": f"{path}:{line_no}"})
  if not records:
    raise AnnotationError(f"{path}: no rows")
  return records


def read_coco_keypoints(path, image_dir, num_keypoints, allow_outside=False):
  """COCO keypoints JSON -> records {id, image_path, keypoints_px [K, 2]}."""
  coco, images = load_coco(path, "COCO keypoints")
  by_image = {}
  for i, ann in enumerate(coco["annotations"]):
    where = f"{path}: annotation {i} (image_id {ann.get('image_id')})"
    if ann["image_id"] in by_image:
      raise AnnotationError(f"{where}: a second annotation for this image; "
                            f"the keypoints task expects one object per image")
    kp = np.asarray(ann.get("keypoints", []), np.float32)
    if kp.size != 3 * num_keypoints:
      raise AnnotationError(f"{where}: expected {3 * num_keypoints} keypoint "
                            f"values (x, y, v for {num_keypoints} points), "
                            f"got {kp.size}")
    kp = kp.reshape(num_keypoints, 3)
    if np.any(kp[:, 2] <= 0):
      raise AnnotationError(f"{where}: keypoints "
                            f"{np.flatnonzero(kp[:, 2] <= 0).tolist()} are not "
                            f"labelled (v = 0); every keypoint must be")
    by_image[ann["image_id"]] = (kp[:, :2], where)
  return [{"id": str(image_id),
           "image_path": dataset_path(image_dir,
                                      images[image_id]["file_name"], where,
                                      allow_outside),
           "keypoints_px": kp, "where": where}
          for image_id, (kp, where) in sorted(by_image.items())]


class KeypointImages(RecordSource):
  """Loads each record's image; keypoints normalised by its size."""

  def __getitem__(self, index):
    r = self.records[index]
    image = read_image(r["image_path"])
    h, w = image.shape[:2]
    x, y = r["keypoints_px"][:, 0], r["keypoints_px"][:, 1]
    outside = np.flatnonzero((x < 0) | (x > w) | (y < 0) | (y > h))
    if outside.size:
      raise AnnotationError(
          f"{r['where']}: keypoints {outside.tolist()} "
          f"{r['keypoints_px'][outside].tolist()} lie outside the image "
          f"{r['image_path']} ({w}x{h})")
    return {"image": image,
            "keypoints": (r["keypoints_px"] / np.array([w, h])).astype(
                np.float32)}
