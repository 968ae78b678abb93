"""A run's history in its workdir: JSON lines, one per log or evaluation.

WORKDIR/train_history.jsonl: {"step", "train/<term>", "learning_rate", ...}
WORKDIR/eval_history.jsonl:  {"step", <every eval scalar>}
A resumed run appends; reading keeps the last record of each step (steps
redone after a restart replace the lost ones).
"""
import json
import os

TRAIN = "train_history.jsonl"
EVAL = "eval_history.jsonl"


def append(workdir, name, step, scalars):
  with open(os.path.join(workdir, name), "a") as f:
    f.write(json.dumps({"step": int(step),
                        **{k: float(v) for k, v in scalars.items()}}) + "\n")


def read(workdir, name):
  """Records in step order, one per step (the last written)."""
  path = os.path.join(workdir, name)
  if not os.path.isfile(path):
    return []
  by_step = {}
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        raise ValueError(f"{path}:{number}: not a JSON line") from None
      by_step[record["step"]] = record
  return [by_step[s] for s in sorted(by_step)]
