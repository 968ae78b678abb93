"""Datasets prepared once as TFDS datasets (ArrayRecord files) and read back
with random access through `tfds.data_source`, as big_vision and the Flax
examples read theirs.

`python -m vq.prepare_tfds` writes what a config's reader gives (its train
and evaluation sources, after the split the reader computes, e.g. the
stratified 8:1:1 split of polygon annotations) as the splits 'train' and
'eval' of a named TFDS dataset. A config then reads it with one field
changed: `data.source=tfds` (and `data.tfds_name`, `data.tfds_data_dir`).
The records are the reader's: images and masks are stored losslessly (PNG,
zlib), so the decoded arrays are equal, and the grain pipeline above them
is the same (shuffle, per-process slices, checkpointable state).
"""
import contextlib
import tempfile
import threading

import numpy as np

from vq.data.sources import require

IMAGE_KEY = "image"


# The names of vq.tfds_builders' builders (tests/test_tfds_builders.py
# checks the two agree).
VQ_BUILDERS = ("vq_severstal", "vq_car_damage", "vq_keypoints_csv",
               "vq_keypoints_coco", "vq_voc2007", "vq_yolo",
               "vq_coco_detection", "vq_mvtec_ad", "vq_mvtec_ad2")


def add_config_fields(data_config):
  """The data fields of `data.source=tfds` (every family but anomaly)."""
  data_config.tfds_name = ""       # tfds: the prepared dataset's name
  data_config.tfds_data_dir = ""   # tfds: its data_dir (TFDS's default if "")
  data_config.tfds_train_split = "train"
  data_config.tfds_eval_split = "eval"


def _feature(key, value):
  """The TFDS feature that stores `value` (one record's) losslessly."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  if isinstance(value, str):
    return tfds.features.Text()
  value = np.asarray(value)
  if key == IMAGE_KEY and value.dtype == np.uint8 and value.ndim == 3:
    return tfds.features.Image(shape=(None, None, value.shape[-1]),
                               encoding_format="png")
  if value.ndim == 0:
    return tfds.features.Scalar(dtype=value.dtype)
  # Any axis may vary between records (sizes, object counts).
  return tfds.features.Tensor(shape=(None,) * value.ndim, dtype=value.dtype,
                              encoding=tfds.features.Encoding.ZLIB)


def features_of(record):
  """A FeaturesDict for records shaped like `record`."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.features.FeaturesDict(
      {k: _feature(k, v) for k, v in sorted(record.items())})


def storable(record):
  return {k: (v if isinstance(v, str) else np.asarray(v))
          for k, v in record.items()}


# Held while Python's temporary folder is pointed elsewhere: grain's
# reading threads may open a source at once.
_TEMPDIR_LOCK = threading.RLock()


@contextlib.contextmanager
def scratch_tempdir():
  """Python's temporary folder pointed, for the block, at a folder removed
  after it. TFDS (4.9) makes an empty `tmp*tfds` folder in /tmp for each
  builder whose dataset is not yet written (to fetch metadata from its
  bucket, which holds none of vq's datasets) and never removes it."""
  with _TEMPDIR_LOCK, tempfile.TemporaryDirectory() as scratch:
    previous, tempfile.tempdir = tempfile.tempdir, scratch
    try:
      yield
    finally:
      tempfile.tempdir = previous


def write(name, splits, data_dir=None, version="1.0.0", description=""):
  """Writes {split name: source} as the TFDS dataset `name` (ArrayRecord).

  Returns the dataset's directory. Every record of every split must have
  the keys and dtypes of the first.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  first = next(iter(splits.values()))
  if not len(first):
    raise ValueError(f"{name}: the first split is empty")
  features = features_of(first[0])

  def keyed_records(source):  # (key, example) pairs, read one at a time
    for i in range(len(source)):
      yield i, storable(source[i])

  with scratch_tempdir():
    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name=name, version=version, features=features,
        split_datasets={s: keyed_records(src) for s, src in splits.items()},
        data_dir=data_dir or None, description=description,
        file_format="array_record", disable_shuffling=True)
  return str(builder.data_path)


def how_to_prepare(name):
  """The command that writes dataset `name`: `vq.build_tfds` for a
  builder (vq's readers of published formats, VQ_BUILDERS, or TFDS's own,
  e.g. dtd), `vq.prepare_tfds` for a dataset frozen from a config."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = name.split("/")[0].split(":")[0]
  if builder in VQ_BUILDERS or builder in tfds.list_builders(
      with_community_datasets=False):
    return (f"build it with python -m vq.build_tfds {name} --manual_dir=DIR "
            "(DIR: the dataset's files as they ship)")
  return "prepare it with python -m vq.prepare_tfds"


class TfdsRecords:
  """One split of a prepared dataset: len + __getitem__ -> the record as
  the reader gave it (text as str). Opened on first use, so grain's worker
  processes each open their own."""

  def __init__(self, name, split, data_dir=""):
    self.name, self.split, self.data_dir = name, split, data_dir
    self._source = None

  def _open(self):
    if self._source is None:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
      try:
        with scratch_tempdir():
          self._source = tfds.data_source(
              self.name, split=self.split, data_dir=self.data_dir or None,
              download=False)
      except Exception as e:  # pylint: disable=broad-except
        raise FileNotFoundError(
            f"data.tfds_name={self.name!r} split {self.split!r} "
            f"(data_dir {self.data_dir or 'TFDS default'}): cannot be read; "
            f"{how_to_prepare(self.name)} ({e})") from e
    return self._source

  def __len__(self):
    return len(self._open())

  def __getitem__(self, index):
    source = self._open()
    features = source.dataset_info.features
    return {k: v.decode() if isinstance(v, bytes) else
               np.asarray(v, features[k].np_dtype)
            for k, v in source[index].items()}

  def values(self, key):
    """`key` of every record, decoding nothing else (e.g. the category of
    each image without its pixels)."""
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    features = self._open().dataset_info.features
    light = tfds.data_source(
        self.name, split=self.split, data_dir=self.data_dir or None,
        download=False, decoders={k: tfds.decode.SkipDecoding()
                                  for k in features if k != key})
    return [v.decode() if isinstance(v, bytes) else v
            for v in (light[i][key] for i in range(len(light)))]

  def __getstate__(self):
    return {"name": self.name, "split": self.split,
            "data_dir": self.data_dir, "_source": None}


def pair(data_config):
  """(train, eval) sources of `data.source=tfds`."""
  d = data_config
  require(d, "tfds_name")
  return (TfdsRecords(d.tfds_name, d.tfds_train_split, d.tfds_data_dir),
          TfdsRecords(d.tfds_name, d.tfds_eval_split, d.tfds_data_dir))
