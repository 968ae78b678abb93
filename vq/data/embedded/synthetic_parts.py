"""Embedded detection dataset: machine parts on textured backgrounds.

Every image is generated from (seed, index), so a split is a reproducible,
random-access source with nothing to download. Classes differ by shape only:
colours, textures and sizes are drawn from the same distributions for every
class, and small clutter marks (no class) share the parts' colours.
"""
import cv2
import numpy as np

CLASS_NAMES = ("nut", "washer", "bolt", "bracket")

# Surface finishes shared by all classes (RGB).
_PALETTE = np.array([
    (170, 170, 175), (120, 122, 130), (200, 170, 90), (60, 60, 66),
    (70, 110, 170), (170, 70, 60), (210, 210, 200), (110, 140, 90),
], np.float32)


def _rotate(points, angle):
  c, s = np.cos(angle), np.sin(angle)
  return points @ np.array([[c, s], [-s, c]], np.float32)


def _outline(kind, radius, rng):
  """Polygon(s) of a part centred at 0, as (filled, holes) lists."""
  angle = rng.uniform(0, 2 * np.pi)
  if kind == "nut":
    t = np.arange(6) * np.pi / 3
    outer = np.stack([np.cos(t), np.sin(t)], 1) * radius
    return [_rotate(outer, angle)], [("circle", radius * 0.45)]
  if kind == "washer":
    return [("circle", radius)], [("circle", radius * rng.uniform(0.35, 0.55))]
  if kind == "bolt":
    w = radius * rng.uniform(0.22, 0.3)
    shaft = np.array([[-radius, -w], [radius * 0.6, -w], [radius * 0.6, w],
                      [-radius, w]], np.float32)
    head = np.array([[radius * 0.6, -w * 2], [radius, -w * 2],
                     [radius, w * 2], [radius * 0.6, w * 2]], np.float32)
    return [_rotate(shaft, angle), _rotate(head, angle)], []
  # bracket: an L of two bars
  w = radius * rng.uniform(0.3, 0.4)
  leg = np.array([[-radius, -radius], [radius, -radius], [radius, -radius + w],
                  [-radius, -radius + w]], np.float32)
  foot = np.array([[-radius, -radius], [-radius + w, -radius],
                   [-radius + w, radius], [-radius, radius]], np.float32)
  return [_rotate(leg, angle), _rotate(foot, angle)], []


def _draw(mask, shapes, centre, value):
  for shape in shapes:
    if isinstance(shape, tuple):
      cv2.circle(mask, tuple(int(round(v * 16)) for v in centre),
                 int(round(shape[1] * 16)), value, -1, cv2.LINE_AA, 4)
    else:
      pts = np.round((shape + centre) * 16).astype(np.int32)
      cv2.fillPoly(mask, [pts], value, cv2.LINE_AA, 4)


def _noise(rng, size, scale):
  """Smooth random field in [-1, 1] with features about `scale` pixels big."""
  small = max(2, int(size / scale))
  field = rng.uniform(-1, 1, (small, small)).astype(np.float32)
  return cv2.resize(field, (size, size), interpolation=cv2.INTER_CUBIC)


def _background(rng, size):
  base = rng.uniform(40, 200, 3).astype(np.float32)
  tint = rng.uniform(0.7, 1.2, 3).astype(np.float32)
  img = base * tint
  img = img + _noise(rng, size, rng.uniform(8, 32))[..., None] * rng.uniform(10, 40)
  if rng.random() < 0.5:  # brushed or belt texture: streaks along one axis
    streaks = rng.normal(0, 1, (size, 1)).astype(np.float32)
    streaks = np.repeat(streaks, size, axis=1)
    if rng.random() < 0.5:
      streaks = streaks.T
    img = img + streaks[..., None] * rng.uniform(4, 14)
  return img


def _part_fill(rng, size, colour):
  shade = 1 + _noise(rng, size, rng.uniform(6, 20))[..., None] * 0.25
  return colour * rng.uniform(0.7, 1.2) * shade


def _overlaps(box, boxes, limit=0.1):
  for other in boxes:
    iw = min(box[2], other[2]) - max(box[0], other[0])
    ih = min(box[3], other[3]) - max(box[1], other[1])
    if iw > 0 and ih > 0:
      smaller = min((box[2] - box[0]) * (box[3] - box[1]),
                    (other[2] - other[0]) * (other[3] - other[1]))
      if iw * ih > limit * smaller:
        return True
  return False


def _bounds(shapes, centre):
  pts = []
  for shape in shapes:
    if isinstance(shape, tuple):
      r = shape[1]
      pts += [centre - r, centre + r]
    else:
      pts += list(shape + centre)
  pts = np.array(pts)
  return np.concatenate([pts.min(0), pts.max(0)])


def generate(seed, index, image_size, max_objects=3, min_size=0.18,
             max_size=0.36):
  """One image with its boxes.

  Returns:
    dict: image uint8 [H, W, 3] RGB, boxes float32 [K, 4] as normalised
    (x1, y1, x2, y2), classes int32 [K].
  """
  rng = np.random.default_rng([seed, index])
  size = image_size
  img = _background(rng, size)
  boxes, classes = [], []
  for _ in range(rng.integers(1, max_objects + 1)):
    kind = int(rng.integers(len(CLASS_NAMES)))
    for _ in range(20):  # placement attempts
      radius = rng.uniform(min_size, max_size) * size / 2
      centre = rng.uniform(radius, size - radius, 2).astype(np.float32)
      filled, holes = _outline(CLASS_NAMES[kind], radius, rng)
      box = np.clip(_bounds(filled, centre), 0, size)
      if not _overlaps(box, boxes):
        break
    else:
      continue
    mask = np.zeros((size, size), np.uint8)
    _draw(mask, filled, centre, 255)
    _draw(mask, holes, centre, 0)
    alpha = (mask.astype(np.float32) / 255)[..., None]
    colour = _PALETTE[rng.integers(len(_PALETTE))]
    img = img * (1 - alpha) + _part_fill(rng, size, colour) * alpha
    boxes.append(box)
    classes.append(kind)
  for _ in range(rng.integers(0, 4)):  # clutter: small marks, lines, specks
    colour = tuple(float(v) for v in _PALETTE[rng.integers(len(_PALETTE))])
    p = rng.uniform(0, size, 2).astype(int)
    if rng.random() < 0.5:
      q = p + rng.integers(-size // 4, size // 4, 2)
      cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), colour,
               int(rng.integers(1, 3)), cv2.LINE_AA)
    else:
      cv2.circle(img, tuple(int(v) for v in p), int(rng.integers(1, 4)), colour,
                 -1, cv2.LINE_AA)
  img = img + rng.normal(0, rng.uniform(2, 8), img.shape)
  if rng.random() < 0.3:
    img = cv2.GaussianBlur(img, (3, 3), 0)
  return {
      "image": np.clip(img, 0, 255).astype(np.uint8),
      "boxes": np.array(boxes, np.float32).reshape(-1, 4) / size,
      "classes": np.array(classes, np.int32),
  }

