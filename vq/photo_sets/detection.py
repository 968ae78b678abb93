r"""A Pascal VOC detection set of parts pasted on real photographs, for
checking the detection defaults on data they were not tuned on.

  python -m vq.photo_sets.detection --output=/tmp/vq/photo_detection \
      [--images=1200] [--patterns=/usr/share/gimp/2.0/patterns]

Writes OUTPUT/VOC2007/{JPEGImages/*.jpg, Annotations/*.xml,
ImageSets/Main/{trainval,test}.txt} (5/6 trainval, 1/6 test), read by
`data.source=voc`. The workbench backgrounds are GIMP's photographic
patterns of wood, cork, granite, slate, rock and paper (none used by vq's
embedded data, its anomaly sources or the held-out anomaly set); the
parts are cut from other photographs (marble, stone, ice, bark), tinted to
metal finishes, shaded from one side and cast a soft shadow. They have the
embedded set's four class names but are drawn here, by separate code:
nut (hexagon with a bore and a chamfer ring), washer (ring with a rim),
bolt (hexagon head on a threaded shank, seen from the side) and bracket
(L-shaped plate with two holes); unlabelled pebbles of another photograph
are clutter. Images are 4:3, 1:1 and 3:4 JPEGs of odd sizes.
"""
import os
import xml.etree.ElementTree as ET

import cv2
import numpy as np
from absl import app, flags

from vq.photo_sets.textures import (define_patterns_flag, load_patterns,
                                         surface)
from vq.data.images import write_image

CLASS_NAMES = ("nut", "washer", "bolt", "bracket")
BACKGROUNDS = ("Wood/wood1.pat", "Wood/pine.pat", "Wood/corkboard.pat",
               "Stone/granite1.pat", "Stone/slate.pat", "Stone/rock.pat",
               "Paper/crinklepaper.pat", "Stone/terra.pat")
MATERIALS = ("Stone/marble1.pat", "Stone/Moonfoot.pat", "Water/ice.pat",
             "Wood/bark.pat", "Stone/marble3.pat")
# Metal finishes the parts' photographs are tinted to (RGB).
FINISHES = np.array([(185, 185, 190), (120, 124, 132), (205, 170, 90),
                     (215, 212, 200), (70, 70, 76), (160, 120, 80)],
                    np.float32)
IMAGE_SIZES = ((240, 320), (257, 257), (300, 225), (270, 360))  # (h, w)
SUPERSAMPLE = 4
SEED = 2026


def _rotation(angle):
  c, s = np.cos(angle), np.sin(angle)
  return np.array([[c, -s], [s, c]])


def _polygon(canvas, points, value):
  pts = np.round(points * SUPERSAMPLE).astype(np.int32)
  cv2.fillPoly(canvas, [pts], value, cv2.LINE_AA)


def _circle(canvas, centre, radius, value, thickness=-1):
  cv2.circle(canvas, tuple(int(round(v * SUPERSAMPLE)) for v in centre),
             int(round(radius * SUPERSAMPLE)), value,
             thickness if thickness < 0 else thickness * SUPERSAMPLE,
             cv2.LINE_AA)


def _line(canvas, a, b):
  """A 1-pixel line from a to b (pixels) on the supersampled canvas."""
  cv2.line(canvas, tuple(np.round(a * SUPERSAMPLE).astype(int)),
           tuple(np.round(b * SUPERSAMPLE).astype(int)), 1.0, SUPERSAMPLE,
           cv2.LINE_AA)


def _part_shape(kind, rng, centre, radius, hw):
  """(alpha [H, W] in [0, 1], line marks [H, W] in [0, 1]) of one part:
  the marks are chamfers and threads, drawn darker on the finish."""
  h, w = hw
  big = (h * SUPERSAMPLE, w * SUPERSAMPLE)
  solid, marks = np.zeros(big, np.float32), np.zeros(big, np.float32)
  turn = _rotation(rng.uniform(0, 2 * np.pi))
  place = lambda pts: np.asarray(pts, np.float64) @ turn.T * radius + centre
  if kind == "nut":
    t = np.arange(6) * np.pi / 3
    _polygon(solid, place(np.stack([np.cos(t), np.sin(t)], 1)), 1.0)
    _circle(marks, centre, radius * 0.78, 1.0, 1)
    _circle(solid, centre, radius * rng.uniform(0.4, 0.5), 0.0)
  elif kind == "washer":
    _circle(solid, centre, radius, 1.0)
    _circle(marks, centre, radius * 0.92, 1.0, 1)
    _circle(solid, centre, radius * rng.uniform(0.45, 0.6), 0.0)
  elif kind == "bolt":
    half = rng.uniform(0.14, 0.2)
    _polygon(solid, place([[-1, -half], [0.45, -half], [0.45, half],
                           [-1, half]]), 1.0)
    _polygon(solid, place([[0.45, -0.42], [1, -0.42], [1, 0.42],
                           [0.45, 0.42]]), 1.0)
    for x in np.arange(-0.95, 0.3, 0.12):  # threads across the shank
      _line(marks, *place([[x, -half], [x + 0.05, half]]))
    _line(marks, *place([[0.72, -0.42], [0.72, 0.42]]))  # the head's edge
  else:  # bracket
    arm = rng.uniform(0.38, 0.5)
    _polygon(solid, place([[-1, -1], [1, -1], [1, -1 + arm],
                           [-1, -1 + arm]]), 1.0)
    _polygon(solid, place([[-1, -1], [-1 + arm, -1], [-1 + arm, 1],
                           [-1, 1]]), 1.0)
    for hole in ([0.6, -1 + arm / 2], [-1 + arm / 2, 0.6]):
      _circle(solid, place([hole])[0], radius * arm * 0.28, 0.0)
  shrink = lambda a: cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
  alpha = shrink(solid)
  return alpha, shrink(marks) * alpha


def _paste(rng, image, alpha, marks, material):
  """Composites a part (tinted photograph, side light, soft shadow)."""
  h, w = alpha.shape
  grey = material.mean(-1, keepdims=True)
  grey = (grey - grey.mean()) / max(grey.std(), 1.0)
  finish = FINISHES[rng.integers(len(FINISHES))]
  ys, xs = np.mgrid[0:h, 0:w] / max(h, w)
  light = rng.uniform(0, 2 * np.pi)
  shade = 1 + 0.5 * ((xs - xs[alpha > 0.5].mean()) * np.cos(light) +
                     (ys - ys[alpha > 0.5].mean()) * np.sin(light))
  part = finish * shade[..., None] + rng.uniform(8, 20) * grey
  part *= (1 - 0.45 * marks)[..., None]
  offset = np.float32([[1, 0, rng.uniform(2, 5)], [0, 1, rng.uniform(2, 5)]])
  shadow = cv2.GaussianBlur(cv2.warpAffine(alpha, offset, (w, h)), (0, 0), 2.5)
  image *= (1 - 0.45 * shadow)[..., None]
  a = alpha[..., None]
  image[:] = image * (1 - a) + part * a


def _pebble(rng, image, material):
  h, w = image.shape[:2]
  centre = rng.uniform(0, 1, 2) * [w, h]
  angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
  points = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * (
      rng.uniform(2, 8) * rng.uniform(0.6, 1.0, (7, 1)))
  canvas = np.zeros((h * SUPERSAMPLE, w * SUPERSAMPLE), np.float32)
  _polygon(canvas, points, 1.0)
  a = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)[..., None]
  image[:] = image * (1 - a) + material * a


def _overlaps(box, boxes, margin=4):
  x1, y1, x2, y2 = box
  return any(x1 < b[2] + margin and b[0] < x2 + margin and
             y1 < b[3] + margin and b[1] < y2 + margin for b in boxes)


def scene(rng, backgrounds, materials, max_parts=4):
  """One photo: (uint8 RGB [H, W, 3], boxes [K, 4] as VOC's 1-based
  inclusive pixels (xmin, ymin, xmax, ymax), class indices [K])."""
  h, w = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
  image = surface(rng, backgrounds[rng.integers(len(backgrounds))], (h, w))
  pick = lambda: surface(rng, materials[rng.integers(len(materials))], (h, w))
  boxes, classes = [], []
  for _ in range(rng.integers(1, max_parts + 1)):
    kind = int(rng.integers(len(CLASS_NAMES)))
    radius = rng.uniform(0.07, 0.17) * min(h, w)
    centre = rng.uniform(radius, [w - radius, h - radius])
    alpha, marks = _part_shape(CLASS_NAMES[kind], rng, centre, radius, (h, w))
    ys, xs = np.nonzero(alpha > 0.5)
    box = (xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1)
    if _overlaps(box, boxes):
      continue
    _paste(rng, image, alpha, marks, pick())
    boxes.append(box)
    classes.append(kind)
  for _ in range(rng.integers(0, 4)):
    _pebble(rng, image, pick())
  image += rng.normal(0, 2.0, image.shape)
  return (np.clip(np.round(image), 0, 255).astype(np.uint8),
          np.array(boxes, np.int64).reshape(-1, 4), np.array(classes))


def voc_xml(filename, hw, boxes, classes):
  """A VOC annotation as an ElementTree."""
  root = ET.Element("annotation")
  ET.SubElement(root, "folder").text = "VOC2007"
  ET.SubElement(root, "filename").text = filename
  size = ET.SubElement(root, "size")
  for tag, value in zip(("width", "height", "depth"), (hw[1], hw[0], 3)):
    ET.SubElement(size, tag).text = str(value)
  ET.SubElement(root, "segmented").text = "0"
  for box, k in zip(boxes, classes):
    obj = ET.SubElement(root, "object")
    ET.SubElement(obj, "name").text = CLASS_NAMES[k]
    ET.SubElement(obj, "pose").text = "Unspecified"
    ET.SubElement(obj, "truncated").text = "0"
    ET.SubElement(obj, "difficult").text = "0"
    bndbox = ET.SubElement(obj, "bndbox")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
      ET.SubElement(bndbox, tag).text = str(int(value))
  ET.indent(root)
  return ET.ElementTree(root)


def write_dataset(output, patterns_dir, num_images=1200, seed=SEED):
  """Writes OUTPUT/VOC2007; returns its path."""
  root = os.path.join(output, "VOC2007")
  if os.path.exists(root) and os.listdir(root):
    raise FileExistsError(f"{root} is not empty")
  for sub in ("JPEGImages", "Annotations", os.path.join("ImageSets", "Main")):
    os.makedirs(os.path.join(root, sub), exist_ok=True)
  backgrounds = load_patterns(patterns_dir, BACKGROUNDS)
  materials = load_patterns(patterns_dir, MATERIALS)
  rng = np.random.default_rng(seed)
  ids = [f"{i:06d}" for i in range(num_images)]
  for image_id in ids:
    image, boxes, classes = scene(rng, backgrounds, materials)
    filename = f"{image_id}.jpg"
    write_image(os.path.join(root, "JPEGImages", filename), image)
    voc_xml(filename, image.shape[:2], boxes, classes).write(
        os.path.join(root, "Annotations", f"{image_id}.xml"))
  num_test = num_images // 6
  for split, part in (("trainval", ids[num_test:]), ("test", ids[:num_test])):
    with open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"),
              "w") as f:
      f.write("\n".join(part) + "\n")
  return root


def main(argv):
  del argv
  root = write_dataset(flags.FLAGS.output, flags.FLAGS.patterns,
                       flags.FLAGS.images)
  print(f"wrote {flags.FLAGS.images} photos to {root}")


if __name__ == "__main__":
  flags.DEFINE_string("output", None, "folder to write (its VOC2007 must be "
                      "empty)")
  define_patterns_flag()
  flags.DEFINE_integer("images", 1200, "photos to write")
  flags.mark_flag_as_required("output")
  app.run(main)
