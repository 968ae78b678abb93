"""Prepared TFDS datasets (ArrayRecord) read through `data.source=tfds`:
the same records as the folder readers, disjoint shards per process,
exact resume."""
import copy
import os
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

from conftest import ROOT
from test_formats import write_jpeg, write_labelme_set
from test_image_folder import _flat_tree
from test_readers import voc_xml
from vq.data import pipeline, tfds_records
from vq.data.tfds_records import TfdsRecords
from vq.photo_sets import steel as photo_steel
from vq.prepare_tfds import prepare
from vq.tasks import get_task_class

sys.path.insert(0, ROOT)
from configs import draem, gate, keypoints, unet_damage, unet_steel, yolo  # noqa: E402  pylint: disable=g-import-not-at-top


def voc_tree(root, names=("nut", "bolt")):
  """Pascal VOC as it ships: Annotations, JPEGImages, ImageSets/Main."""
  for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
    os.makedirs(root / sub)
  ids = [f"2008_{i:06d}" for i in range(6)]
  for i, image_id in enumerate(ids):
    width, height = 61 + 7 * i, 43 + 3 * i
    write_jpeg(root / "JPEGImages" / f"{image_id}.jpg", width, height, i)
    objects = [(names[0], (1, 2, 30, 20), False)] + (
        [(names[1], (20, 10, width, height), i % 2 == 1)] if i % 3 else [])
    (root / "Annotations" / f"{image_id}.xml").write_text(
        voc_xml(f"{image_id}.jpg", objects, width, height))
  main = root / "ImageSets" / "Main"
  (main / "trainval.txt").write_text("\n".join(ids[:4]) + "\n")
  (main / "test.txt").write_text("\n".join(ids[4:]) + "\n")


def keypoint_csv(root):
  rows = ["image,x1,y1,x2,y2,x3,y3"]
  for i in range(5):
    write_jpeg(root / "images" / f"bead_{i}.jpg", 90 + i, 70, i)
    rows.append(f"images/bead_{i}.jpg,{10 + i},60.5,{80 + i},61,45,{12 + i}")
  (root / "keypoints.csv").write_text("\n".join(rows) + "\n")
  return str(root / "keypoints.csv")


def case(name, tmp_path):
  """(config reading a fixture tree in a published format)."""
  root = tmp_path / name
  root.mkdir()
  if name == "voc":
    voc_tree(root)
    config = yolo.get_config("variant=test")
    config.data.update({"source": "voc", "train_path": str(root),
                        "class_names": ("nut", "bolt")})
  elif name == "severstal":
    csv = photo_steel.write_set(str(root), 10, strip_hw=(32, 200))
    config = unet_steel.get_config("variant=test")
    config.data.update({"source": "severstal", "train_path": csv,
                        "image_dir": str(root / "train_images"),
                        "class_names": ("1", "2", "3", "4")})
  elif name == "labelme":
    write_labelme_set(root, 10)
    config = unet_damage.get_config("variant=test")
    config.data.update({"source": "labelme", "train_path": str(root)})
  elif name == "keypoint_csv":
    path = keypoint_csv(root)
    config = keypoints.get_config("variant=test")
    config.data.update({"source": "csv", "train_path": path,
                        "eval_path": path})
  elif name == "mvtec":
    config = draem.get_config("variant=test")
    config.data.cache_dir = str(root)   # the embedded textures, MVTec layout
  elif name == "synthetic_parts":     # an embedded generator, frozen
    config = yolo.get_config("variant=test")
  else:
    _flat_tree(root, {"clean": 6, "damaged": 4})
    config = gate.get_config("variant=test")
    config.data.update({"source": "image_folder", "path": str(root)})
  return config


def assert_same_records(a, b):
  assert len(a) == len(b) > 0
  for i in range(len(a)):
    x, y = a[i], b[i]
    assert x.keys() == y.keys(), (x.keys(), y.keys())
    for k in x:
      if isinstance(x[k], str):
        assert x[k] == y[k]
      else:
        assert np.asarray(x[k]).dtype == np.asarray(y[k]).dtype, k
        np.testing.assert_array_equal(x[k], y[k], err_msg=f"{i} {k}")


@pytest.mark.parametrize("name", ["voc", "severstal", "labelme",
                                  "keypoint_csv", "image_folder", "mvtec",
                                  "synthetic_parts"])
def test_prepared_records_equal_the_folder_readers(tmp_path, name):
  config = case(name, tmp_path)
  prepare(config, f"vq_{name}", str(tmp_path / "tfds"))
  from_tfds = copy.deepcopy(config)
  from_tfds.data.update({"source": "tfds", "tfds_name": f"vq_{name}",
                         "tfds_data_dir": str(tmp_path / "tfds")})
  task = get_task_class(config.task)(config)
  folders, prepared = task.datasets(), task.__class__(from_tfds).datasets()
  assert prepared.info == folders.info
  assert_same_records(folders.train, prepared.train)
  assert_same_records(folders.eval, prepared.eval)
  # The training transform sees the same record: the same batch element.
  rng = np.random.default_rng(0)
  a = folders.train_transform(folders.train[0], np.random.default_rng(0))
  b = prepared.train_transform(prepared.train[0], rng)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])


def test_the_anomaly_default_scores_one_category_of_a_prepared_dataset(
    tmp_path):
  """The default (auto) reads one category of a prepared dataset of three:
  each candidate reads the run's records, which the category selects (the
  data check reads no TFDS record); every test image of that category
  gets its row."""
  from vq import train
  config = case("mvtec", tmp_path)
  prepare(config, "vq_mvtec_auto", str(tmp_path / "tfds"))
  config.data.update({"source": "tfds", "tfds_name": "vq_mvtec_auto",
                      "tfds_data_dir": str(tmp_path / "tfds"),
                      "categories": ("grass",)})
  config.eval.memory.images = 6
  config.eval.candidates.patchcore.eval.memory.images = 6
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert 0.0 <= summary["eval"]["image_auroc"] <= 1.0
  with open(tmp_path / "run" / "eval_images.csv") as f:
    categories = [line.split(",")[1] for line in f.readlines()[1:]]
  test = TfdsRecords("vq_mvtec_auto", "eval", str(tmp_path / "tfds"))
  assert categories == ["grass"] * test.values("category").count("grass")
  assert len(categories) < len(test)  # the other categories' left out


def test_a_run_trains_from_a_prepared_dataset_and_resumes_exactly(tmp_path):
  from vq import train
  config = case("voc", tmp_path)
  prepare(config, "vq_voc_run", str(tmp_path / "tfds"))
  config.data.update({"source": "tfds", "tfds_name": "vq_voc_run",
                      "tfds_data_dir": str(tmp_path / "tfds")})
  config.optimizer.schedule = "constant"
  config.num_train_steps = 4
  straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
  assert "voc_map50" in straight["eval"]
  config.num_train_steps = 2
  first = train.train_and_evaluate(config, str(tmp_path / "resumed"))
  config.num_train_steps = 4
  second = train.train_and_evaluate(config, str(tmp_path / "resumed"))
  assert [s for s, _ in second["losses"]] == [3, 4]
  # The checkpointed iterator state continues the TFDS-backed stream.
  assert first["losses"] + second["losses"] == straight["losses"]


@pytest.fixture(scope="module")
def voc_tfds(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("tfds")
  config = case("voc", tmp_path)
  prepare(config, "vq_voc_stream", str(tmp_path / "tfds"))
  return TfdsRecords("vq_voc_stream", "train", str(tmp_path / "tfds"))


def _with_index(record, rng):
  del rng
  return {"id": np.array(int(record["id"][-6:]))}


def test_processes_read_disjoint_shards_covering_every_record(voc_tfds):
  assert len(voc_tfds) == 4
  epoch = {}
  for process in (0, 1):
    ds = pipeline.train_dataset(voc_tfds, _with_index, global_batch_size=2,
                                seed=3, process_index=process,
                                process_count=2)
    epoch[process] = [int(ds[step]["id"][0]) for step in range(2)]
  assert not set(epoch[0]) & set(epoch[1])
  assert sorted(epoch[0] + epoch[1]) == [0, 1, 2, 3]


def test_a_tfds_stream_resumes_exactly(voc_tfds):
  ds = pipeline.train_dataset(voc_tfds, _with_index, global_batch_size=2,
                              seed=0)
  straight = pipeline.train_iterator(ds)
  expected = [next(straight)["id"].tolist() for _ in range(6)]
  first = pipeline.train_iterator(ds)
  for _ in range(3):
    next(first)
  resumed = pipeline.train_iterator(ds)
  resumed.set_state(first.get_state())
  assert [next(resumed)["id"].tolist() for _ in range(3)] == expected[3:]


def test_writing_a_dataset_leaves_nothing_in_the_temporary_folder(
    tmp_path, monkeypatch):
  (tmp_path / "tmp").mkdir()
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
  records = [{"image": np.full((4, 6, 3), i, np.uint8), "label": np.int32(i)}
             for i in range(3)]
  tfds_records.write("vq_tiny", {"train": records}, str(tmp_path / "tfds"))
  assert not os.listdir(tmp_path / "tmp")
  assert_same_records(records, TfdsRecords("vq_tiny", "train",
                                           str(tmp_path / "tfds")))


def test_an_unprepared_name_says_how_to_prepare_it(tmp_path, monkeypatch):
  (tmp_path / "tmp").mkdir()
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
  with pytest.raises(FileNotFoundError, match="python -m vq.prepare_tfds"):
    len(TfdsRecords("vq_never_prepared", "train", str(tmp_path)))
  # A builder's dataset (vq's, or TFDS's own as DRAEM's anomaly source).
  for name in ("dtd", "vq_severstal"):
    with pytest.raises(FileNotFoundError,
                       match=f"python -m vq.build_tfds {name} --manual_dir="):
      len(TfdsRecords(name, "train", str(tmp_path)))
  assert not os.listdir(tmp_path / "tmp")


def test_sources_opened_at_once_leave_the_temporary_folder_as_it_was(
    monkeypatch):
  # grain's reading threads may open a source each at the same time; each
  # points Python's temporary folder at a scratch folder while TFDS opens.
  import tensorflow_datasets as tfds
  before = tempfile.gettempdir()

  def slow_data_source(*args, **kwargs):
    time.sleep(0.2)
    return [0, 1, 2]

  monkeypatch.setattr(tfds, "data_source", slow_data_source)
  sizes = []
  threads = [threading.Thread(target=lambda: sizes.append(
      len(TfdsRecords("vq_any", "train")))) for _ in range(3)]
  for thread in threads:
    thread.start()
    time.sleep(0.05)
  for thread in threads:
    thread.join()
  assert sizes == [3, 3, 3]
  assert tempfile.gettempdir() == before and os.path.isdir(before)
