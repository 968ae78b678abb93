"""The data check at the start of a run: every record of the file-backed
sources is loaded (image decoded, annotation parsed, evaluation transform
applied) once. Records that fail are left out with their reason, or, when
the check is fatal, stop the run before training starts.

  python -m vq.check_data --config=configs/unet_steel.py --config.data...
"""
import collections
import concurrent.futures
import dataclasses
import json
import os
import re

from vq.data.sources import RecordSource


class DataCheckError(ValueError):
  """Bad records found by a fatal data check."""


class Subset:
  """The records of `source` at `indices` (grain source)."""

  def __init__(self, source, indices):
    self.source, self.indices = source, list(indices)

  def __len__(self):
    return len(self.indices)

  def __getitem__(self, index):
    return self.source[self.indices[index]]


class Kept(Subset):
  """The records of `source` the data check kept (`check_datasets`)."""


def _record_name(record, index):
  """A record's file, else its id, else its position."""
  name = record.get("image_path") or record.get("id")
  if name is None or name == "":
    return f"record {index}"
  return os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) \
      else str(name)


def item_names(source):
  """What names each item of `source` (through the check's Subsets): its
  record's file or id (`_record_name`), else 'record <position>'."""
  if isinstance(source, Subset):
    names = item_names(source.source)
    return [names[i] for i in source.indices]
  if isinstance(source, RecordSource):
    return [_record_name(r, i) for i, r in enumerate(source.records)]
  return [f"record {i}" for i in range(len(source))]


def _reason(source, index, error):
  """The error, prefixed by the record's file when it does not name it."""
  text = f"{type(error).__name__}: {error}"
  path = _record_name(source.records[index], index)
  return text if path in text else f"{path}: {text}"


def check_source(source, transform=None, threads=2, shard=(0, 1)):
  """Loads the records of a file-backed source: with shard (k, n), those
  whose index is k modulo n (each of n processes checks its share).

  Returns:
    (indices that loaded, [(index, reason)] of those that did not); a
    generated source is not checked (None, []).
  """
  if not isinstance(source, RecordSource):
    return None, []

  def load(index):
    try:
      record = source[index]
      if transform is not None:
        transform(record)
    except Exception as e:  # pylint: disable=broad-except
      # Bad files raise many types (OpenCV, JSON, NumPy): all are reported.
      return index, _reason(source, index, e)
    return index, None

  with concurrent.futures.ThreadPoolExecutor(max(threads, 1)) as pool:
    results = list(pool.map(load, range(shard[0], len(source), shard[1])))
  good = [i for i, reason in results if reason is None]
  bad = [(i, reason) for i, reason in results if reason is not None]
  return good, bad


def check_datasets(data, threads=2, fatal=False, shard=(0, 1),
                   gather=list):
  """(Datasets without the bad records, report). With `fatal`, bad records
  raise DataCheckError listing them instead.

  Several processes each check their `shard` of the records; `gather` then
  joins every process's [(index, reason)] (vq.distributed.allgather_lists),
  so all keep the same records.
  """
  report, kept = {}, {}
  for split, source, transform in (("train", data.train, None),
                                   ("eval", data.eval, data.eval_transform)):
    good, bad = check_source(source, transform, threads, shard)
    if good is not None:
      bad = sorted(tuple(b) for b in gather(bad))
      left_out = {i for i, _ in bad}
      good = [i for i in range(len(source)) if i not in left_out]
    report[split] = {"checked": good is not None, "records": len(source),
                     "left_out": len(bad),
                     "reasons": [reason for _, reason in bad]}
    kept[split] = source if not bad else Kept(source, good)
  bad_lines = report["train"]["reasons"] + report["eval"]["reasons"]
  if fatal and bad_lines:
    raise DataCheckError(
        f"{len(bad_lines)} bad records (the data check is fatal):\n  " +
        "\n  ".join(bad_lines[:20]) +
        (f"\n  ... and {len(bad_lines) - 20} more" if len(bad_lines) > 20
         else ""))
  return dataclasses.replace(data, train=kept["train"],
                             eval=kept["eval"]), report


def summary_table(report):
  """A short table: split, records, left out, the most common reasons."""
  lines = ["split  records  left out  checked"]
  for split, r in report.items():
    lines.append(f"{split:<6} {r['records']:>7}  {r['left_out']:>8}  "
                 f"{'yes' if r['checked'] else 'no (generated)'}")
  kinds = collections.Counter(_kind(reason) for r in report.values()
                              for reason in r["reasons"])
  for kind, n in kinds.most_common(5):
    lines.append(f"  {n} x {kind}")
  return "\n".join(lines)


def _kind(reason):
  """A reason without its error type, file and numbers, to count alike."""
  text = re.sub(r"^\w+: ", "", reason)
  text = re.sub(r"^('[^']*'|\S+): ", "", text)
  return re.sub(r"\d+", "N", text)[:80]


def write_report(report, workdir):
  path = os.path.join(workdir, "data_check.json")
  with open(path, "w") as f:
    json.dump(report, f, indent=1)
  return path


def require_records(data, data_config):
  """Raises naming the data fields when a split is empty."""
  for split, source in (("training", data.train), ("evaluation", data.eval)):
    if len(source) == 0:
      fields = {k: v for k, v in data_config.items()
                if isinstance(v, str) and v and k != "source"}
      raise ValueError(f"the {split} dataset is empty (data.source="
                       f"{data_config.source!r}, {fields})")
