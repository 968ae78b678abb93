"""Random-access sources (grain-ready) and what a family's data entry returns."""
import dataclasses
from typing import Any, Callable, Mapping

from absl import logging

from vq import config_base
from vq.data.errors import AnnotationError
from vq.data.images import read_image, turned_note


@dataclasses.dataclass(frozen=True)
class Datasets:
  """A family's data: sources (len + __getitem__) and picklable transforms.

  `train_transform(record, rng)` augments; `eval_transform(record)` does
  not. `info` holds what evaluation needs to name its results (e.g. the
  anomaly defect types found in the test split).
  """
  train: Any
  eval: Any
  train_transform: Callable
  eval_transform: Callable
  info: Mapping = dataclasses.field(default_factory=dict)


def select(table, data_config, family):
  """`table[data_config.source](data_config)`, refusing unknown sources."""
  if data_config.source not in table:
    raise ValueError(f"data.source for {family} must be one of "
                     f"{sorted(table)}, got {data_config.source!r}")
  return table[data_config.source](data_config)


def require(data_config, *fields):
  """Raises naming the empty fields `data_config.source` needs."""
  missing = [f for f in fields if not data_config[f]]
  if missing:
    raise ValueError(f"data.source={data_config.source!r} needs " +
                     ", ".join(f"data.{f}" for f in missing))


def require_classes(data_config, generator_classes):
  """Raises unless `data.class_names` are the embedded generator's."""
  if tuple(data_config.class_names) != tuple(generator_classes):
    raise ValueError(f"data.source={data_config.source!r} draws the classes "
                     f"{tuple(generator_classes)}; data.class_names is "
                     f"{tuple(data_config.class_names)}")


class RecordSource:
  """A list of records with random access; subclasses load one in
  `__getitem__`."""

  def __init__(self, records):
    self.records = list(records)

  def __len__(self):
    return len(self.records)


class AnnotatedImages(RecordSource):
  """Loads each record's image lazily: records hold `image_path`, and where
  the annotation states the image size, `expected_hw` and `annotation`."""

  def __getitem__(self, index):
    record = dict(self.records[index])
    path = record.pop("image_path")
    record["image"] = read_image(path)
    expected = record.pop("expected_hw", None)
    annotation = record.pop("annotation", None)
    if expected is not None and record["image"].shape[:2] != tuple(expected):
      h, w = record["image"].shape[:2]
      raise AnnotationError(
          f"{annotation}: the annotation's size is {expected[1]}x"
          f"{expected[0]}, its image {path} is {w}x{h}; the boxes would be "
          "scaled wrongly." + turned_note(path, (h, w), expected))
    return record


class GeneratedSource:
  """`num_records` images drawn by `generate(seed, index, image_size,
  **generate_kwargs)`."""

  def __init__(self, generate, num_records, seed, image_size,
               **generate_kwargs):
    self.generate = generate
    self.num_records = num_records
    self.seed = seed
    self.image_size = image_size
    self.generate_kwargs = generate_kwargs

  def __len__(self):
    return self.num_records

  def __getitem__(self, index):
    return self.generate(self.seed, index, self.image_size,
                         **self.generate_kwargs)


def generated_pair(generate, data_config, image_size, **generate_kwargs):
  """(train, eval) generated sources; eval uses synthetic_seed + 1."""
  d = data_config
  return (GeneratedSource(generate, d.synthetic_train_size, d.synthetic_seed,
                          image_size, **generate_kwargs),
          GeneratedSource(generate, d.synthetic_eval_size,
                          d.synthetic_seed + 1, image_size, **generate_kwargs))


def report_resize(source, image_hw, crop=(), multiple=1):
  """Says at start how much the model input shrinks (or enlarges) a file
  source's images (its first image's size), and the data.image_size that
  keeps them (nearly) native: theirs, or the nearest `multiple` of it the
  model accepts."""
  if not len(source):
    return
  h, w = source[0]["image"].shape[:2]
  native = config_base.nearest_multiple((h, w), multiple)
  advice = f"set data.image_size={native}"
  if native != (h, w):
    advice += f" (the nearest multiple of {multiple} the model accepts)"
  factor = max(h / image_hw[0], w / image_hw[1])
  if native == tuple(image_hw) != (h, w):
    logging.info("images are %dx%d, the model sees them at %dx%d, the "
                 "nearest multiple of %d it accepts", w, h, image_hw[1],
                 image_hw[0], multiple)
  elif factor > 1:
    logging.warning("images are %dx%d, the model sees %dx%d: %.1fx smaller; "
                    "defects a few pixels wide may vanish: %s and train on "
                    "crops (data.crop_size)", w, h, image_hw[1], image_hw[0],
                    factor, advice)
  elif (h, w) != tuple(image_hw):
    logging.warning("images are %dx%d, the model sees them enlarged to "
                    "%dx%d; %s", w, h, image_hw[1], image_hw[0], advice)
  elif crop:
    logging.info("training on crops (%s) of %dx%d images", crop, w, h)
