"""An evaluation's per-image rows (`Evaluation.per_image`) as a CSV file:
one line per evaluated image, its columns those of the rows in order of
first appearance (file, truth, score, decision, ...), written whole
through a temporary file so that a reader never sees half of it."""
import csv
import os

# A run's latest evaluation, beside WORKDIR/eval_results.json.
EVAL_IMAGES = "eval_images.csv"


def write_csv(path, rows):
  """Writes `rows` (dicts) to `path`; nothing when there are none."""
  if not rows:
    return
  columns = list(dict.fromkeys(k for row in rows for k in row))
  partial = path + ".partial"
  with open(partial, "w", newline="") as f:
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(rows)
  os.replace(partial, path)

