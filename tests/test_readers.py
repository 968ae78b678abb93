import os

import cv2
import numpy as np
import pytest

from vq.data.errors import AnnotationError
from vq.data.images import write_image
from vq.data.sources import AnnotatedImages
from vq.data.formats.voc import read_voc
from vq.data.formats.yolo_txt import read_yolo_txt

CLASSES = ("nut", "bolt")


def voc_xml(filename, objects, width=40, height=20):
  objs = "".join(
      f"<object><name>{n}</name><difficult>{int(d)}</difficult><bndbox>"
      f"<xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
      f"<ymax>{b[3]}</ymax></bndbox></object>" for n, b, d in objects)
  return (f"<annotation><filename>{filename}</filename><size><width>{width}"
          f"</width><height>{height}</height><depth>3</depth></size>{objs}"
          f"</annotation>")


@pytest.fixture
def voc_root(tmp_path):
  os.makedirs(tmp_path / "Annotations")
  os.makedirs(tmp_path / "JPEGImages")
  os.makedirs(tmp_path / "ImageSets" / "Main")
  image = np.zeros((20, 40, 3), np.uint8)
  image[..., 0] = 200  # red in RGB
  for name, objects in [
      ("a", [("nut", (1, 1, 20, 10), False), ("bolt", (21, 11, 40, 20), True)]),
      ("b", [])]:
    (tmp_path / "Annotations" / f"{name}.xml").write_text(
        voc_xml(f"{name}.png", objects))
    write_image(tmp_path / "JPEGImages" / f"{name}.png", image)
  (tmp_path / "ImageSets" / "Main" / "train.txt").write_text("a\n")
  return tmp_path


def test_voc_reads_boxes_classes_difficult(voc_root):
  records = read_voc(voc_root, CLASSES)
  assert [r["id"] for r in records] == ["a", "b"]
  a = records[0]
  # 1-based inclusive pixels: xmin 1 -> 0, xmax 20 -> 20 of width 40.
  np.testing.assert_allclose(a["boxes"], [[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]])
  np.testing.assert_array_equal(a["classes"], [0, 1])
  np.testing.assert_array_equal(a["difficult"], [False, True])
  assert records[1]["boxes"].shape == (0, 4)
  assert [r["id"] for r in read_voc(voc_root, CLASSES, split="train")] == ["a"]
  loaded = AnnotatedImages(records)[0]
  assert loaded["image"].shape == (20, 40, 3)
  assert tuple(loaded["image"][0, 0]) == (200, 0, 0)  # RGB, not BGR


@pytest.mark.parametrize("xml, message", [
    ("<annotation><filename>a.png", "not valid XML"),
    (voc_xml("a.png", [("screw", (1, 1, 5, 5), False)]), "class 'screw'"),
    (voc_xml("a.png", [("nut", (10, 1, 5, 5), False)]), "xmin < xmax"),
    ("<annotation><filename>a.png</filename></annotation>", "missing <size>"),
    (voc_xml("a.png", [("nut", ("x", 1, 5, 5), False)]), "<xmin> must be a number"),
])
def test_voc_malformed_files_name_the_file(voc_root, xml, message):
  bad = voc_root / "Annotations" / "a.xml"
  bad.write_text(xml)
  with pytest.raises(AnnotationError, match=message) as e:
    read_voc(voc_root, CLASSES)
  assert str(bad) in str(e.value)


def test_voc_missing_folder_and_image(tmp_path, voc_root):
  with pytest.raises(FileNotFoundError, match="no Annotations"):
    read_voc(tmp_path / "nowhere", CLASSES)
  os.remove(voc_root / "JPEGImages" / "a.png")
  with pytest.raises(FileNotFoundError, match="a.png"):
    AnnotatedImages(read_voc(voc_root, CLASSES))[0]


@pytest.fixture
def yolo_root(tmp_path):
  os.makedirs(tmp_path / "images")
  os.makedirs(tmp_path / "labels")
  for name in ("a", "b"):
    write_image(tmp_path / "images" / f"{name}.png",
                np.zeros((10, 20, 3), np.uint8))
  (tmp_path / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n\n0 0.1 0.2 0.2 0.2\n")
  return tmp_path


def test_yolo_txt_reads_boxes(yolo_root):
  records = read_yolo_txt(yolo_root, num_classes=2)
  assert [r["id"] for r in records] == ["a", "b"]
  np.testing.assert_allclose(records[0]["boxes"],
                             [[0.4, 0.3, 0.6, 0.7], [0.0, 0.1, 0.2, 0.3]],
                             atol=1e-6)
  np.testing.assert_array_equal(records[0]["classes"], [1, 0])
  assert records[1]["boxes"].shape == (0, 4)  # no label file: no objects


@pytest.mark.parametrize("line, message", [
    ("1 0.5 0.5 0.2", "expected 5 fields"),
    ("a 0.5 0.5 0.2 0.2", "integer class"),
    ("2 0.5 0.5 0.2 0.2", "class 2 outside 0..1"),
    ("0 0.5 0.5 1.5 0.2", "normalised"),
])
def test_yolo_txt_malformed_lines_name_file_and_line(yolo_root, line, message):
  path = yolo_root / "labels" / "b.txt"
  path.write_text("0 0.5 0.5 0.1 0.1\n" + line + "\n")
  with pytest.raises(AnnotationError, match=message) as e:
    read_yolo_txt(yolo_root, num_classes=2)
  assert f"{path}:2" in str(e.value)


def test_unreadable_image_names_the_file(yolo_root):
  bad = yolo_root / "images" / "a.png"
  bad.write_bytes(b"not an image")
  with pytest.raises(ValueError, match="not a readable image") as e:
    AnnotatedImages(read_yolo_txt(yolo_root, 2))[0]
  assert str(bad) in str(e.value)


def test_images_with_any_file_name_and_bit_depth(tmp_path):
  from vq.data.images import read_image
  image = np.random.default_rng(0).integers(0, 255, (6, 9, 3), np.uint8)
  ok, encoded = cv2.imencode(".png", image[..., ::-1])
  assert ok
  # A file name that is not valid UTF-8 (as Python sees it: surrogates).
  odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9_\xff.png")
  with open(odd, "wb") as f:
    f.write(encoded.tobytes())
  np.testing.assert_array_equal(read_image(os.fsdecode(odd)), image)
  np.testing.assert_array_equal(read_image(odd), image)
  deep = tmp_path / "deep.png"
  cv2.imwrite(str(deep), image[..., ::-1].astype(np.uint16) * 257)
  np.testing.assert_array_equal(read_image(str(deep)), image)
  (tmp_path / "empty.jpg").write_bytes(b"")
  with pytest.raises(ValueError, match=r"empty.jpg.*0 bytes"):
    read_image(str(tmp_path / "empty.jpg"))
