"""Embedded keypoint dataset: an adhesive bead on the edge of a car window.

A camera looks across the glass edge: the glass surface is a line, the bead a
bump lying on it. Three keypoints, the reference points an adhesive line's
program uses: the bead's two bottom edges (where it meets the glass, left
then right along the edge) and its top (which gives the bead's height).
Scale, position, rotation, lighting, blur and the bead's shape vary; every
image is generated from (seed, index).
"""
import cv2
import numpy as np

KEYPOINT_NAMES = ("bottom_left", "bottom_right", "top")
FLIP_PERMUTATION = (1, 0, 2)  # left-right mirror swaps the bottom points


def generate(seed, index, image_size):
  """One image with its keypoints.

  Returns:
    dict: image uint8 [S, S, 3] RGB, keypoints float32 [3, 2] as (x, y)
    normalised to [0, 1].
  """
  rng = np.random.default_rng([seed, index])
  s = image_size
  scale = rng.uniform(0.6, 1.4)
  width = s * 0.45 * scale * rng.uniform(0.8, 1.2)
  height = width * rng.uniform(0.35, 0.8)
  angle = rng.uniform(-25, 25)
  centre = np.array([s / 2, s * 0.6]) + rng.uniform(-0.15, 0.15, 2) * s

  # Bead profile in its own frame: x along the glass edge, y up (negative).
  t = np.linspace(0, 1, 40)
  skew = rng.uniform(-0.15, 0.15)
  bump = np.sin(np.pi * t) ** rng.uniform(0.7, 1.6)
  xs = (t - 0.5) * width + skew * width * np.sin(np.pi * t)
  profile = np.stack([xs, -height * bump], 1)
  apex = profile[np.argmax(bump)]
  c, si = np.cos(np.radians(angle)), np.sin(np.radians(angle))
  rot = np.array([[c, -si], [si, c]])
  to_image = lambda p: p @ rot.T + centre

  img = np.empty((s, s, 3), np.float32)
  base = rng.uniform(60, 200)
  img[:] = base * rng.uniform(0.8, 1.1, 3)
  gy, gx = np.mgrid[0:s, 0:s] / s
  light = 1 + rng.uniform(-0.4, 0.4) * (gx - 0.5) + rng.uniform(-0.4, 0.4) * (gy - 0.5)
  img *= light[..., None]
  # Glass: everything below the edge line, darker and tinted.
  far = np.array([[-s * 2, 0], [s * 2, 0], [s * 2, s * 3], [-s * 2, s * 3]])
  glass = to_image(far).astype(np.float32)
  glass_colour = rng.uniform(10, 70, 3) * np.array([0.8, 0.9, 1.0])
  cv2.fillPoly(img, [np.round(glass * 16).astype(np.int32)],
               tuple(float(v) for v in glass_colour), cv2.LINE_AA, 4)
  # Bead: dark polymer, lit from above.
  bead = to_image(profile).astype(np.float32)
  bead_colour = rng.uniform(15, 90)
  cv2.fillPoly(img, [np.round(bead * 16).astype(np.int32)],
               (bead_colour,) * 3, cv2.LINE_AA, 4)
  highlight = to_image(profile[5:-5] * [1, 0.9] + [0, -height * 0.02])
  cv2.polylines(img, [np.round(highlight * 16).astype(np.int32)], False,
                (bead_colour + rng.uniform(20, 80),) * 3, 1, cv2.LINE_AA, 4)
  img += rng.normal(0, rng.uniform(2, 8), img.shape)
  k = int(rng.choice([1, 3, 5]))
  if k > 1:
    img = cv2.GaussianBlur(img, (k, k), 0)
  keypoints = to_image(np.stack([profile[0], profile[-1], apex]))
  return {"image": np.clip(img, 0, 255).astype(np.uint8),
          "keypoints": (keypoints / s).astype(np.float32)}

