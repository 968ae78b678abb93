r"""A Severstal-format steel set made from real photographs, for checking
segmentation defaults on data they were not tuned on.

  python -m vq.photo_sets.steel --output=/tmp/vq/photo_steel [--images=1000]

Writes OUTPUT/train_images/*.jpg (128x800 grey strips, JPEG quality 90) and
OUTPUT/train.csv (ImageId,ClassId,EncodedPixels, Severstal RLE), read by
`data.source=severstal`. The surfaces are crops of scikit-image's surface
photographs (moon, gravel, brick, grass: none is used by the steel
generator the defaults were tuned on), mirrored into strips with the
brightness and contrast of rolled steel. The defects are drawn here, with
OpenCV primitives, by code separate from both vq's embedded steel generator
and its anomaly test defects: 1 pits (clusters of small dark dents),
2 lines (long thin scratches, light or dark), 3 patches (irregular regions
of changed tone and blur), 4 cracks (dark branching fissures). About 30 %
of the strips are clean; the others carry one or two defects.
"""
import os

import cv2
import numpy as np
from absl import app, flags

from vq.data.formats import rle

PHOTOS = ("moon", "gravel", "brick", "grass")
STRIP_HW = (128, 800)
CLEAN_FRACTION = 0.3
SEED = 2026


def load_photos():
  """The grey surface photographs the strips are cut from."""
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  photos = [getattr(skdata, name)() for name in PHOTOS]
  return [cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) if p.ndim == 3 else p
          for p in photos]


def surface(rng, photos, strip_hw=STRIP_HW):
  """A grey strip from mirrored crops of one photograph."""
  photo = photos[rng.integers(len(photos))]
  h, w = strip_hw
  half = w // 2
  # The 512-pixel photos still span 400 at 0.8; wider strips enlarge them.
  scale = max(rng.uniform(0.8, 1.0), half / photo.shape[1],
              h / photo.shape[0])
  small = cv2.resize(photo, None, fx=scale, fy=scale,
                     interpolation=cv2.INTER_AREA)
  y = rng.integers(small.shape[0] - h + 1)
  x = rng.integers(small.shape[1] - half + 1)
  crop = small[y:y + h, x:x + half].astype(np.float32)
  strip = np.concatenate([crop, crop[:, ::-1]], 1)
  strip = (strip - strip.mean()) / max(strip.std(), 1.0)
  return rng.uniform(80, 130) + rng.uniform(12, 30) * strip


def _pits(rng, image):
  h, w = image.shape
  mask = np.zeros((h, w), np.uint8)
  cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.05, 0.95) * w
  spread = rng.uniform(6, 18, 2)
  for _ in range(rng.integers(6, 30)):
    y = int(np.clip(rng.normal(cy, spread[0]), 0, h - 1))
    x = int(np.clip(rng.normal(cx, spread[1] * 2), 0, w - 1))
    r = int(rng.integers(1, 4))
    cv2.circle(image, (x, y), r, float(image[y, x] - rng.uniform(35, 70)), -1)
    cv2.circle(mask, (x, y), r + 2, 1, -1)
  return mask


def _lines(rng, image):
  h, w = image.shape
  mask = np.zeros((h, w), np.uint8)
  for _ in range(rng.integers(1, 3)):
    length = rng.uniform(120, 600)
    angle = rng.uniform(-0.25, 0.25)
    x0, y0 = rng.uniform(0, w), rng.uniform(0.1, 0.9) * h
    x1 = x0 + length * np.cos(angle)
    y1 = y0 + length * np.sin(angle)
    width = int(rng.integers(2, 4))
    tone = image.mean() + rng.choice([-1, 1]) * rng.uniform(45, 80)
    p0, p1 = (int(x0), int(y0)), (int(x1), int(y1))
    cv2.line(image, p0, p1, float(tone), width, cv2.LINE_AA)
    cv2.line(mask, p0, p1, 1, width + 2)
  return mask


def _patches(rng, image):
  h, w = image.shape
  cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.2, 0.8) * h
  n = 12
  angles = np.sort(rng.uniform(0, 2 * np.pi, n))
  radii = rng.uniform(15, 45) * rng.uniform(0.6, 1.4, n)
  points = np.stack([cx + 2 * radii * np.cos(angles),
                     cy + radii * np.sin(angles)], -1)
  mask = np.zeros((h, w), np.uint8)
  cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
  blurred = cv2.GaussianBlur(image, (0, 0), rng.uniform(1.5, 3.0))
  shifted = blurred + rng.choice([-1, 1]) * rng.uniform(20, 40)
  soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 2.0)
  image[:] = image * (1 - soft) + shifted * soft
  return mask


def _cracks(rng, image):
  h, w = image.shape
  mask = np.zeros((h, w), np.uint8)
  starts = [(rng.uniform(0, w), rng.uniform(0.1, 0.9) * h,
             rng.uniform(0, 2 * np.pi), rng.uniform(60, 200))]
  while starts:
    x, y, heading, length = starts.pop()
    points = [(x, y)]
    for _ in range(int(length / 6)):
      heading += rng.normal(0, 0.5)
      x, y = x + 6 * np.cos(heading), y + 6 * np.sin(heading)
      points.append((x, y))
      if length > 40 and rng.random() < 0.04:
        starts.append((x, y, heading + rng.choice([-1, 1]) * 0.8,
                       length * 0.4))
    line = np.round(points).astype(np.int32)
    cv2.polylines(image, [line], False, float(image.mean() - 60), 1,
                  cv2.LINE_AA)
    cv2.polylines(mask, [line], False, 1, 4)
  return mask


DEFECTS = (_pits, _lines, _patches, _cracks)


def strip(rng, photos, strip_hw=STRIP_HW):
  """(uint8 grey strip as RGB [H, W, 3], masks [H, W, 4])."""
  image = surface(rng, photos, strip_hw).astype(np.float32)
  masks = np.zeros((*strip_hw, len(DEFECTS)), np.uint8)
  if rng.random() >= CLEAN_FRACTION:
    for k in rng.choice(len(DEFECTS), size=rng.integers(1, 3),
                        replace=False):
      masks[..., k] |= DEFECTS[k](rng, image)
  image = image + rng.normal(0, 2.0, image.shape)
  grey = np.clip(image, 0, 255).astype(np.uint8)
  return np.repeat(grey[..., None], 3, -1), masks


def write_set(output, num_images, seed=SEED, strip_hw=STRIP_HW):
  """Writes the strips and train.csv; returns the CSV path."""
  os.makedirs(os.path.join(output, "train_images"), exist_ok=True)
  rng = np.random.default_rng(seed)
  photos = load_photos()
  rows = ["ImageId,ClassId,EncodedPixels"]
  for i in range(num_images):
    image, masks = strip(rng, photos, strip_hw)
    name = f"{i:06d}.jpg"
    cv2.imwrite(os.path.join(output, "train_images", name),
                np.ascontiguousarray(image[..., ::-1]),
                [cv2.IMWRITE_JPEG_QUALITY, 90])
    for k in range(masks.shape[-1]):
      if masks[..., k].any():
        rows.append(f"{name},{k + 1},{rle.encode(masks[..., k])}")
  path = os.path.join(output, "train.csv")
  with open(path, "w") as f:
    f.write("\n".join(rows) + "\n")
  return path


FLAGS = flags.FLAGS


def main(argv):
  del argv
  path = write_set(FLAGS.output, FLAGS.images)
  print(f"{FLAGS.images} strips -> {path}")


if __name__ == "__main__":
  flags.DEFINE_string("output", "/tmp/vq/photo_steel", "Where to write.")
  flags.DEFINE_integer("images", 1000, "Strips to write.")
  app.run(main)
