"""The TFDS builders (`tfds build --imports=vq.tfds_builders`): built
from fixture trees laid out as the datasets ship, read back through
`data.source=tfds`, every record equal to the folder reader's."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from test_formats import COCO, write_jpeg, write_ultralytics
from test_tfds import assert_same_records, keypoint_csv, voc_tree
from vq import tfds_builders
from vq.data.embedded import synthetic_car
from vq.data.images import write_image
from vq.data.tfds_records import VQ_BUILDERS, scratch_tempdir
from vq.photo_sets import steel as photo_steel


def severstal(root):
  photo_steel.write_set(str(root), 10, strip_hw=(32, 200))


def car_damage(root):
  synthetic_car.write_dataset(str(root), 10, image_size=48,
                              extension=".jpg")


def keypoints_csv(root):
  path = keypoint_csv(root)
  for name in ("train.csv", "val.csv"):
    os.link(path, root / name)


def keypoints_coco(root):
  (root / "annotations").mkdir()
  for split, ids in (("train", (1, 2, 3)), ("val", (4,))):
    images, annotations = [], []
    for i in ids:
      write_jpeg(root / "images" / f"{i:04d}.jpg", 61 + i, 47, i)
      images.append({"id": i, "file_name": f"{i:04d}.jpg", "width": 61 + i,
                     "height": 47})
      annotations.append({"image_id": i, "category_id": 1,
                          "keypoints": [3 + i, 5, 2, 50, 7.5, 2, 30, 40, 1]})
    (root / "annotations" / f"{split}.json").write_text(json.dumps(
        {"images": images, "annotations": annotations,
         "categories": [{"id": 1, "name": "bead",
                         "keypoints": ["left", "right", "top"]}]}))


def voc(root):
  voc_tree(root / "VOCdevkit" / "VOC2007", names=("bottle", "person"))


def coco_detection(root):
  (root / "annotations").mkdir()
  for split in ("train2017", "val2017"):
    (root / "annotations" / f"instances_{split}.json").write_text(
        json.dumps(COCO))
    for image in COCO["images"]:
      write_jpeg(root / split / image["file_name"], image["width"],
                 image["height"])


def yolo(root):
  yaml_path = write_ultralytics(root)
  text = yaml_path.read_text().replace("../datasets/parts", "datasets/parts")
  (root / "data.yaml").write_text(text)


def mvtec(root, layout):
  """One category as it ships: carpet (MVTec AD) or fabric (MVTec AD 2)."""
  rng = np.random.default_rng(0)
  category = "carpet" if layout == "mvtec_ad" else "fabric"
  test = "test" if layout == "mvtec_ad" else "test_public"
  defect = "color" if layout == "mvtec_ad" else "bad"
  truth = (root / category / "ground_truth" / defect if layout == "mvtec_ad"
           else root / category / test / "ground_truth" / defect)
  for folder in ("train/good", f"{test}/good", f"{test}/{defect}"):
    os.makedirs(root / category / folder)
  os.makedirs(truth)
  image = lambda: rng.integers(0, 256, (24, 24, 3), np.uint8)
  for i in range(3):
    write_image(str(root / category / "train" / "good" / f"{i:03d}.png"),
                image())
  write_image(str(root / category / test / "good" / "000.png"), image())
  write_image(str(root / category / test / defect / "000.png"), image())
  mask = np.zeros((24, 24), np.uint8)
  mask[4:9, 6:12] = 255
  cv2.imwrite(str(truth / "000_mask.png"), mask)
  return category


# builder name, fixture, the task and data fields of the same folder read
# directly (the reference), its splits.
CASES = {
    "vq_severstal": (severstal, "segmentation", lambda root: dict(
        source="severstal", class_names=("1", "2", "3", "4"),
        train_path=str(root / "train.csv"),
        image_dir=str(root / "train_images")), True),
    "vq_car_damage": (car_damage, "segmentation", lambda root: dict(
        source="polygon_json", class_names=synthetic_car.CLASS_NAMES,
        train_path=str(root / "annotations.json"),
        image_dir=str(root / "images")), True),
    "vq_keypoints_csv": (keypoints_csv, "keypoints", lambda root: dict(
        source="csv", train_path=str(root / "train.csv"),
        eval_path=str(root / "val.csv")), False),
    "vq_keypoints_coco": (keypoints_coco, "keypoints", lambda root: dict(
        source="coco", train_path=str(root / "annotations" / "train.json"),
        eval_path=str(root / "annotations" / "val.json"),
        image_dir=str(root / "images")), False),
    "vq_voc2007": (voc, "detection", lambda root: dict(
        source="voc", class_names=tfds_builders.VOC_CLASSES,
        train_path=str(root / "VOCdevkit" / "VOC2007"),
        train_split="trainval", eval_split="test"), False),
    "vq_coco_detection": (coco_detection, "detection", lambda root: dict(
        source="coco", class_names=("bottle", "potted plant"),
        train_path=str(root / "annotations" / "instances_train2017.json"),
        eval_path=str(root / "annotations" / "instances_val2017.json"),
        image_dir=str(root / "train2017"),
        eval_image_dir=str(root / "val2017")), False),
    "vq_yolo": (yolo, "detection", lambda root: dict(
        source="ultralytics", class_names=("nut", "washer", "bolt"),
        train_path=str(root / "data.yaml")), False),
}


def build(name, manual_dir, data_dir, **kwargs):
  """Builds as `vq.build_tfds` does: TFDS's empty `tmp*tfds` folder goes
  to a scratch folder, not the machine's temporary folder."""
  with scratch_tempdir():
    builder = tfds.builder(name, data_dir=str(data_dir), **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=str(manual_dir)))
  return builder


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_built_dataset_holds_the_folder_readers_records(tmp_path, name):
  write_tree, task, fields, with_test = CASES[name]
  root = tmp_path / "manual"
  root.mkdir()
  write_tree(root)
  builder = build(name, root, tmp_path / "tfds")
  assert builder.info.file_format.value == "array_record"
  if with_test:
    expected = tfds_builders.read_with_test_split(task, **fields(root))
  else:
    expected = tfds_builders.read(task, **fields(root))
  assert set(builder.info.splits) == set(expected)
  for split, source in expected.items():
    prepared = tfds_builders.read(
        task, source="tfds", tfds_name=name, tfds_data_dir=str(tmp_path /
                                                              "tfds"),
        tfds_train_split=split, tfds_eval_split=split)
    assert_same_records(source, prepared["train"])


@pytest.mark.parametrize("layout", ["mvtec_ad", "mvtec_ad2"])
def test_an_mvtec_category_builds_as_a_builder_config(tmp_path, layout):
  from vq.data import anomaly
  from vq.data.formats import mvtec as mvtec_reader
  category = mvtec(tmp_path / "manual", layout)
  name = f"vq_{layout}/{category}"
  build(name, tmp_path / "manual", tmp_path / "tfds")
  train, test = mvtec_reader.read_mvtec(str(tmp_path / "manual"), category,
                                        layout)
  prepared = tfds_builders.read(
      "anomaly", source="tfds", tfds_name=name, categories=(category,),
      tfds_data_dir=str(tmp_path / "tfds"))
  assert_same_records(anomaly.MVTecImages(train), prepared["train"])
  assert_same_records(anomaly.MVTecImages(test), prepared["eval"])


def test_the_build_command(tmp_path):
  """The documented command: `python -m vq.build_tfds NAME --manual_dir`
  (TFDS's `tfds build` arguments and build code)."""
  severstal(tmp_path / "manual")
  (tmp_path / "tmp").mkdir()
  subprocess.run(
      [sys.executable, "-m", "vq.build_tfds", "vq_severstal",
       f"--manual_dir={tmp_path / 'manual'}",
       f"--data_dir={tmp_path / 'tfds'}"], check=True, capture_output=True,
      cwd=tmp_path, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                             TMPDIR=str(tmp_path / "tmp")))
  assert not os.listdir(tmp_path / "tmp")  # no empty tmp*tfds folder left
  prepared = tfds_builders.read(
      "segmentation", source="tfds", tfds_name="vq_severstal",
      tfds_data_dir=str(tmp_path / "tfds"), class_names=("1", "2", "3", "4"))
  assert len(prepared["train"]) == 8 and len(prepared["eval"]) == 1


def test_a_missing_manual_folder_says_what_to_place(tmp_path):
  # TFDS's own check, with the builder's instructions.
  with pytest.raises(AssertionError, match="does not exist(.|\n)*"
                     "MANUAL_DIR/train.csv and MANUAL_DIR/train_images"):
    build("vq_severstal", tmp_path / "nowhere", tmp_path / "tfds")


def test_tfds_dtd_builder_feeds_the_anomaly_source(tmp_path, monkeypatch):
  """TFDS's own `dtd` builder, fed its archive offline through manual_dir
  (a small stand-in archive, so its checksum is registered here), serves
  DRAEM's anomaly sources as `data.anomaly_source='tfds:dtd'`."""
  import tarfile
  from tensorflow_datasets.core.download import checksums
  from tensorflow_datasets.image_classification import dtd
  from vq.data.augment.anomaly_synthesis import AnomalySource
  rng = np.random.default_rng(0)
  names = {}
  for texture in ("banded", "woven"):
    for i in range(2):
      name = f"{texture}/{texture}_{i:04d}.jpg"
      write_jpeg(tmp_path / "dtd" / "images" / name, 40 + 3 * i, 50, i)
      names[name] = cv2.imread(str(tmp_path / "dtd" / "images" / name))
  (tmp_path / "dtd" / "labels").mkdir()
  for split in ("train1", "test1", "val1"):
    (tmp_path / "dtd" / "labels" / f"{split}.txt").write_text(
        "\n".join(sorted(names)) + "\n")
  (tmp_path / "manual").mkdir()
  archive = tmp_path / "manual" / "dtd-r1.0.1.tar.gz"
  with tarfile.open(archive, "w") as tar:
    tar.add(tmp_path / "dtd", arcname="dtd")
  info = checksums.compute_url_info(archive)
  monkeypatch.setattr(dtd.Dtd, "url_infos", {dtd._DATA_URL: checksums.UrlInfo(
      size=info.size, checksum=info.checksum, filename=archive.name)})
  build("dtd", tmp_path / "manual", tmp_path / "tfds",
        file_format="array_record")

  source = AnomalySource("tfds:dtd", str(tmp_path / "tfds"))
  assert len(source.records) == 4
  decoded = {r["file_name"]: r["image"] for r in
             (source.records[i] for i in range(4))}
  for name, bgr in names.items():
    np.testing.assert_array_equal(decoded[name],
                                  bgr[..., ::-1])
  assert source.sample(rng, 32).shape == (32, 32, 3)


def test_the_data_layer_knows_every_builder_by_name():
  registered = {n for n in tfds.list_builders(with_community_datasets=False)
                if n.startswith("vq_")}
  assert registered == set(VQ_BUILDERS)
