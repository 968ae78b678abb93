"""Errors raised by the dataset readers, and reading their text files."""
import json


class AnnotationError(ValueError):
  """An annotation file that does not hold what its format promises."""


def read_text(path):
  """A label or annotation file's text: UTF-8 (a byte-order mark allowed);
  any other encoding is an AnnotationError naming the file, line and
  byte."""
  with open(path, "rb") as f:
    data = f.read()
  try:
    return data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line = data[:e.start].count(b"\n") + 1
    raise AnnotationError(
        f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at "
        f"offset {e.start}); save the file as UTF-8") from None


def read_json(path):
  """A JSON annotation file (UTF-8); invalid JSON is an AnnotationError
  naming the file."""
  try:
    return json.loads(read_text(path))
  except json.JSONDecodeError as e:
    raise AnnotationError(f"{path}: not valid JSON ({e})") from None

