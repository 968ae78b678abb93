"""Files written whole: an error midway leaves the old file as it was."""
import os

import pytest

from vq import atomic_file


def test_an_error_midway_keeps_the_old_file_and_no_partial(tmp_path):
  path = tmp_path / "results.json"
  path.write_text("old")
  with pytest.raises(OSError, match="disk full"):
    with atomic_file.replaced(str(path)) as f:
      f.write("new, half")
      raise OSError("disk full")
  assert path.read_text() == "old"
  assert os.listdir(tmp_path) == ["results.json"]
  with atomic_file.replaced(str(path), "wb") as f:
    f.write(b"new")
  assert path.read_bytes() == b"new"
  assert os.listdir(tmp_path) == ["results.json"]
