"""Bad files as they occur give an error naming the file, never a silently
wrong record: 16-bit masks, truncated JPEG / PNG, a VOC <size> that is not
the image's, keypoints outside the image, COCO entries without an id."""
import io
import json
import zlib

import cv2
import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest
import skimage.data

from test_readers import voc_xml
from vq.data import images
from vq.data.formats import mvtec, segmentation_readers
from vq.data.errors import AnnotationError
from vq.data.images import read_image, read_mask, write_image
from vq.data.formats.keypoint_readers import (KeypointImages,
                                              read_coco_keypoints,
                                              read_keypoints_csv)
from vq.data.sources import AnnotatedImages
from vq.data.formats.voc import read_voc


def _photo(h=30, w=44):
  rng = np.random.default_rng(0)
  return rng.integers(0, 255, (h, w, 3), np.uint8)


def test_a_16_bit_mask_of_zeros_and_ones_is_read_as_a_mask(tmp_path):
  mask = np.zeros((30, 44), np.uint16)
  mask[5:12, 10:30] = 1
  assert cv2.imwrite(str(tmp_path / "m16.png"), mask)
  np.testing.assert_array_equal(read_mask(str(tmp_path / "m16.png")),
                                mask.astype(np.uint8))
  # Through the readers that use it: MVTec ground truth and mask folders.
  write_image(tmp_path / "img.png", _photo())
  record = {"image_path": str(tmp_path / "img.png"),
            "mask_path": str(tmp_path / "m16.png"), "label": 1}
  assert mvtec.load_record(record)["mask"].sum() == 7 * 20
  (tmp_path / "images").mkdir()
  (tmp_path / "masks").mkdir()
  write_image(tmp_path / "images" / "a.png", _photo())
  assert cv2.imwrite(str(tmp_path / "masks" / "a.png"), mask)
  records = segmentation_readers.read_mask_folder(
      str(tmp_path / "images"), str(tmp_path / "masks"))
  loaded = segmentation_readers.SegmentationImages(records)[0]
  assert loaded["mask"].sum() == 7 * 20 and loaded["label"] == 1


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_a_truncated_image_is_an_error_naming_the_file(tmp_path, ext):
  path = tmp_path / f"photo{ext}"
  ys, xs = np.mgrid[0:120, 0:160]  # smooth: libjpeg decodes the first rows
  write_image(path, np.stack([xs, ys, xs + ys], -1).astype(np.uint8))
  whole = path.read_bytes()
  read_image(str(path))           # the whole file reads
  path.write_bytes(whole + b"\0" * 64)  # padding after the end marker is fine
  read_image(str(path))
  path.write_bytes(whole[:len(whole) * 2 // 3])
  with pytest.raises(ValueError, match=r"photo\.(jpg|png).*truncated"):
    read_image(str(path))


def test_a_voc_size_that_is_not_the_images_is_an_error(tmp_path):
  for folder in ("Annotations", "JPEGImages"):
    (tmp_path / folder).mkdir()
  (tmp_path / "Annotations" / "a.xml").write_text(
      voc_xml("a.jpg", [("nut", (1, 1, 20, 10), False)], width=40, height=20))
  write_image(tmp_path / "JPEGImages" / "a.jpg", _photo(40, 80))
  source = AnnotatedImages(read_voc(str(tmp_path), ["nut"]))
  with pytest.raises(AnnotationError, match=r"a\.xml: the annotation's size "
                     r"is 40x20, its image .*a\.jpg is 80x40"):
    source[0]
  write_image(tmp_path / "JPEGImages" / "a.jpg", _photo(20, 40))
  assert source[0]["image"].shape == (20, 40, 3)


def test_keypoints_outside_the_image_are_an_error(tmp_path):
  write_image(tmp_path / "a.png", _photo(20, 40))
  csv_path = tmp_path / "train.csv"
  csv_path.write_text("image,x1,y1,x2,y2\na.png,4,2,36,2\na.png,4,2,41,2\n")
  source = KeypointImages(read_keypoints_csv(str(csv_path), 2))
  assert source[0]["keypoints"].shape == (2, 2)
  with pytest.raises(AnnotationError, match=r"train\.csv:3: keypoints \[1\] "
                     r".*outside the image .*a\.png \(40x20\)"):
    source[1]
  coco = {"images": [{"id": 7, "file_name": "a.png", "width": 40,
                      "height": 20}],
          "annotations": [{"image_id": 7, "keypoints": [4, 2, 2, 5, -3, 2]}]}
  (tmp_path / "kp.json").write_text(json.dumps(coco))
  source = KeypointImages(read_coco_keypoints(str(tmp_path / "kp.json"),
                                              str(tmp_path), 2))
  with pytest.raises(AnnotationError, match=r"kp\.json: annotation 0 "
                     r"\(image_id 7\): keypoints \[1\]"):
    source[0]


def test_a_coco_image_without_an_id_is_named(tmp_path):
  coco = {"images": [{"file_name": "a.png"}], "annotations": []}
  (tmp_path / "kp.json").write_text(json.dumps(coco))
  with pytest.raises(AnnotationError, match=r"kp\.json: images\[0\] has no "
                     r"\['id'\]"):
    read_coco_keypoints(str(tmp_path / "kp.json"), str(tmp_path), 2)


def _declaring(ext, height, width):
  """A small image file whose header declares height x width pixels."""
  data = bytearray(cv2.imencode(ext, np.zeros((8, 8, 3), np.uint8))[1])
  if ext == ".png":  # IHDR's size and its checksum
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
  else:
    i = 2
    while not 0xC0 <= data[i + 1] <= 0xC3:
      i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    data[i + 5:i + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
  return bytes(data)


def test_declared_sizes_equal_pillows(monkeypatch):
  monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", None)  # headers only
  rng = np.random.default_rng(0)
  for ext in (".jpg", ".png"):
    for _ in range(5):
      h, w = (int(v) for v in rng.integers(1, 700, 2))
      data = cv2.imencode(ext, np.zeros((h, w, 3), np.uint8))[1]
      width, height = PIL.Image.open(io.BytesIO(data.tobytes())).size
      assert images.declared_size(data) == (height, width) == (h, w)
    data = np.frombuffer(_declaring(ext, 30000, 29000), np.uint8)
    assert PIL.Image.open(io.BytesIO(data.tobytes())).size == (29000, 30000)
    assert images.declared_size(data) == (30000, 29000)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_an_image_declaring_too_many_pixels_is_refused_unread(tmp_path, ext,
                                                               monkeypatch):
  path = tmp_path / f"huge{ext}"
  path.write_bytes(_declaring(ext, 30000, 30000))
  with pytest.raises(ValueError, match=rf"huge\{ext}.*declares 30000x30000 "
                     "pixels, above the budget"):
    images.read_image(str(path))
  monkeypatch.setenv("VQ_MAX_PIXELS", "10000")  # another budget
  path.write_bytes(_declaring(ext, 101, 100))
  with pytest.raises(ValueError, match=r"declares 100x101 pixels, above the "
                     "budget of 10,000 .the environment variable VQ_MAX"):
    images.read_image(str(path))
  # Past vq's budget, OpenCV's own refusal is an error naming the file too.
  monkeypatch.setenv("VQ_MAX_PIXELS", str(10 ** 12))
  path.write_bytes(_declaring(ext, 60000, 60000))
  with pytest.raises(ValueError, match=rf"huge\{ext}"):
    images.read_image(str(path))


@pytest.mark.parametrize("progressive", [False, True])
def test_a_cut_jpeg_with_an_end_marker_appended_is_refused(tmp_path,
                                                           progressive):
  """libjpeg fills the missing rows with grey and only warns; the reader
  counts its warning as the error it is."""
  photo = cv2.resize(skimage.data.chelsea(), (240, 160))
  flags = [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
  data = cv2.imencode(".jpg", photo, flags)[1].tobytes()
  path = tmp_path / "cut.jpg"
  path.write_bytes(data[:len(data) // 2] + b"\xff\xd9")
  assert cv2.imdecode(np.fromfile(path, np.uint8), 1) is not None  # OpenCV
  with pytest.raises(ValueError, match=r"cut\.jpg.*Corrupt JPEG data"):
    read_image(str(path))
  path.write_bytes(data)
  assert read_image(str(path)).shape == (160, 240, 3)


def test_tiff_pages_and_gif_frames_are_read_and_float_samples_named(
    tmp_path):
  pages = [np.full((6, 9, 3), 60 * k, np.uint8) for k in range(3)]
  cv2.imwritemulti(str(tmp_path / "pages.tif"), pages)
  frames = [PIL.Image.fromarray(p) for p in pages]
  frames[0].save(tmp_path / "clip.gif", save_all=True,
                 append_images=frames[1:])
  for name in ("pages.tif", "clip.gif"):
    read = images.read_pages(str(tmp_path / name))
    assert [int(p.mean()) for p in read] == [0, 60, 120], name
  cv2.imwrite(str(tmp_path / "float.tif"), np.ones((5, 7), np.float32))
  with pytest.raises(ValueError, match=r"float\.tif.*float32 samples"):
    read_image(str(tmp_path / "float.tif"))


def test_a_failed_write_names_the_systems_reason(tmp_path):
  """A full disk: the system's 'No space left on device' reaches the
  user (OpenCV's own writer only returns False)."""
  (tmp_path / "full.jpg").symlink_to("/dev/full")
  with pytest.raises(OSError, match="No space left on device"):
    write_image(str(tmp_path / "full.jpg"), np.zeros((4, 4, 3), np.uint8))


def _phone_photo(path, orientation):
  """A camera JPEG as phones store it: the sensor's 60x40 pixels and an
  EXIF orientation tag (6: turn 90 degrees clockwise to show)."""
  sensor = PIL.Image.fromarray(skimage.data.astronaut()[100:140, 150:210])
  exif = sensor.getexif()
  if orientation:
    exif[0x0112] = orientation
  sensor.save(path, "JPEG", quality=95, exif=exif.tobytes())


def test_a_photo_turned_by_its_exif_tag_is_named_when_its_annotation_is_not(
    tmp_path):
  for folder in ("Annotations", "JPEGImages"):
    (tmp_path / folder).mkdir()
  photo = tmp_path / "JPEGImages" / "a.jpg"
  _phone_photo(photo, orientation=6)
  # Read as shown, as Pillow's exif_transpose shows it.
  shown = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(photo)))
  assert shown.shape == (60, 40, 3)
  np.testing.assert_allclose(read_image(str(photo)), shown, atol=2)
  # Boxes annotated on the stored 60x40 pixels.
  xml = tmp_path / "Annotations" / "a.xml"
  xml.write_text(voc_xml("a.jpg", [("nut", (1, 1, 20, 10), False)],
                         width=60, height=40))
  source = AnnotatedImages(read_voc(str(tmp_path), ["nut"]))
  with pytest.raises(AnnotationError, match=(
      r"a\.xml: the annotation's size is 60x40, its image .*a\.jpg is 40x60; "
      r".* stored 60x40 and its EXIF orientation tag turns it to 40x60")):
    source[0]
  # A size wrong for another reason says nothing of the tag.
  xml.write_text(voc_xml("a.jpg", [("nut", (1, 1, 20, 10), False)],
                         width=50, height=40))
  with pytest.raises(AnnotationError, match="annotation's size") as error:
    AnnotatedImages(read_voc(str(tmp_path), ["nut"]))[0]
  assert "EXIF" not in str(error.value)
  # Without the tag the stored pixels are the image.
  _phone_photo(photo, orientation=0)
  xml.write_text(voc_xml("a.jpg", [("nut", (1, 1, 20, 10), False)],
                         width=60, height=40))
  assert source[0]["image"].shape == (40, 60, 3)


def test_a_mask_of_the_stored_pixels_of_a_turned_photo_is_named(tmp_path):
  good = tmp_path / "cat" / "train" / "good"
  broken = tmp_path / "cat" / "test" / "broken"
  truth = tmp_path / "cat" / "ground_truth" / "broken"
  for folder in (good, broken, truth):
    folder.mkdir(parents=True)
  _phone_photo(good / "000.jpg", orientation=0)
  _phone_photo(broken / "000.jpg", orientation=6)
  cv2.imwrite(str(truth / "000_mask.png"), np.full((40, 60), 255, np.uint8))
  _, test = mvtec.read_mvtec(str(tmp_path), "cat", "mvtec_ad")
  with pytest.raises(AnnotationError, match=(
      r"000_mask\.png: mask is 60x40, its image .*000\.jpg is 40x60\. The "
      r"photograph is stored 60x40 and its EXIF orientation tag")):
    mvtec.load_record(test[0])
