"""Reading images from disk: uint8 RGB, with errors that name the file."""
import os

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def read_image(path):
  """Reads an image file as uint8 [H, W, 3] RGB.

  Grey, 16-bit and RGBA files become 8-bit RGB. The bytes are read by
  Python and decoded from memory, so any file name works (OpenCV's own file
  reading cannot open some, e.g. names that are not valid UTF-8).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"image file not found: {os.fsdecode(path)!r}")
  data = np.fromfile(path, np.uint8)
  image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
  if image is None:
    raise ValueError(f"{os.fsdecode(path)!r}: not a readable image "
                     f"({data.size} bytes; expected one of "
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
