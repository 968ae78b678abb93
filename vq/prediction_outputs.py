"""The output folder of vq.predict and vq.inspect: JSON records, overlays,
anomaly maps (NumPy files the records name), annotated videos, the inputs
that failed or were skipped, and a Severstal submission for segmentation.

Crash-consistent: each input's overlay and map are written before its
record line, and the line is flushed, so a record always has its files.
OUTPUT/run.json says which model and input made the folder and, once the
run ends, that it finished. A rerun of the same model over the same input
replaces the folder's outputs (saying whether the earlier run had
finished); a folder holding anything else is refused unless `overwrite`.
"""
import csv
import json
import os
import shutil

import cv2
import numpy as np
from absl import logging

from vq import atomic_file
from vq.data.images import write_image

RUN_FILE = "run.json"
OVERLAYS = "overlays"
MAPS = "maps"
FAILED, SKIPPED, SUBMISSION = "failed.txt", "skipped.txt", "submission.csv"
# Written by the tools beside the records (vq.inspect's stage timings).
OTHER_OUTPUTS = ("stages.json",)


class OutputFolderError(ValueError):
  """The output folder holds another run's or other files."""


def prepare(output, identity, records_name, overwrite=False):
  """Makes `output` ready for a run described by `identity` (a JSON-able
  dict: model, input, ...): refuses a folder holding other files or
  another run's outputs (unless `overwrite`), removes the outputs of an
  earlier run of the same identity, and marks the run unfinished."""
  identity = json.loads(json.dumps(identity))  # as read back from run.json
  ours = (RUN_FILE, OVERLAYS, MAPS, records_name, FAILED, SKIPPED, SUBMISSION,
          *OTHER_OUTPUTS)
  present = sorted(os.listdir(output)) if os.path.isdir(output) else []
  earlier = _read_run_file(output) if RUN_FILE in present else None
  if present and not overwrite:
    others = [n for n in present if n not in ours]
    if others or earlier is None:
      raise OutputFolderError(
          f"--output={output} holds files vq did not write there "
          f"({', '.join(others[:3] or present[:3])}{', ...' if len(present) > 3 else ''}); "
          "name a new or empty folder, or pass --overwrite to replace "
          "vq's outputs in it")
    if earlier.get("identity") != identity:
      raise OutputFolderError(
          f"--output={output} holds the outputs of another run "
          f"({_describe(earlier.get('identity'))}); name another folder, or "
          "pass --overwrite to replace them")
  if earlier is not None and earlier.get("identity") == identity:
    state = ("finished" if earlier.get("finished") else
             "did not finish (stopped after "
             f"{_count_lines(os.path.join(output, records_name))} records)")
    logging.warning("%s: replacing the outputs of an earlier run of the "
                    "same model and input, which %s", output, state)
  for name in ours:
    path = os.path.join(output, name)
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path)
    elif os.path.lexists(path):
      os.remove(path)
  os.makedirs(os.path.join(output, OVERLAYS), exist_ok=True)
  _write_run_file(output, {"identity": identity, "finished": False})


def _count_lines(path):
  try:
    with open(path, "rb") as f:
      return sum(line.endswith(b"\n") for line in f)
  except OSError:
    return 0


def _describe(identity):
  if not isinstance(identity, dict):
    return "unknown"
  return ", ".join(f"{k}={v}" for k, v in identity.items())


def _read_run_file(output):
  path = os.path.join(output, RUN_FILE)
  try:
    with open(path) as f:
      run = json.load(f)
  except (OSError, ValueError) as e:
    raise OutputFolderError(
        f"{path}: damaged ({e}); pass --overwrite to replace the folder's "
        "outputs") from None
  if not isinstance(run, dict):
    raise OutputFolderError(f"{path}: damaged (not a JSON object); pass "
                            "--overwrite to replace the folder's outputs")
  return run


def _write_run_file(output, run):
  """run.json replaced in one step (a crash leaves the old or the new)."""
  with atomic_file.replaced(os.path.join(output, RUN_FILE)) as f:
    json.dump(run, f, indent=1)


class RecordWriter:
  """Files under OUTPUT (`prepare`d): JSON lines, overlays drawn by
  `draw(image, record)`, annotated videos, failed and skipped inputs, and
  with `submission_classes` a Severstal submission of the records' masks.
  Inputs are named by their path under `input_root` (a folder; else by
  file name), so images of one name in two subfolders stay apart."""

  def __init__(self, output, draw, records_name="predictions.jsonl",
               submission_classes=None, overlays=True, input_root=""):
    self.output, self.draw, self.overlays = output, draw, overlays
    self.submission_classes = submission_classes
    self.input_root = input_root if os.path.isdir(input_root) else ""
    self.records = open(os.path.join(output, records_name), "w")
    self.videos, self.video_stems, self.names = {}, {}, set()
    self.failed, self.skipped, self.rles = [], [], []
    self.count = 0

  def write(self, frame, record):
    """One input's record, after its overlay and its map, a float32 NumPy
    file the record names (see the module's note)."""
    line = {"file": frame.source,
            **({"frame": frame.frame} if frame.frame is not None else {}),
            **({"page": frame.page} if frame.page is not None else {}),
            "height": frame.image.shape[0], "width": frame.image.shape[1],
            **record}
    stem = self._stem(frame)
    if self.overlays:
      drawn = self.draw(frame.image, record)
      if frame.frame is None:
        name = self._path(OVERLAYS, stem + ".jpg")
        write_image(os.path.join(self.output, name), drawn)
        line["overlay"] = name
      else:
        self._video(frame, drawn).write(
            np.ascontiguousarray(drawn[..., ::-1]))
    if isinstance(record.get("map"), np.ndarray):
      line["map"] = self._path(MAPS, stem + ".npy")
      np.save(os.path.join(self.output, line["map"]),
              record["map"].astype(np.float32, copy=False))
    self.records.write(json.dumps(line) + "\n")
    self.records.flush()
    self.count += 1
    if frame.frame is None and "masks" in record:
      self.rles.append((self.image_id(frame), record["masks"]))

  def image_id(self, frame):
    """The input's path under --input (its file name otherwise), with
    '#page' for the pages of a multi-page file after the first."""
    return self._relative(frame.source) + (
        f"#{frame.page}" if frame.page else "")

  def _relative(self, source):
    if self.input_root:
      relative = os.path.relpath(source, self.input_root)
      if not relative.startswith(os.pardir):
        return relative
    return os.path.basename(source)

  def _stem(self, frame):
    """The input's name in the folder: its path under --input without the
    extension, _pN for page N, unique in the run; a video's frame N is
    <the video's name>_fN."""
    if frame.frame is not None:
      if frame.source not in self.video_stems:
        self.video_stems[frame.source] = self._unique(
            os.path.splitext(self._relative(frame.source))[0])
      return self._unique(f"{self.video_stems[frame.source]}_f{frame.frame}")
    return self._unique(os.path.splitext(self._relative(frame.source))[0] +
                        (f"_p{frame.page}" if frame.page else ""))

  def _unique(self, stem):
    name, k = stem, 1
    while name in self.names:
      name, k = f"{stem}_{k}", k + 1
    self.names.add(name)
    return name

  def _path(self, folder, name):
    """folder/name, relative to the output; its folders made."""
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(os.path.join(self.output, path)),
                exist_ok=True)
    return path

  def _video(self, frame, drawn):
    if frame.source not in self.videos:
      # OpenCV writes videos by name: bytes that are not UTF-8 are escaped.
      name = os.fsencode(self._path(OVERLAYS, self.video_stems[frame.source]
                                    + "_annotated.mp4"))
      capture = cv2.VideoCapture(frame.source)
      fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
      capture.release()
      h, w = drawn.shape[:2]
      self.videos[frame.source] = cv2.VideoWriter(
          os.path.join(self.output, name.decode("utf-8", "backslashreplace")),
          cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    return self.videos[frame.source]

  def set_aside(self, frame):
    """Lists a frame that failed to read or was skipped (not an image);
    True when it was one of those."""
    if frame.skipped is not None:
      self.skipped.append(frame.skipped)
    elif frame.error is not None:
      self.failed.append(frame.error)
    else:
      return False
    return True

  def close(self, finished=True):
    """Closes the files; `finished` marks the run complete in run.json."""
    self.records.close()
    for writer in self.videos.values():
      writer.release()
    for name, lines in ((FAILED, self.failed), (SKIPPED, self.skipped)):
      with open(os.path.join(self.output, name), "w",
                errors="backslashreplace") as f:
        f.write("".join(line + "\n" for line in lines))
    if self.submission_classes:
      # Quoted as CSV needs (a name may hold commas, quotes or newlines);
      # bytes of a name that are not UTF-8 are written as \\x.. escapes.
      with open(os.path.join(self.output, SUBMISSION), "w", newline="",
                errors="backslashreplace") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "ClassId", "EncodedPixels"])
        for image_id, masks in self.rles:
          for k, name in enumerate(self.submission_classes, 1):
            if name in masks:
              writer.writerow([image_id, k, masks[name]])
    run = _read_run_file(self.output)
    _write_run_file(self.output, dict(
        run, finished=finished, records=self.count,
        failed=len(self.failed), skipped=len(self.skipped)))
