"""Reading images from disk: uint8 RGB, with errors that name the file."""
import os

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# Images declaring more pixels than this are refused before decoding (a
# small file can declare 30000 x 30000 pixels: gigabytes once decoded).
MAX_PIXELS = 100_000_000


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
  declared = declared_size(data)
  if declared and declared[0] * declared[1] > MAX_PIXELS:
    raise ValueError(f"{os.fsdecode(path)!r}: declares {declared[1]}x"
                     f"{declared[0]} pixels, above the budget of "
                     f"{MAX_PIXELS:,} (vq.data.images.MAX_PIXELS)")
  try:
    image = cv2.imdecode(data, flags) if data.size else None
  except cv2.error as e:  # e.g. OpenCV's own limit on image size
    raise ValueError(f"{os.fsdecode(path)!r}: not decoded "
                     f"({str(e).strip().splitlines()[-1][:200]})") from None
  if image is None:
    raise ValueError(f"{os.fsdecode(path)!r}: not a readable image "
                     f"({data.size} bytes; expected one of "
                     f"{', '.join(IMAGE_EXTENSIONS)})")
  return image


def declared_size(data):
  """(height, width) a PNG or JPEG file's header declares (uint8 bytes);
  None for other formats or a header that cannot be read."""
  head = data[:65536].tobytes()
  if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(
        head[20:24], "big")
    return height, width
  if head[:2] != b"\xff\xd8":
    return None
  i = 2
  while i + 9 <= len(head) and head[i] == 0xFF:
    marker = head[i + 1]
    if marker == 0xFF:  # fill byte
      i += 1
      continue
    # Start-of-frame markers (not DHT C4, JPG C8, DAC CC) hold the size.
    if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
      return (int.from_bytes(head[i + 5:i + 7], "big"),
              int.from_bytes(head[i + 7:i + 9], "big"))
    i += 2 + int.from_bytes(head[i + 2:i + 4], "big")
  return None


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
