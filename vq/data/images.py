"""Reading images from disk: uint8 RGB, with errors that name the file."""
import os

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def read_image(path):
  """Reads an image file as uint8 [H, W, 3] RGB."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"image file not found: {path}")
  image = cv2.imread(path, cv2.IMREAD_COLOR)
  if image is None:
    raise ValueError(f"{path}: not a readable image (expected one of "
                     f"{', '.join(IMAGE_EXTENSIONS)})")
  return np.ascontiguousarray(image[..., ::-1])  # OpenCV's BGR -> RGB


def write_image(path, image):
  """Writes uint8 [H, W, 3] RGB to `path`, format by extension."""
  if not cv2.imwrite(os.fspath(path), np.ascontiguousarray(image[..., ::-1])):
    raise ValueError(f"could not write image to {path}")


def find_images(folder):
  """Sorted image files of a folder (not recursive)."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"image folder not found: {folder}")
  return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                if f.lower().endswith(IMAGE_EXTENSIONS))
