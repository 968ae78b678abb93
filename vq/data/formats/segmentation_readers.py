"""Readers for segmentation datasets: Severstal CSV, polygon JSON, mask folders.

Each reader returns records (dicts with `image_path` and the annotation in
its own form); `SegmentationImages` loads a record as an image with its
uint8 [H, W, num_classes] masks, one channel per defect class.
"""
import csv
import io
import os

import numpy as np

from vq.data.formats import polygons, rle
from vq.data.errors import AnnotationError, read_json, read_text
from vq.data.images import (IMAGE_EXTENSIONS, find_images, read_image,
                            read_mask, turned_note)
from vq.data.paths import dataset_path
from vq.data.sources import RecordSource


def read_severstal_csv(csv_path, image_dir, num_classes=4,
                       include_unlisted=True, allow_outside=False):
  """Severstal Steel Defect Detection `train.csv` -> records.

  Reads the long form (`ImageId,ClassId,EncodedPixels`) and the older wide
  form (`ImageId_ClassId,EncodedPixels`, one row per image and class).

  Args:
    csv_path: the CSV file.
    image_dir: folder of the images the CSV names.
    num_classes: defect classes (ClassId 1..num_classes).
    include_unlisted: images of `image_dir` the CSV does not name are
      defect-free records (the long form lists defects only).

  Returns:
    records with image_path, rles {class id: run-length string} and
    rle_lines {class id: 'CSV:line'}.
  """
  if not os.path.isfile(csv_path):
    raise FileNotFoundError(f"Severstal CSV not found: {csv_path}")
  rles, lines, first = {}, {}, {}  # first: an image's first row
  with io.StringIO(read_text(csv_path), newline="") as f:
    reader = csv.DictReader(f)
    fields = reader.fieldnames or []
    long_form = {"ImageId", "ClassId", "EncodedPixels"} <= set(fields)
    if not long_form and not {"ImageId_ClassId", "EncodedPixels"} <= set(fields):
      raise AnnotationError(
          f"{csv_path}: expected columns ImageId,ClassId,EncodedPixels or "
          f"ImageId_ClassId,EncodedPixels; got {fields}")
    for line, row in enumerate(reader, start=2):
      if long_form:
        image_id, class_id = row["ImageId"], row["ClassId"]
      else:
        image_id, _, class_id = row["ImageId_ClassId"].rpartition("_")
      try:
        k = int(class_id)
      except ValueError:
        k = 0
      if not 1 <= k <= num_classes:
        raise AnnotationError(f"{csv_path}:{line}: ClassId {class_id!r} is not "
                              f"an integer in 1..{num_classes}")
      encoded = (row["EncodedPixels"] or "").strip()
      per_image = rles.setdefault(image_id, {})
      first.setdefault(image_id, f"{csv_path}:{line}")
      if encoded:
        if k in per_image:
          raise AnnotationError(f"{csv_path}:{line}: a second row for image "
                                f"{image_id} class {k}")
        per_image[k] = encoded
        lines.setdefault(image_id, {})[k] = f"{csv_path}:{line}"
  names = set(rles)
  if include_unlisted:
    names |= {os.path.basename(p) for p in find_images(image_dir)}
  return [{"image_path": dataset_path(image_dir, n, first.get(n, csv_path),
                                     allow_outside),
           "rles": rles.get(n, {}),
           "rle_lines": lines.get(n, {}), "num_classes": num_classes}
          for n in sorted(names)]


def write_severstal_csv(path, predictions):
  """Writes a long-form submission CSV from {image id: [H, W, C] masks}."""
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["ImageId", "ClassId", "EncodedPixels"])
    for image_id, masks in predictions.items():
      for k in range(masks.shape[-1]):
        encoded = rle.encode(masks[..., k])
        if encoded:
          writer.writerow([image_id, k + 1, encoded])


def _find_image(image_dir, image_id, where, allow_outside):
  path = dataset_path(image_dir, str(image_id), where, allow_outside)
  if os.path.isfile(path):
    return path
  for ext in IMAGE_EXTENSIONS:
    if os.path.isfile(path + ext):
      return path + ext
  raise FileNotFoundError(f"{where}: no image {image_id!r} in {image_dir}")


def read_polygon_json(path, image_dir, num_classes=3, allow_outside=False):
  """Polygon annotations -> records.

  `path` is a JSON file holding a list of records, or a folder of JSON files
  with one record each, shaped {"image_id": ..., "damage_level": 0|1,
  "regions": [{"points": [[x, y], ...], "class_name": 1..num_classes}]}.
  """
  if os.path.isdir(path):
    files = sorted(os.path.join(path, f) for f in os.listdir(path)
                   if f.endswith(".json"))
    raw = [(f, read_json(f)) for f in files]
  else:
    data = read_json(path)
    if not isinstance(data, list):
      raise AnnotationError(f"{path}: expected a JSON list of records")
    raw = [(f"{path} record {i}", r) for i, r in enumerate(data)]
  records = []
  for where, r in raw:
    if not isinstance(r, dict) or "image_id" not in r:
      raise AnnotationError(f"{where}: expected an object with image_id")
    level = r.get("damage_level", int(bool(r.get("regions"))))
    if level not in (0, 1):
      raise AnnotationError(f"{where}: damage_level must be 0 or 1, got "
                            f"{level!r}")
    if not isinstance(r.get("regions", []), list):
      raise AnnotationError(f"{where}: regions must be a list")
    records.append({
        "image_path": _find_image(image_dir, r["image_id"], where,
                                  allow_outside),
        "regions": r.get("regions", []), "label": int(level),
        "num_classes": num_classes, "where": f"{where} ({r['image_id']})"})
  return records


def read_mask_folder(image_dir, mask_dir):
  """Binary tasks: each image in `image_dir` has a PNG mask of the same stem
  in `mask_dir` (non-zero pixels are foreground)."""
  records = []
  for image_path in find_images(image_dir):
    stem = os.path.splitext(os.path.basename(image_path))[0]
    mask_path = os.path.join(mask_dir, stem + ".png")
    if not os.path.isfile(mask_path):
      raise FileNotFoundError(f"{image_path}: no mask {mask_path}")
    records.append({"image_path": image_path, "mask_path": mask_path,
                    "num_classes": 1})
  return records


def stratified_split(records, area_fractions, fractions=(0.8, 0.1, 0.1),
                     seed=0, area_bins=3):
  """Splits records so each part has the same mix of damage labels and of
  damaged-area fractions.

  Records are grouped by (label, area-fraction quantile bin among damaged
  records); the groups, each shuffled with `seed`, are laid end to end and
  dealt out so that every prefix holds the parts in proportion. The parts'
  sizes are exact (rounded) and each group's share per part is within 2
  records of exact.

  Returns:
    one sorted list of indices per fraction.
  """
  labels = np.asarray([r.get("label", 0) for r in records])
  area = np.asarray(area_fractions, np.float64)
  damaged = labels == 1
  strata = labels * (area_bins + 1)
  if damaged.any():
    edges = np.quantile(area[damaged], np.linspace(0, 1, area_bins + 1)[1:-1])
    strata = strata + np.where(damaged, np.searchsorted(edges, area), 0)
  rng = np.random.default_rng(seed)
  order = np.concatenate([rng.permutation(np.flatnonzero(strata == s))
                          for s in np.unique(strata)])
  target = np.asarray(fractions, np.float64) / np.sum(fractions)
  counts = np.zeros(len(fractions))
  parts = [[] for _ in fractions]
  for position, index in enumerate(order):
    part = int(np.argmax(target * (position + 1) - counts))
    counts[part] += 1
    parts[part].append(int(index))
  return [sorted(p) for p in parts]


class SegmentationImages(RecordSource):
  """Random-access source: record -> {image, mask [H, W, C] uint8, label}."""

  def __getitem__(self, index):
    r = self.records[index]
    image = read_image(r["image_path"])
    h, w = image.shape[:2]
    where = r.get("where", r["image_path"])
    expected = r.get("expected_hw")
    if expected and all(expected) and tuple(expected) != (h, w):
      raise AnnotationError(
          f"{where}: the annotation's size is {expected[1]}x{expected[0]}, "
          f"its image {r['image_path']} is {w}x{h}."
          + turned_note(r["image_path"], (h, w), expected))
    if "rles" in r:
      mask = np.zeros((h, w, r["num_classes"]), np.uint8)
      for k, encoded in r["rles"].items():
        try:
          mask[..., k - 1] = rle.decode(encoded, (h, w))
        except ValueError as e:
          line = r.get("rle_lines", {}).get(k)
          raise AnnotationError(f"{line + ': ' if line else ''}{where}: "
                                f"class {k}: {e}") from None
    elif "regions" in r:
      mask = polygons.to_mask(r["regions"], h, w, r["num_classes"],
                              record=where)
    else:
      m = read_mask(r["mask_path"])
      if m.shape != (h, w):
        raise AnnotationError(
            f"{r['mask_path']}: mask is {m.shape[1]}x{m.shape[0]}, its image "
            f"{r['image_path']} is {w}x{h}."
            + turned_note(r["image_path"], (h, w), m.shape))
      mask = m[..., None]
    label = r.get("label", int(mask.any()))
    return {"image": image, "mask": mask, "label": np.int32(label)}
