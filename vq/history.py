"""A run's history in its workdir: JSON lines, one per log or evaluation.

WORKDIR/train_history.jsonl: {"step", "train/<term>", "learning_rate", ...}
WORKDIR/eval_history.jsonl:  {"step", <every eval scalar>}
A resumed run appends; reading keeps the last record of each step (steps
redone after a restart replace the lost ones).

Each record is written by one `write` of a whole line. A line a killed
process left half written is moved to `<history>.broken` (with a warning)
before the next record is appended; reading skips any line that is not a
JSON record, with a warning naming the file and line, so a damaged history
never stops a resume, `--step=latest` or an evaluation.
"""
import json
import os

from absl import logging

TRAIN = "train_history.jsonl"
EVAL = "eval_history.jsonl"


def _set_aside_half_line(path):
  """Moves what follows the last newline of `path` (a line a crash cut
  short) to `path`.broken."""
  with open(path, "rb+") as f:
    size = f.seek(0, os.SEEK_END)
    if not size:
      return
    f.seek(size - 1)
    if f.read(1) == b"\n":
      return
    f.seek(0)
    data = f.read()
    keep = data.rfind(b"\n") + 1
    with open(path + ".broken", "ab") as broken:
      broken.write(data[keep:] + b"\n")
    f.truncate(keep)
  logging.warning("%s ended in a half-written line (%d bytes, a process "
                  "killed while writing?); it was moved to %s.broken", path,
                  size - keep, path)


def append(workdir, name, step, scalars):
  path = os.path.join(workdir, name)
  if os.path.isfile(path):
    _set_aside_half_line(path)
  line = json.dumps({"step": int(step),
                     **{k: float(v) for k, v in scalars.items()}}) + "\n"
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    os.write(fd, line.encode())
  finally:
    os.close(fd)


def read(workdir, name):
  """Records in step order, one per step (the last written); lines that
  are not a JSON record with a step are skipped with a warning."""
  path = os.path.join(workdir, name)
  if not os.path.isfile(path):
    return []
  by_step = {}
  with open(path, "rb") as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
        by_step[int(record["step"])] = record
      except (ValueError, KeyError, TypeError):
        logging.warning("%s:%d: not a JSON record with a step (skipped)",
                        path, number)
  return [by_step[s] for s in sorted(by_step)]
