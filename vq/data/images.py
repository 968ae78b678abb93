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
  image = _decode(path, cv2.IMREAD_COLOR)
  return np.ascontiguousarray(image[..., ::-1])  # OpenCV's BGR -> RGB


def read_mask(path):
  """Reads a mask file as uint8 [H, W], 1 where any channel is non-zero.

  The file's own bit depth is kept while reading, so a 16-bit PNG holding
  0 and 1 is not scaled to zeros.
  """
  mask = _decode(path, cv2.IMREAD_UNCHANGED)
  if mask.ndim == 3:
    mask = mask.max(-1)
  return (mask > 0).astype(np.uint8)


def _decode(path, flags):
  if not os.path.isfile(path):
    raise FileNotFoundError(f"image file not found: {os.fsdecode(path)!r}")
  data = np.fromfile(path, np.uint8)
  truncated = _truncation(data)
  if truncated:
    raise ValueError(f"{os.fsdecode(path)!r}: truncated {truncated} "
                     f"({data.size} bytes)")
  image = cv2.imdecode(data, flags) if data.size else None
  if image is None:
    raise ValueError(f"{os.fsdecode(path)!r}: not a readable image "
                     f"({data.size} bytes; expected one of "
                     f"{', '.join(IMAGE_EXTENSIONS)})")
  return image


def _truncation(data):
  """'JPEG' or 'PNG' when the file lacks its format's end marker (libjpeg
  fills the missing rows with grey and only prints a warning)."""
  tail = data[-4096:].tobytes().rstrip(b"\0")
  if data[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in tail:
    return "JPEG: no end-of-image marker"
  if data[:8].tobytes() == b"\x89PNG\r\n\x1a\n" and b"IEND" not in tail:
    return "PNG: no IEND chunk"
  return ""


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
