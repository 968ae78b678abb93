r"""A car-damage set in the polygon JSON format, on panels that reflect real
photographs, for checking the damage defaults on data they were not tuned on.

  python -m vq.photo_sets.damage --output=/tmp/vq/photo_damage \
      [--images=800] [--patterns=/usr/share/gimp/2.0/patterns]

Writes OUTPUT/images/*.jpg (240x320 JPEG) and OUTPUT/annotations.json
({"image_id", "damage_level", "regions": [{"points", "class_name"}]}), read
by `data.source=polygon_json`. A panel is a paint colour over which a
blurred real photograph is reflected (scikit-image's cameraman, cat, coffee,
rocket and astronaut photographs, as a car body mirrors its surroundings),
with the fine relief of GIMP's paper photograph as orange peel. The damage
is drawn here, by code separate from the embedded car generator: 1 scratch
(a jagged stroke of bare primer), 2 dent (a hollow that bends the
reflection and shades it), 3 spacing (the dark gap between two panels whose
reflections do not line up). Polygons are traced around what was drawn
(OpenCV contours), as an annotation tool would. `damage_level` is 1 when a
scratch or a dent is present.
"""
import json
import os

import cv2
import numpy as np
from absl import app, flags

from vq.photo_sets.textures import (define_patterns_flag, load_patterns,
                                         surface)
from vq.data.images import write_image

CLASS_NAMES = ("scratch", "dent", "spacing")
REFLECTED = ("camera", "chelsea", "coffee", "rocket", "astronaut")
RELIEF = ("Paper/paper.pat",)
IMAGE_HW = (240, 320)
SEED = 2026


def load_photos():
  """Grey float photographs the panels reflect."""
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  photos = []
  for name in REFLECTED:
    photo = np.asarray(getattr(skdata, name)(), np.float32)
    photos.append(photo.mean(-1) if photo.ndim == 3 else photo)
  return photos


def _reflection(rng, photos, hw):
  """A blurred, stretched crop of a photograph in [0, 1]."""
  h, w = hw
  photo = photos[rng.integers(len(photos))]
  ph, pw = photo.shape
  ch, cw = int(ph * rng.uniform(0.3, 0.6)), int(pw * rng.uniform(0.3, 0.6))
  y, x = rng.integers(ph - ch + 1), rng.integers(pw - cw + 1)
  crop = cv2.resize(photo[y:y + ch, x:x + cw], (w, h))
  crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(5, 12))
  low, high = np.percentile(crop, (2, 98))
  return np.clip((crop - low) / max(high - low, 1.0), 0, 1)


def _panel(rng, photos, relief, hw):
  paint = rng.uniform(25, 220, 3).astype(np.float32)
  mirror = _reflection(rng, photos, hw)[..., None]
  strength = rng.uniform(0.15, 0.35)
  image = paint * (1 - strength + 2 * strength * mirror)
  image += rng.uniform(30, 80) * np.clip(mirror - 0.75, 0, None) / 0.25
  return image + 0.15 * (relief - relief.mean())


def _traced(mask, class_id):
  """Regions of the polygon JSON format around the mask's blobs."""
  contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                                 cv2.CHAIN_APPROX_SIMPLE)
  return [{"points": (c[:, 0].astype(np.float64) + 0.5).tolist(),
           "class_name": class_id} for c in contours if len(c) >= 3]


def _spacing(rng, image, photos, relief):
  """A second panel beyond a dark gap; returns the gap's mask."""
  h, w = image.shape[:2]
  vertical = rng.random() < 0.5
  length, across = (h, w) if vertical else (w, h)
  t = np.linspace(0, length, 12)
  offset = rng.uniform(0.2, 0.8) * across + rng.uniform(-0.08, 0.08) * (
      across * np.sin(t / length * np.pi * rng.uniform(0.5, 1.5)))
  centre = np.stack([offset, t] if vertical else [t, offset], 1)
  line = np.round(centre).astype(np.int32)
  beyond = np.zeros((h, w), np.uint8)
  side = np.concatenate([line, [[w, h], [w, 0]] if vertical else
                         [[w, h], [0, h]]])
  cv2.fillPoly(beyond, [side], 1)
  other = _panel(rng, photos, relief, (h, w))
  image[beyond > 0] = other[beyond > 0]
  gap = np.zeros((h, w), np.uint8)
  cv2.polylines(gap, [line], False, 1, int(rng.integers(3, 7)))
  image[gap > 0] = image[gap > 0] * 0.15 + rng.uniform(5, 30)
  return gap


def _dent(rng, image):
  h, w = image.shape[:2]
  cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
  ry, rx = rng.uniform(10, 30), rng.uniform(10, 30)
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  d = np.sqrt(((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2)
  depth = np.clip(1 - d, 0, 1) ** 2
  pull = 1 - rng.uniform(0.5, 0.8) * depth
  bent = cv2.remap(image, cx + (xs - cx) * pull, cy + (ys - cy) * pull,
                   cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
  light = rng.uniform(0, 2 * np.pi)
  slope = ((xs - cx) / rx * np.cos(light) + (ys - cy) / ry * np.sin(light))
  shade = 1 + rng.uniform(0.6, 0.9) * slope * np.sqrt(np.clip(1 - d, 0, 1))
  image[:] = bent * shade[..., None]
  return (d < 0.85).astype(np.uint8)


def _scratch(rng, image):
  h, w = image.shape[:2]
  point = rng.uniform(0.1, 0.9, 2) * [w, h]
  heading = rng.uniform(0, 2 * np.pi)
  points = [point]
  for _ in range(rng.integers(5, 12)):
    heading += rng.normal(0, 0.35)
    point = point + rng.uniform(6, 16) * np.array([np.cos(heading),
                                                   np.sin(heading)])
    points.append(point)
  mask = np.zeros((h, w), np.uint8)
  cv2.polylines(mask, [np.round(points).astype(np.int32)], False, 1,
                int(rng.integers(2, 5)))
  primer = rng.uniform(170, 240)
  soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.6)[..., None]
  image[:] = image * (1 - 0.9 * soft) + primer * 0.9 * soft
  return mask


def panel(rng, photos, relief_pattern, hw=IMAGE_HW):
  """(uint8 RGB [H, W, 3], regions, damage_level)."""
  relief = surface(rng, relief_pattern, hw).mean(-1, keepdims=True)
  image = _panel(rng, photos, relief, hw).astype(np.float32)
  regions = []
  if rng.random() < 0.5:
    regions += _traced(_spacing(rng, image, photos, relief), 3)
  damaged = rng.random() < 0.5
  if damaged:
    for kind in rng.choice([1, 2], size=rng.integers(1, 3)):
      draw = _scratch if kind == 1 else _dent
      regions += _traced(draw(rng, image), int(kind))
  image += rng.normal(0, 2.0, image.shape)
  return (np.clip(np.round(image), 0, 255).astype(np.uint8), regions,
          int(damaged))


def write_dataset(output, patterns_dir, num_images=800, seed=SEED):
  """Writes OUTPUT/images and OUTPUT/annotations.json; returns the JSON's
  path."""
  if os.path.exists(output) and os.listdir(output):
    raise FileExistsError(f"{output} is not empty")
  os.makedirs(os.path.join(output, "images"))
  photos = load_photos()
  (relief,) = load_patterns(patterns_dir, RELIEF)
  rng = np.random.default_rng(seed)
  records = []
  for i in range(num_images):
    image, regions, level = panel(rng, photos, relief)
    name = f"photo_{i:05d}.jpg"
    write_image(os.path.join(output, "images", name), image)
    records.append({"image_id": name, "damage_level": level,
                    "regions": regions})
  path = os.path.join(output, "annotations.json")
  with open(path, "w") as f:
    json.dump(records, f)
  return path


def main(argv):
  del argv
  path = write_dataset(flags.FLAGS.output, flags.FLAGS.patterns,
                       flags.FLAGS.images)
  print(f"wrote {flags.FLAGS.images} photos and {path}")


if __name__ == "__main__":
  flags.DEFINE_string("output", None, "folder to write (must be empty)")
  define_patterns_flag()
  flags.DEFINE_integer("images", 800, "photos to write")
  flags.mark_flag_as_required("output")
  app.run(main)
