"""Drawing helpers for the embedded segmentation datasets.

Defects are drawn as polygons (the annotation) and painted through the
rasterised polygon, so image and mask agree pixel for pixel.
"""
import cv2
import numpy as np

from vq.data.formats import polygons


def rasterise(points, h, w):
  """One polygon -> uint8 [h, w] mask (points past the border clipped)."""
  region = {"points": points, "class_name": 1}
  return polygons.to_mask([region], h, w, 1, warn=False)[..., 0]


def smooth_noise(rng, hw, scale, amplitude):
  """Gaussian noise low-passed at `scale` pixels, zero mean."""
  h, w = hw
  small = rng.normal(0, 1, (max(2, h // scale + 2), max(2, w // scale + 2)))
  big = cv2.resize(small.astype(np.float32), (w, h),
                   interpolation=cv2.INTER_CUBIC)
  return big * amplitude


def random_walk(rng, start, steps, step_length, turn_sd, heading):
  """Polyline of `steps` segments with a heading that drifts by turn_sd."""
  points = [np.asarray(start, np.float64)]
  for _ in range(steps):
    heading += rng.normal(0, turn_sd)
    points.append(points[-1] + step_length * np.array(
        [np.cos(heading), np.sin(heading)]))
  return np.array(points)


def stroke_polygon(polyline, width):
  """A closed polygon around a polyline at half `width` on each side."""
  p = np.asarray(polyline, np.float64)
  d = np.gradient(p, axis=0)
  d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
  normal = np.stack([-d[:, 1], d[:, 0]], 1) * width / 2
  return np.concatenate([p + normal, (p - normal)[::-1]])


def blob_polygon(rng, centre, radius, aspect=1.0, roughness=0.25, n=16):
  """A star-shaped irregular blob around `centre`."""
  angles = np.sort(rng.uniform(0, 2 * np.pi, n))
  r = radius * (1 + rng.uniform(-roughness, roughness, n))
  tilt = rng.uniform(0, np.pi)
  x, y = r * np.cos(angles) * aspect, r * np.sin(angles)
  c, s = np.cos(tilt), np.sin(tilt)
  return np.stack([x * c - y * s, x * s + y * c], 1) + centre


def ellipse_polygon(centre, axes, angle, n=24):
  t = np.linspace(0, 2 * np.pi, n, endpoint=False)
  x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
  c, s = np.cos(angle), np.sin(angle)
  return np.stack([x * c - y * s, x * s + y * c], 1) + centre


def paint(image, mask, colour_or_image, opacity=1.0, soften=0.0):
  """Blends `colour_or_image` into float `image` where `mask` is set."""
  alpha = mask.astype(np.float32) * opacity
  if soften:
    alpha = cv2.GaussianBlur(alpha, (0, 0), soften) * mask
  if image.ndim == 3:
    alpha = alpha[..., None]
  image *= 1 - alpha
  image += alpha * colour_or_image
  return image


def to_uint8(image):
  return np.clip(image, 0, 255).astype(np.uint8)
