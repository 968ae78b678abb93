"""Localisation: the crop of the best-scoring box of one class."""


def crop_box(record, class_name, margin, image_hw):
  """The pixel box (x1, y1, x2, y2), integers, of the best-scoring
  `class_name` detection in a detection record, widened by `margin` (a
  fraction of its width and height on every side) and clipped to the
  image; None when no box of that class was found."""
  boxes = [d for d in record["detections"] if d["class"] == class_name]
  if not boxes:
    return None
  x1, y1, x2, y2 = max(boxes, key=lambda d: d["score"])["box"]
  h, w = image_hw
  dx, dy = margin * (x2 - x1), margin * (y2 - y1)
  x1, y1 = max(0, int(x1 - dx)), max(0, int(y1 - dy))
  x2, y2 = min(w, int(round(x2 + dx))), min(h, int(round(y2 + dy)))
  if x2 - x1 < 2 or y2 - y1 < 2:
    return None
  return x1, y1, x2, y2
