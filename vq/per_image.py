"""An evaluation's per-image rows (`Evaluation.per_image`) as a CSV file:
one line per evaluated image, its columns those of the rows in order of
first appearance (file, truth, score, decision, ...), written whole
through a temporary file so that a reader never sees half of it. UTF-8;
a file name's bytes that are not UTF-8 are written as Python escapes them
(\udcff), as the tools' errors name such files."""
import csv

from vq import atomic_file

# A run's latest evaluation, beside WORKDIR/eval_results.json.
EVAL_IMAGES = "eval_images.csv"


def write_csv(path, rows):
  """Writes `rows` (dicts) to `path`; nothing when there are none."""
  if not rows:
    return
  columns = list(dict.fromkeys(k for row in rows for k in row))
  with atomic_file.replaced(path, newline="", encoding="utf-8",
                            errors="backslashreplace") as f:
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(rows)

