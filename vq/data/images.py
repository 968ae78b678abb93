"""Reading images from disk: uint8 RGB, with errors that name the file."""
import os

import cv2
import numpy as np
import simplejpeg

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif")
MULTI_PAGE_EXTENSIONS = (".tif", ".tiff", ".gif")
# Images declaring more pixels than this are refused before decoding (a
# small file can declare 30000 x 30000 pixels: gigabytes once decoded); the
# environment variable VQ_MAX_PIXELS sets another budget for every tool.
MAX_PIXELS = 100_000_000


def max_pixels():
  """The pixel budget: VQ_MAX_PIXELS, or MAX_PIXELS."""
  value = os.environ.get("VQ_MAX_PIXELS", "")
  try:
    return int(value) if value else MAX_PIXELS
  except ValueError:
    raise ValueError(f"VQ_MAX_PIXELS={value!r}: expected a whole number of "
                     "pixels") from None


def read_image(path):
  """Reads an image file as uint8 [H, W, 3] RGB.

  Grey, 16-bit and RGBA files become 8-bit RGB. The bytes are read by
  Python and decoded from memory, so any file name works (OpenCV's own file
  reading cannot open some, e.g. names that are not valid UTF-8).
  """
  image = _decode(path, cv2.IMREAD_COLOR)
  return np.ascontiguousarray(image[..., ::-1])  # OpenCV's BGR -> RGB


def read_pages(path):
  """Every page of a TIFF or frame of a GIF as `read_image` reads one
  image; a list of one for other formats."""
  if not os.fsdecode(path).lower().endswith(MULTI_PAGE_EXTENSIONS):
    return [read_image(path)]
  data = _checked_bytes(path)
  try:
    ok, pages = cv2.imdecodemulti(data, cv2.IMREAD_COLOR)
  except cv2.error as e:
    raise _decode_error(path, e) from None
  if not ok or not pages:
    raise _unreadable(path, data)
  return [np.ascontiguousarray(page[..., ::-1]) for page in pages]


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
  data = _checked_bytes(path)
  try:
    image = cv2.imdecode(data, flags) if data.size else None
  except cv2.error as e:  # e.g. OpenCV's own limit on image size
    raise _decode_error(path, e) from None
  if image is None:
    raise _unreadable(path, data)
  return image


def _checked_bytes(path):
  """The file's bytes, refused (naming the file) when it is missing,
  declares more than MAX_PIXELS pixels or ends early."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"image file not found: {os.fsdecode(path)!r}")
  data = np.fromfile(path, np.uint8)
  declared, budget = declared_size(data), max_pixels()
  if declared and declared[0] * declared[1] > budget:
    raise ValueError(f"{os.fsdecode(path)!r}: declares {declared[1]}x"
                     f"{declared[0]} pixels, above the budget of {budget:,} "
                     "(the environment variable VQ_MAX_PIXELS sets another)")
  truncated = _truncation(data)
  if truncated:
    raise ValueError(f"{os.fsdecode(path)!r}: truncated {truncated} "
                     f"({data.size} bytes)")
  return data


def _decode_error(path, error):
  return ValueError(f"{os.fsdecode(path)!r}: not decoded "
                    f"({str(error).strip().splitlines()[-1][:200]})")


def _unreadable(path, data):
  """The error for bytes OpenCV returned no image for: the samples' type
  when it can read them but not as 8-bit colour (e.g. float TIFF)."""
  try:
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
  except cv2.error:
    raw = None
  if raw is not None:
    return ValueError(f"{os.fsdecode(path)!r}: {raw.dtype} samples; vq "
                      "reads images of 8 or 16 bits per sample")
  return ValueError(f"{os.fsdecode(path)!r}: not a readable image "
                    f"({data.size} bytes; expected one of "
                    f"{', '.join(IMAGE_EXTENSIONS)})")


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


# libjpeg's warnings about missing or damaged data (it goes on, filling
# the rest of the image with grey, and OpenCV only prints them).
_JPEG_DAMAGE = ("Corrupt JPEG data", "Premature end of JPEG file",
                "Inconsistent progression sequence")


def turned_note(path, shown_hw, other_hw):
  """For an error on two sizes that differ: a sentence when the
  photograph `path` is stored at `other_hw` and read at `shown_hw` because
  its EXIF orientation tag turns it (OpenCV reads a photograph as the tag
  says, as Labelme and Ultralytics show it); "" otherwise."""
  stored = declared_size(np.fromfile(path, np.uint8, count=65536))
  if (not stored or tuple(stored) == tuple(shown_hw)
      or tuple(stored) != tuple(other_hw)):
    return ""
  return (f" The photograph is stored {stored[1]}x{stored[0]} and its EXIF "
          f"orientation tag turns it to {shown_hw[1]}x{shown_hw[0]}; the "
          "annotation is of the stored pixels: remove the tag (e.g. "
          "exiftool -Orientation= FILE) or annotate the photograph as it "
          "is shown.")


def _truncation(data):
  """Why the file ends early, or '': no end marker (JPEG, PNG), or
  libjpeg's warnings of missing data (a cut JPEG with an end-of-image
  marker appended), found by a decode at an eighth of the size."""
  tail = data[-4096:].tobytes().rstrip(b"\0")
  if data[:8].tobytes() == b"\x89PNG\r\n\x1a\n" and b"IEND" not in tail:
    return "PNG: no IEND chunk"
  if data[:2].tobytes() != b"\xff\xd8":
    return ""
  if b"\xff\xd9" not in tail:
    return "JPEG: no end-of-image marker"
  try:
    simplejpeg.decode_jpeg(data, strict=True, min_height=1, min_width=1)
  except ValueError as e:
    if str(e).startswith(_JPEG_DAMAGE):
      return f"JPEG: {e}"
  return ""


def write_image(path, image):
  """Writes uint8 [H, W, 3] RGB to `path`, format by extension. The bytes
  are encoded in memory and written by Python, so any file name works and
  a failed write raises the system's reason (e.g. no space left)."""
  extension = os.path.splitext(os.fsdecode(path))[1] or ".png"
  try:
    ok, data = cv2.imencode(extension, np.ascontiguousarray(image[..., ::-1]))
  except cv2.error:
    ok = False
  if not ok:
    raise ValueError(f"{os.fsdecode(path)!r}: OpenCV cannot write "
                     f"{extension} images")
  with open(path, "wb") as f:
    f.write(data.tobytes())


def find_images(folder):
  """Sorted image files of a folder (not recursive)."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"image folder not found: {folder}")
  return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                if f.lower().endswith(IMAGE_EXTENSIONS))
