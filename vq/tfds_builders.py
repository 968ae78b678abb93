r"""TFDS builders for the published datasets vq reads. Nothing is downloaded:
place a dataset as it ships and name its folder with `--manual_dir`.

  python -m vq.build_tfds vq_severstal --manual_dir=/data/severstal \
      [--data_dir=/data/tensorflow_datasets]
  python -m vq.build_tfds vq_mvtec_ad/carpet --manual_dir=/data/mvtec_ad

(`tfds build NAME --imports=vq.tfds_builders ...` where apache-beam,
which TFDS's command imports at start, is installed.)

Each builder runs vq's reader for the format over the manual folder (after
the reader's split, e.g. the stratified 8:1:1 split of Severstal and polygon
annotations, computed once here), leaves out the records the data check
finds bad, and writes ArrayRecord files. A run then reads the dataset with
`data.source=tfds, data.tfds_name=vq_severstal` (or `vq_mvtec_ad/carpet`).
The records are the reader's, stored losslessly (images PNG, arrays zlib).
"""
import os

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from vq import config_base
from vq.data import check, tfds_records
from vq.data.embedded import synthetic_car
from vq.data.formats import coco, mvtec, ultralytics_yaml
from vq.data.anomaly import MVTecImages
from vq.tasks import get_task_class

VERSION = tfds.core.Version("1.0.0")
DETECTION = {"id": str, "image": "image", "boxes": (np.float32, 2),
             "classes": (np.int32, 1)}
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse",
               "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
MVTEC_AD = ("bottle", "cable", "capsule", "carpet", "grid", "hazelnut",
            "leather", "metal_nut", "pill", "screw", "tile", "toothbrush",
            "transistor", "wood", "zipper")
MVTEC_AD2 = ("can", "fabric", "fruit_jelly", "rice", "sheet_metal", "vial",
             "wallplugs", "walnuts")


def features(spec):
  """{key: str | 'image' | (dtype, ndim)} -> a FeaturesDict."""
  def feature(value):
    if value is str:
      return tfds.features.Text()
    if value == "image":
      return tfds.features.Image(shape=(None, None, 3), encoding_format="png")
    dtype, ndim = value
    if ndim == 0:
      return tfds.features.Scalar(dtype=dtype)
    return tfds.features.Tensor(shape=(None,) * ndim, dtype=dtype,
                                encoding=tfds.features.Encoding.ZLIB)
  return tfds.features.FeaturesDict({k: feature(v) for k, v in spec.items()})


class ReaderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Writes what a vq reader gives for the manual folder.

  Subclasses set SPEC (the record keys) and define `sources(manual_dir)`:
  {split name: record source}.
  """

  VERSION = VERSION
  RELEASE_NOTES = {"1.0.0": "vq's reader output, bad records left out."}
  SPEC = {}

  def __init__(self, *, file_format=None, **kwargs):
    super().__init__(file_format=file_format or "array_record", **kwargs)

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, features=features(self.SPEC), disable_shuffling=True,
        description=(self.__doc__ or "").strip())

  def sources(self, manual_dir):
    raise NotImplementedError

  def _split_generators(self, dl_manager):
    manual_dir = str(dl_manager.manual_dir)  # TFDS checks it is there
    return {split: self._generate_examples(split, source)
            for split, source in self.sources(manual_dir).items()}

  def _generate_examples(self, split, source):
    good, bad = check.check_source(source)
    for _, reason in bad:
      logging.warning("%s %s: left out: %s", self.name, split, reason)
    for i in range(len(source)) if good is None else good:
      record = source[i]
      if set(record) != set(self.SPEC):
        raise ValueError(f"{self.name}: the reader gave keys {sorted(record)}"
                         f", the builder stores {sorted(self.SPEC)}")
      yield i, tfds_records.storable(record)


def read(task, splits=("train", "eval"), **data):
  """{split: record source} that the `task` family's reader gives for the
  data fields `data` (the family's defaults otherwise)."""
  task_class = get_task_class(task)
  config = config_base.trainer_config()
  config.update(task_class.default_config())
  config.task = task
  config.data.update(data)
  datasets = task_class(config).datasets()
  return dict(zip(splits, (datasets.train, datasets.eval)))


def read_with_test_split(task, **data):
  """train / eval (validation) / test of a reader's stratified 8:1:1
  split."""
  return {**read(task, eval_split="val", **data),
          "test": read(task, eval_split="test", **data)["eval"]}


class VqSeverstal(ReaderBuilder):
  """Severstal steel defects: train.csv (RLE masks, 4 classes) and
  train_images/, split 8:1:1 (train / eval / test) stratified by label and
  defect area."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Place Kaggle's severstal-steel-defect-detection files as they ship: "
      "MANUAL_DIR/train.csv and MANUAL_DIR/train_images/*.jpg.")
  SPEC = {"image": "image", "mask": (np.uint8, 3), "label": (np.int32, 0)}

  def sources(self, manual_dir):
    return read_with_test_split(
        "segmentation", source="severstal", class_names=("1", "2", "3", "4"),
        train_path=os.path.join(manual_dir, "train.csv"),
        image_dir=os.path.join(manual_dir, "train_images"))


class VqCarDamage(ReaderBuilder):
  """Car damage polygons (polygon JSON: 1 scratch, 2 dent, 3 spacing),
  split 8:1:1 (train / eval / test) stratified by label and damaged area."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Place the annotations as MANUAL_DIR/annotations.json (a list of "
      "records, or a folder annotations/ of one JSON per image) and the "
      "images in MANUAL_DIR/images/.")
  SPEC = VqSeverstal.SPEC

  def sources(self, manual_dir):
    path = os.path.join(manual_dir, "annotations.json")
    if not os.path.exists(path):
      path = os.path.join(manual_dir, "annotations")
    return read_with_test_split(
        "segmentation", source="polygon_json", train_path=path,
        class_names=synthetic_car.CLASS_NAMES,
        image_dir=os.path.join(manual_dir, "images"))


class VqKeypointsCsv(ReaderBuilder):
  """Keypoints from CSV files (image, x1, y1, ... in pixels, image paths
  relative to the CSV): MANUAL_DIR/train.csv and MANUAL_DIR/val.csv."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Place MANUAL_DIR/train.csv and MANUAL_DIR/val.csv (header, then "
      "image,x1,y1,x2,y2,x3,y3 per row; image paths relative to the CSV).")
  SPEC = {"image": "image", "keypoints": (np.float32, 2)}

  def sources(self, manual_dir):
    return read("keypoints", source="csv",
                train_path=os.path.join(manual_dir, "train.csv"),
                eval_path=os.path.join(manual_dir, "val.csv"))


class VqKeypointsCoco(ReaderBuilder):
  """Keypoints from COCO keypoint files: MANUAL_DIR/annotations/
  train.json and val.json, images in MANUAL_DIR/images/."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Place MANUAL_DIR/annotations/train.json, MANUAL_DIR/annotations/"
      "val.json (COCO keypoints) and the images in MANUAL_DIR/images/.")
  SPEC = VqKeypointsCsv.SPEC

  def sources(self, manual_dir):
    annotations = os.path.join(manual_dir, "annotations")
    return read("keypoints", source="coco",
                train_path=os.path.join(annotations, "train.json"),
                eval_path=os.path.join(annotations, "val.json"),
                image_dir=os.path.join(manual_dir, "images"))


class VqVoc2007(ReaderBuilder):
  """Pascal VOC 2007 detection (20 classes): trainval -> train, test ->
  eval; `difficult` objects kept and flagged."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Extract VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar into "
      "MANUAL_DIR, giving MANUAL_DIR/VOCdevkit/VOC2007/{Annotations,"
      "JPEGImages,ImageSets}.")
  SPEC = dict(DETECTION, difficult=(np.bool_, 1))

  def sources(self, manual_dir):
    return read("detection", source="voc", class_names=VOC_CLASSES,
                train_path=os.path.join(manual_dir, "VOCdevkit", "VOC2007"),
                train_split="trainval", eval_split="test")


class VqYolo(ReaderBuilder):
  """YOLO txt detection folders described by an Ultralytics data.yaml
  (train -> train, val -> eval; class names from the YAML)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Place the Ultralytics dataset with its data.yaml at MANUAL_DIR/"
      "data.yaml (images/ and labels/ as the YAML names them).")
  SPEC = DETECTION

  def sources(self, manual_dir):
    path = os.path.join(manual_dir, "data.yaml")
    return read("detection", source="ultralytics", train_path=path,
                class_names=ultralytics_yaml.load_yaml(path)[2])


class VqCocoDetection(ReaderBuilder):
  """COCO detection JSON as COCO ships it: annotations/instances_train2017
  .json with train2017/, instances_val2017.json with val2017/ (class names
  from the file's categories; crowd regions kept as `difficult`)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Place MANUAL_DIR/annotations/instances_{train,val}2017.json and the "
      "image folders MANUAL_DIR/train2017/ and MANUAL_DIR/val2017/.")
  SPEC = dict(DETECTION, difficult=(np.bool_, 1))

  def sources(self, manual_dir):
    train = os.path.join(manual_dir, "annotations", "instances_train2017.json")
    categories = coco.load_coco(train)[0].get("categories", [])
    return read("detection", source="coco", train_path=train,
                eval_path=os.path.join(manual_dir, "annotations",
                                       "instances_val2017.json"),
                image_dir=os.path.join(manual_dir, "train2017"),
                eval_image_dir=os.path.join(manual_dir, "val2017"),
                class_names=tuple(c["name"] for c in categories))


class _MVTec(ReaderBuilder, skip_registration=True):
  """One builder config per category: train (good images) and eval (the
  test images with masks, label and defect type)."""

  SPEC = {"image": "image", "mask": (np.uint8, 2), "label": (np.int32, 0),
          "category": str, "defect_type": str}
  LAYOUT = ""

  def sources(self, manual_dir):
    category = self.builder_config.name
    train, test = mvtec.read_mvtec(manual_dir, category, self.LAYOUT)
    return {"train": MVTecImages(train), "eval": MVTecImages(test)}


class VqMvtecAd(_MVTec):
  """MVTec AD, one config per category."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Extract mvtec_anomaly_detection.tar.xz into MANUAL_DIR, giving "
      "MANUAL_DIR/<category>/{train,test,ground_truth}.")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=c) for c in MVTEC_AD]
  LAYOUT = "mvtec_ad"


class VqMvtecAd2(_MVTec):
  """MVTec AD 2, one config per category (test_public as eval)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Extract MVTec AD 2 into MANUAL_DIR, giving MANUAL_DIR/<category>/"
      "{train,test_public}.")
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=c) for c in MVTEC_AD2]
  LAYOUT = "mvtec_ad2"
