"""The held-out real-photo anomaly, detection and damage sets: written in the
published formats and read back by vq's readers."""
import base64
import json
import os
import struct

import cv2
import numpy as np
import pytest

from vq.data.formats import mvtec, polygons, segmentation_readers
from vq.data.images import read_image
from vq.data.formats.voc import read_voc
from vq.photo_sets import damage as photo_damage
from vq.photo_sets import detection as photo_detection
from vq.photo_sets import textures as photo_anomaly


def _write_pattern(path, image):
  """A GIMP .pat file (version 1) holding uint8 RGB `image`."""
  h, w, depth = image.shape
  name = path.stem.encode() + b"\0"
  header_size = 24 + len(name)
  header = struct.pack(">5I", header_size, 1, w, h, depth) + b"GPAT" + name
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(header + image.tobytes())


@pytest.fixture(scope="module")
def patterns(tmp_path_factory):
  """Stand-ins for GIMP's patterns folder: noise of varied colours."""
  root = tmp_path_factory.mktemp("patterns")
  rng = np.random.default_rng(0)
  names = (photo_detection.BACKGROUNDS + photo_detection.MATERIALS +
           photo_damage.RELIEF)
  for name in names:
    tone = rng.uniform(40, 200, 3)
    image = np.clip(tone + rng.normal(0, 20, (60, 80, 3)), 0, 255)
    _write_pattern(root / name, image.astype(np.uint8))
  return str(root)


def test_a_pattern_file_reads_back(tmp_path):
  image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
  _write_pattern(tmp_path / "x.pat", image)
  np.testing.assert_array_equal(photo_anomaly.read_pattern(
      str(tmp_path / "x.pat")), image)


def test_the_detection_set_is_read_by_the_voc_reader(tmp_path, patterns):
  root = photo_detection.write_dataset(str(tmp_path), patterns, num_images=12,
                                       seed=3)
  train = read_voc(root, photo_detection.CLASS_NAMES, "trainval")
  test = read_voc(root, photo_detection.CLASS_NAMES, "test")
  assert (len(train), len(test)) == (10, 2)
  rng = np.random.default_rng(3)
  backgrounds = photo_anomaly.load_patterns(patterns,
                                            photo_detection.BACKGROUNDS)
  materials = photo_anomaly.load_patterns(patterns, photo_detection.MATERIALS)
  records = {r["id"]: r for r in train + test}
  for i in range(12):
    image, boxes, classes = photo_detection.scene(rng, backgrounds, materials)
    record = records[f"{i:06d}"]
    h, w = image.shape[:2]
    assert read_image(record["image_path"]).shape == (h, w, 3)
    np.testing.assert_array_equal(record["classes"], classes)
    # VOC's 1-based inclusive pixels: box (xmin, ymin, xmax, ymax) covers
    # pixels xmin - 1 .. xmax - 1.
    expected = (boxes - [1, 1, 0, 0]) / [w, h, w, h]
    np.testing.assert_allclose(record["boxes"], expected, atol=1e-6)
    assert len(classes) >= 1


def test_a_detection_box_holds_its_part(patterns):
  """Outside a part's box (and its 1-pixel anti-aliased rim) the photo is
  the (black) background."""
  backgrounds = photo_anomaly.load_patterns(patterns,
                                            photo_detection.BACKGROUNDS)
  bare = [np.zeros_like(backgrounds[0])]
  rng = np.random.default_rng(5)
  image, boxes, _ = photo_detection.scene(rng, bare, bare, max_parts=1)
  part = image.max(-1) > 30
  x1, y1, x2, y2 = boxes[0]
  assert part[y1 - 1:y2, x1 - 1:x2].mean() > 0.3
  around = np.zeros_like(part)  # the box and its anti-aliased rim
  around[y1 - 2:y2 + 1, x1 - 2:x2 + 1] = True
  assert not (part & ~around).any()


def test_the_damage_set_is_read_by_the_polygon_reader(tmp_path, patterns):
  path = photo_damage.write_dataset(str(tmp_path), patterns, num_images=12)
  records = segmentation_readers.read_polygon_json(path,
                                                   str(tmp_path / "images"))
  assert len(records) == 12
  for record in records:
    assert read_image(record["image_path"]).shape == (*photo_damage.IMAGE_HW,
                                                      3)
    classes = {r["class_name"] for r in record["regions"]}
    assert record["label"] == int(bool(classes & {1, 2}))
    masks = polygons.to_mask(record["regions"], *photo_damage.IMAGE_HW, 3)
    for k in classes:
      assert masks[..., k - 1].any()


@pytest.mark.parametrize("draw", ["_scratch", "_dent"])
def test_traced_polygons_cover_the_drawn_damage(draw):
  rng = np.random.default_rng(7)
  image = np.full((*photo_damage.IMAGE_HW, 3), 120.0, np.float32)
  drawn = getattr(photo_damage, draw)(rng, image)
  regions = photo_damage._traced(drawn, 1)  # pylint: disable=protected-access
  traced = polygons.to_mask(regions, *photo_damage.IMAGE_HW, 1)[..., 0]
  iou = (traced & drawn).sum() / (traced | drawn).sum()
  assert iou > 0.6, iou


def test_a_missing_patterns_folder_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="gimp-data"):
    photo_detection.write_dataset(str(tmp_path / "out"), str(tmp_path))


@pytest.mark.parametrize("surfaces",
                         ["confirmation", "acceptance", "verification"])
def test_the_other_anomaly_sets_are_read_by_the_mvtec_reader(tmp_path,
                                                             surfaces):
  """--surfaces=confirmation|acceptance|verification: five patterns no
  other set uses, each an MVTec AD category with every defect kind and its
  masks."""
  categories, _ = photo_anomaly.SURFACES[surfaces]
  others = [p for name, (c, _) in photo_anomaly.SURFACES.items()
            if name != surfaces for p in c.values()]
  assert not set(categories.values()) & set(others)
  assert len({seed for _, seed in photo_anomaly.SURFACES.values()}) == len(
      photo_anomaly.SURFACES)
  rng = np.random.default_rng(1)
  for name in list(categories.values()) + list(photo_anomaly.FOREIGN):
    image = np.clip(rng.uniform(40, 200, 3) + rng.normal(0, 20, (50, 70, 3)),
                    0, 255)
    _write_pattern(tmp_path / "patterns" / name, image.astype(np.uint8))
  output = str(tmp_path / "set")
  photo_anomaly.write_dataset(output, str(tmp_path / "patterns"), num_train=3,
                              num_good=2, num_per_kind=1,
                              surfaces=surfaces)
  for category in categories:
    train, test = mvtec.read_mvtec(output, category)
    assert len(train) == 3
    assert sorted(r["defect_type"] for r in test) == sorted(
        ["good"] * 2 + list(photo_anomaly.DEFECT_KINDS))
    for record in test:
      loaded = mvtec.load_record(record)
      assert loaded["image"].shape == (128, 128, 3)
      assert (loaded["mask"].sum() > 0) == (record["defect_type"] != "good")
  with pytest.raises(ValueError, match="surfaces must be one of"):
    photo_anomaly.write_dataset(str(tmp_path / "other"), "", surfaces="x")


def test_a_warp_moves_the_surface_without_blurring_it():
  """Outside its disc a warp leaves the pixels as they were; inside, the
  surface keeps its fine detail (bilinear resampling would blur it by a
  third, a defect of its own): the Laplacian's spread stays within 10 %."""
  image = cv2.GaussianBlur(np.random.default_rng(0).uniform(
      0, 255, (128, 128, 3)).astype(np.float32), (0, 0), 0.7)
  for seed in range(20):
    warped, mask = photo_anomaly.draw_defect(np.random.default_rng(seed),
                                             image, "warp", ())
    moved = np.any(np.abs(warped - image) > 1e-3, -1)
    disc = cv2.dilate(mask, np.ones((9, 9), np.uint8)) > 0
    assert moved[mask > 0].mean() > 0.5 and not moved[~disc].any()
    inside = mask > 0
    spread = [cv2.Laplacian(x, cv2.CV_32F)[inside].std()
              for x in (warped, image)]
    assert spread[0] > 0.9 * spread[1], seed


def test_magnetic_tile_converts_to_the_mvtec_layout(tmp_path):
  """The dataset as published (MT_*/Imgs/<stem>.jpg beside a grey-level
  <stem>.png mask; tiles of many sizes), converted and read back."""
  from vq.photo_sets import magnetic_tile  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  sizes = [(289, 121), (261, 593), (373, 248), (97, 140)]
  written = {}
  for folder, n in [("MT_Free", 6)] + [(f"MT_{k.capitalize()}", 1)
                                         for k in magnetic_tile.KINDS]:
    imgs = tmp_path / "src" / folder / "Imgs"
    imgs.mkdir(parents=True)
    for i in range(n):
      h, w = sizes[(i + len(written)) % len(sizes)]
      stem = f"exp{i % 2}_num_{1000 + len(written)}"
      photo = rng.integers(60, 200, (h, w)).astype(np.uint8)
      mask = np.zeros((h, w), np.uint8)
      if folder != "MT_Free":
        mask[h // 3:h // 2, w // 4:w // 2] = 255
        mask[h // 3, w // 4:w // 2] = 90  # a soft rim, below half
      cv2.imwrite(str(imgs / f"{stem}.jpg"), photo)
      cv2.imwrite(str(imgs / f"{stem}.png"), mask)
      written[stem] = (folder, mask >= 128, (h, w))
  counts = magnetic_tile.convert(str(tmp_path / "src"), str(tmp_path / "out"),
                                 train=4)
  assert counts["train/good"] == 4 and counts["test/good"] == 2
  train, test = mvtec.read_mvtec(str(tmp_path / "out"),
                                 magnetic_tile.CATEGORY)
  assert len(train) == 4 and len(test) == 2 + len(magnetic_tile.KINDS)
  for record in test:
    stem = record["image_path"].rsplit("/", 1)[1][:-4]
    folder, truth, hw = written[stem]
    loaded = mvtec.load_record(record)
    assert loaded["image"].shape[:2] == hw
    assert record["label"] == int(folder != "MT_Free")
    if record["label"]:
      assert folder == f"MT_{record['defect_type'].capitalize()}"
      np.testing.assert_array_equal(loaded["mask"], truth)
  crack = next(s for s, (f, _, _) in written.items() if f == "MT_Crack")
  (tmp_path / "src" / "MT_Crack" / "Imgs" / f"{crack}.png").unlink()
  with pytest.raises(Exception, match=r"MT_Crack/Imgs/.*\.jpg: no mask"):
    magnetic_tile.convert(str(tmp_path / "src"), str(tmp_path / "out2"),
                          train=4)


def test_deep_pcb_converts_to_the_mvtec_layout(tmp_path):
  """The dataset as published: groupG/G/NNN_temp.jpg and NNN_test.jpg,
  boxes 'x1 y1 x2 y2 type' in groupG/G_not/NNN.txt, the split in
  trainval.txt / test.txt (the last line without a newline)."""
  from vq.photo_sets import deep_pcb  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  source = tmp_path / "PCBData"
  boxes = {}
  for split, group, stems in [("trainval", "00041", range(3)),
                              ("test", "12000", range(2))]:
    (source / f"group{group}" / group).mkdir(parents=True)
    (source / f"group{group}" / f"{group}_not").mkdir()
    lines = []
    for i in stems:
      stem = f"{group}{i:03d}"
      for part in ("temp", "test"):
        board = ((rng.random((64, 80)) > 0.5) * 255).astype(np.uint8)
        cv2.imwrite(str(source / f"group{group}" / group /
                        f"{stem}_{part}.jpg"), board)
      boxes[stem] = [(3 + i, 5, 20, 30 + i, 1), (40, 50, 80, 64, 6)]
      (source / f"group{group}" / f"{group}_not" / f"{stem}.txt").write_text(
          "".join(" ".join(map(str, b)) + "\n" for b in boxes[stem]))
      lines.append(f"group{group}/{group}/{stem}.jpg "
                   f"group{group}/{group}_not/{stem}.txt")
    (source / f"{split}.txt").write_text("\n".join(lines))
  counts = deep_pcb.convert(str(source), str(tmp_path / "out"), train=2)
  assert counts == {"train/good": 2, "test/good": 2, "test/defective": 2}
  train, test = mvtec.read_mvtec(str(tmp_path / "out"), deep_pcb.CATEGORY)
  assert len(train) == 2 and len(test) == 4
  for record in test:
    loaded = mvtec.load_record(record)
    assert loaded["image"].shape[:2] == (64, 80)
    if record["label"]:
      stem = os.path.basename(record["image_path"])[:-len("_test.jpg")]
      truth = np.zeros((64, 80), np.uint8)
      for x1, y1, x2, y2, _ in boxes[stem]:
        truth[y1:y2, x1:x2] = 1
      np.testing.assert_array_equal(loaded["mask"], truth)
    else:
      assert not loaded["mask"].any()
  (source / "group12000" / "12000_not" / "12000001.txt").write_text(
      "40 50 90 64 2\n")
  with pytest.raises(Exception, match=r"12000001.txt:1: box \(40, 50, 90, "
                     r"64\) is not inside the 80x64 image"):
    deep_pcb.convert(str(source), str(tmp_path / "out2"), train=2)


def _labelme_file(photo_name, jpeg, hw, rectangles):
  """A Labelme 4.5.6 file as BSData ships it: pixel-edge rectangles
  (x1, y1, x2, y2) as "Pitting" polygons, the JPEG in imageData."""
  shapes = [{"label": "Pitting",
             "points": [[x1, y1], [x2, y1], [x2, y2], [x1, y2]],
             "group_id": None, "shape_type": "polygon", "flags": {}}
            for x1, y1, x2, y2 in rectangles]
  return json.dumps({"version": "4.5.6", "flags": {}, "shapes": shapes,
                     "imagePath": photo_name,
                     "imageData": base64.b64encode(jpeg).decode(),
                     "imageHeight": hw[0], "imageWidth": hw[1]}, indent=2)


def test_ball_screw_converts_to_the_mvtec_layout(tmp_path):
  """BSData as published: data/*.jpg, label/<stem>.json (Labelme), and
  image_data.json listing each photograph's spindle type and annotation;
  type 1 (no defect-free photographs) is left out."""
  from vq.photo_sets import ball_screw  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  source = tmp_path / "BSData"
  (source / "data").mkdir(parents=True)
  (source / "label").mkdir()
  entries, pitted = [], {}
  for i, (spindle, hw, rectangles) in enumerate(
      [(2, (46, 113), [])] * 4 + [(2, (65, 154), [])] +
      [(2, (46, 113), [(10, 5, 30, 15)]),
       (2, (65, 154), [(100, 40, 103, 44), (3, 3, 9, 60)]),
       (1, (85, 272), [(50, 20, 70, 30)])]):
    name = (f"01_2008281{i:05d}_277500_315_crop_2.jpg" if spindle == 2 else
            f"KGT1-S-060-A0{i}_crop_0.jpg")
    jpeg = cv2.imencode(".jpg", rng.integers(60, 200, (*hw, 3)).astype(
        np.uint8))[1]
    (source / "data" / name).write_bytes(jpeg.tobytes())
    annotation = None
    if rectangles:
      annotation = name[:-4] + ".json"
      (source / "label" / annotation).write_text(
          _labelme_file(name, jpeg.tobytes(), hw, rectangles))
      truth = np.zeros(hw, np.uint8)
      for x1, y1, x2, y2 in rectangles:
        truth[y1:y2, x1:x2] = 1
      pitted[name] = truth
    entries.append({"filename": name, "train_test_split":
                    "train" if annotation else None, "type": spindle,
                    "wear_dev": [], "annotations": annotation})
  (source / "image_data.json").write_text(json.dumps({"images": entries},
                                                     indent=4))
  counts = ball_screw.convert(str(source), str(tmp_path / "out"), train=3)
  assert counts == {"train/good": 3, "test/good": 2, "test/pitting": 2}
  train, test = mvtec.read_mvtec(str(tmp_path / "out"), ball_screw.CATEGORY)
  assert len(train) == 3 and len(test) == 4
  for record in test:
    name = os.path.basename(record["image_path"])
    loaded = mvtec.load_record(record)
    assert record["label"] == int(name in pitted)
    if record["label"]:
      np.testing.assert_array_equal(loaded["mask"], pitted[name])
  label = next((source / "label").glob("01_*.json"))
  listing = (source / "image_data.json").read_text()
  first = entries[0]["filename"]
  (source / "image_data.json").write_text(
      listing.replace(first, "../outside.jpg", 1))
  with pytest.raises(Exception, match=r"image_data.json image 0: image "
                     r"'../outside.jpg' lies outside the dataset folder"):
    ball_screw.convert(str(source), str(tmp_path / "out2"), train=3)
  labelled = json.loads(label.read_text())["imagePath"]
  (source / "image_data.json").write_text(
      listing.replace(f'"{labelled}"', f'"{first}"', 1))
  with pytest.raises(Exception, match=rf"{label.name}: labels .*{labelled}; "
                     rf"image_data.json gives it to .*{first}"):
    ball_screw.convert(str(source), str(tmp_path / "out2"), train=3)
  (source / "image_data.json").write_text(listing)
  label.write_text(label.read_text().replace('"imageWidth": 113',
                                             '"imageWidth": 112'))
  with pytest.raises(Exception, match=rf"{label.name}: declares a \(46, 112\)"
                     r" \(height, width\) image; .* is \(46, 113\)"):
    ball_screw.convert(str(source), str(tmp_path / "out2"), train=3)
  label.unlink()
  with pytest.raises(Exception, match=rf"lists {label.name} for .*; it is "
                     r"not in label/"):
    ball_screw.convert(str(source), str(tmp_path / "out2"), train=3)
