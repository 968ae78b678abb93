"""Keypoint data: embedded adhesive beads, a keypoint CSV table or COCO
keypoints JSON, and the keypoint transforms."""
import dataclasses

from vq.data import tfds_records
from vq.data.embedded import synthetic_bead
from vq.data.formats import keypoint_readers
from vq.data.augment.geometry import augment_kwargs
from vq.data.augment.keypoint_augment import resize_and_augment
from vq.data.formats.keypoint_readers import KeypointImages
from vq.data.sources import Datasets, generated_pair, require, select


def _synthetic(d):
  return generated_pair(synthetic_bead.generate, d, d.image_size)


def _csv(d):
  require(d, "train_path", "eval_path")
  k = len(d.keypoint_names)
  return tuple(KeypointImages(keypoint_readers.read_keypoints_csv(
      p, k, d.allow_outside_paths)) for p in (d.train_path, d.eval_path))


def _coco(d):
  require(d, "train_path", "eval_path")
  k = len(d.keypoint_names)
  return tuple(KeypointImages(keypoint_readers.read_coco_keypoints(
      p, d.image_dir, k, d.allow_outside_paths))
      for p in (d.train_path, d.eval_path))


SOURCES = {"synthetic": _synthetic, "csv": _csv, "coco": _coco,
           "tfds": tfds_records.pair}


@dataclasses.dataclass(frozen=True)
class KeypointTransform:
  """Resized (augmented when called with an rng) image and keypoints."""
  image_size: int
  augment: dict = dataclasses.field(default_factory=dict)

  def __call__(self, record, rng=None):
    r = resize_and_augment(record, self.image_size, rng,
                           **(self.augment if rng is not None else {}))
    return {"image": r["image"], "keypoints": r["keypoints"]}


def datasets(data_config):
  d = data_config
  train, eval_ = select(SOURCES, d, "keypoints")
  augment = dict(augment_kwargs(d.augment),
                 flip_permutation=tuple(d.flip_permutation))
  return Datasets(train, eval_, KeypointTransform(d.image_size, augment),
                  KeypointTransform(d.image_size))
