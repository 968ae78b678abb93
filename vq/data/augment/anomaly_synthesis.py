"""DRAEM's synthetic anomalies for training on normal images only.

A Perlin-noise map (2^k lattice cells per axis, k drawn per axis, randomly
rotated, thresholded at 0.5), or a few thin strokes, selects a region of
the normal image, and an
augmented texture from an anomaly-source set is blended into it with a
random opacity. Half the samples stay clean (empty mask).
"""
import os

import cv2
import numpy as np

from vq.data.images import find_images, read_image
from vq.data.augment.perlin import perlin_noise
from vq.data.embedded.surface_drawing import smooth_noise, to_uint8
from vq.data.tfds_records import TfdsRecords


# Anomaly-source augmentations (3 distinct ones per sample) --------------------

def _gamma(img, rng):
  return to_uint8(255 * (img / 255.0) ** rng.uniform(0.5, 2.0))


def _brightness(img, rng):
  return to_uint8(img.astype(np.float32) * rng.uniform(0.8, 1.2) +
                  rng.uniform(-30, 30))


def _sharpness(img, rng):
  blurred = cv2.GaussianBlur(img, (0, 0), 1.0).astype(np.float32)
  amount = rng.uniform(0.0, 2.0)
  return to_uint8(img + amount * (img.astype(np.float32) - blurred))


def _hue_saturation(img, rng):
  hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.int32)
  hsv[..., 0] = (hsv[..., 0] + rng.integers(-50, 51)) % 180
  hsv[..., 1] = np.clip(hsv[..., 1] + rng.integers(-50, 51), 0, 255)
  return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def _solarize(img, rng):
  threshold = rng.integers(32, 128)
  return np.where(img >= threshold, 255 - img, img).astype(np.uint8)


def _posterize(img, rng):
  bits = rng.integers(4, 8)
  return (img >> (8 - bits) << (8 - bits)).astype(np.uint8)


def _invert(img, rng):
  del rng
  return 255 - img


def _autocontrast(img, rng):
  del rng
  lo, hi = img.min((0, 1)), img.max((0, 1))
  return to_uint8((img - lo) * (255.0 / np.maximum(hi - lo, 1)))


def _equalize(img, rng):
  del rng
  return np.stack([cv2.equalizeHist(np.ascontiguousarray(img[..., c]))
                   for c in range(3)], -1)


def rotate(img, degrees):
  """Rotates about the centre, mirroring the image into the corners (a
  constant fill would put flat dark regions, labelled normal, into the
  training images)."""
  h, w = img.shape[:2]
  m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
  return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def _rotate(img, rng):
  return rotate(img, rng.uniform(-45, 45))


SOURCE_AUGMENTATIONS = (_gamma, _brightness, _sharpness, _hue_saturation,
                        _solarize, _posterize, _invert, _autocontrast,
                        _equalize, _rotate)


def augment_source(image, rng, count=3):
  """Applies `count` distinct augmentations, in random order."""
  for i in rng.choice(len(SOURCE_AUGMENTATIONS), count, replace=False):
    image = SOURCE_AUGMENTATIONS[i](image, rng)
  return image


# Anomaly sources -------------------------------------------------------------

def procedural_texture(rng, size):
  """A random colourful texture: noise, stripes, checks or blobs."""
  kind = rng.integers(4)
  colours = rng.uniform(0, 255, (2, 3))
  if kind == 0:
    t = sum(smooth_noise(rng, (size, size), max(1, size // 2 ** o), 0.5 ** o)
            for o in range(1, 5))
  elif kind == 1:
    ys, xs = np.mgrid[0:size, 0:size]
    a = rng.uniform(0, np.pi)
    t = np.sin((xs * np.cos(a) + ys * np.sin(a)) * rng.uniform(0.2, 1.2))
  elif kind == 2:
    cell = rng.integers(2, 9)
    ys, xs = np.mgrid[0:size, 0:size] // cell
    t = ((ys + xs) % 2).astype(np.float32)
  else:
    t = np.zeros((size, size), np.float32)
    for _ in range(rng.integers(5, 30)):
      c = tuple(int(v) for v in rng.integers(0, size, 2))
      cv2.circle(t, c, int(rng.integers(1, max(2, size // 6))),
                 float(rng.uniform(0.3, 1)), -1)
  t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
  image = colours[0] * (1 - t[..., None]) + colours[1] * t[..., None]
  return to_uint8(image + rng.normal(0, 6, image.shape))


# scikit-image's photographs, none of them a surface vq inspects (its brick,
# grass and gravel textures are the embedded categories).
PHOTOGRAPHS = ("astronaut", "chelsea", "coffee", "rocket",
               "hubble_deep_field", "immunohistochemistry", "retina", "coins",
               "camera", "moon", "page", "horse", "cell", "text")
SOURCE_KINDS = ("photographs", "procedural")


def _photographs():
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  photos = []
  for name in PHOTOGRAPHS:
    photo = np.asarray(getattr(skdata, name)())
    if photo.dtype == bool:
      photo = photo.astype(np.uint8) * 255
    if photo.ndim == 2:
      photo = np.repeat(photo[..., None], 3, -1)
    photos.append(np.ascontiguousarray(photo[..., :3]))
  return photos


class AnomalySource:
  """Anomaly-source images, as DRAEM takes from DTD: 'photographs' (random
  crops of the photographs scikit-image ships, the default), 'procedural'
  (drawn textures), 'tfds:NAME' (the training split of a prepared TFDS
  dataset, e.g. tfds:dtd, in `tfds_data_dir`) or a folder of images (e.g.
  DTD's, searched recursively)."""

  def __init__(self, source="photographs", tfds_data_dir=""):
    self.paths, self.photos, self.records = [], [], None
    if source == "photographs":
      self.photos = _photographs()
    elif source.startswith("tfds:"):
      self.records = TfdsRecords(source[len("tfds:"):], "train",
                                 tfds_data_dir)
      if not len(self.records):
        raise ValueError(f"data.anomaly_source={source!r} has no images")
    elif source != "procedural":
      if not os.path.isdir(source):
        raise FileNotFoundError(
            f"data.anomaly_source={source!r} is neither a folder nor one of "
            f"{SOURCE_KINDS}")
      for root, _, _ in sorted(os.walk(source)):
        self.paths += find_images(root)
      if not self.paths:
        raise FileNotFoundError(f"no anomaly-source images under {source}")

  def sample(self, rng, size):
    if self.photos:
      photo = self.photos[rng.integers(len(self.photos))]
      h, w = photo.shape[:2]
      side = int(rng.uniform(0.15, 1.0) * min(h, w))
      y, x = rng.integers(h - side + 1), rng.integers(w - side + 1)
      image = cv2.resize(photo[y:y + side, x:x + side], (size, size),
                         interpolation=cv2.INTER_AREA)
    elif self.paths or self.records:
      image = (read_image(self.paths[rng.integers(len(self.paths))])
               if self.paths else
               self.records[int(rng.integers(len(self.records)))]["image"])
      image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    else:
      image = procedural_texture(rng, size)
    return augment_source(image, rng)


def distorted(image, rng, max_shift=8.0):
  """The image itself, locally distorted: every pixel moved by a smooth
  random field (standard-normal values on 2-5 lattice cells, upsampled,
  times an amplitude drawn from 2..`max_shift` pixels; mirrored at the
  borders). Blended in as the source, it makes an anomaly of structure
  alone: same material, same colours, bent or displaced."""
  h, w = image.shape[:2]
  cells = int(rng.integers(2, 6))
  field = [cv2.resize(rng.normal(0, 1, (cells, cells)).astype(np.float32),
                      (w, h), interpolation=cv2.INTER_CUBIC)
           for _ in range(2)]
  amplitude = rng.uniform(2.0, max_shift)
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  return cv2.remap(image, xs + amplitude * field[0], ys + amplitude * field[1],
                   cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


# Masks and blending ----------------------------------------------------------

def perlin_mask(rng, size, max_scale=5, threshold=0.5):
  """A rotated, thresholded Perlin map: uint8 [size, size] 0/1."""
  ry, rx = (2 ** int(k) for k in rng.integers(0, max_scale + 1, 2))
  noise = perlin_noise(rng, (size, size), (ry, rx))
  noise = rotate(noise, rng.uniform(-90, 90))
  return (noise > threshold).astype(np.uint8)


def stroke_mask(rng, size, max_strokes=3):
  """1 to `max_strokes` thin curved strokes (CutPaste's 'scar', bent): each
  a random walk across 20-90 % of the image, 1-3 pixels wide; uint8
  [size, size] 0/1."""
  mask = np.zeros((size, size), np.uint8)
  for _ in range(int(rng.integers(1, max_strokes + 1))):
    steps = max(2, int(rng.uniform(0.2, 0.9) * size / 4))  # 4-pixel steps
    heading = rng.uniform(0, 2 * np.pi)
    start = rng.uniform(0.1, 0.9, 2) * size
    headings = heading + np.cumsum(rng.normal(0, 0.3, steps))
    moves = 4 * np.stack([np.cos(headings), np.sin(headings)], -1)
    points = start + np.concatenate([[[0.0, 0.0]], np.cumsum(moves, 0)])
    cv2.polylines(mask, [np.round(points).astype(np.int32)], False, 1,
                  int(rng.integers(1, 4)))
  return mask


def synthesize_anomaly(image, source, rng, max_scale=5, clean_probability=0.5,
                       max_opacity_keep=0.8, stroke_probability=0.0):
  """(augmented uint8 image, uint8 mask) from a normal image.

  With probability `clean_probability` the image is returned unchanged with
  an empty mask. Otherwise inside the mask (a Perlin region, or with
  probability `stroke_probability` thin strokes) the result is
  (1 - beta) * source + beta * image, beta ~ U(0, max_opacity_keep).
  """
  size = image.shape[0]
  empty = np.zeros(image.shape[:2], np.uint8)
  if rng.random() < clean_probability:
    return image, empty
  if stroke_probability and rng.random() < stroke_probability:
    mask = stroke_mask(rng, size)
  else:
    mask = perlin_mask(rng, size, max_scale)
  if not mask.any():
    return image, empty
  beta = rng.uniform(0, max_opacity_keep)
  m = mask[..., None].astype(np.float32)
  blended = (image * (1 - m) + (1 - beta) * source * m + beta * image * m)
  return to_uint8(blended), mask
