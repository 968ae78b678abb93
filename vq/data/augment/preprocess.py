"""Host-side image preprocessing options (OpenCV)."""
import cv2
import numpy as np


def remove_highlights(image, threshold=250, dilate=2):
  """Inpaints saturated specular highlights (light-source reflections).

  Pixels whose grey level is at least `threshold`, grown by `dilate` pixels,
  are filled from their surroundings (Telea inpainting).
  """
  grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
  mask = (grey >= threshold).astype(np.uint8)
  if not mask.any():
    return image
  if dilate:
    mask = cv2.dilate(mask, np.ones((2 * dilate + 1,) * 2, np.uint8))
  return cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)


def to_grayscale(image):
  """RGB uint8 [H, W, 3] -> [H, W, 1]."""
  return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
