r"""An MVTec AD-layout anomaly set made from real texture photographs, for
checking the anomaly defaults on data they were not tuned on.

  python -m vq.photo_sets.textures --output=/tmp/vq/photo_anomaly \
      [--surfaces=held_out|confirmation|acceptance|verification] \
      [--patterns=/usr/share/gimp/2.0/patterns]

The surfaces are GIMP's photographic texture patterns (Debian's `gimp-data`
package), none of which vq's embedded data or anomaly sources use:
`held_out` (wood, leather, marble, fabric, stone), `confirmation`
(burl wood, cork, paper, granite, slate; other patterns, another seed: a
second set for checking choices made while looking at the first) or
`acceptance` (brushed metal, wood grain, white marble, bark, relief stone;
a third set, for the figures of choices made while looking at the other
two) or `verification` (amethyst, ground, rock, pine, leopard fur; a
fourth, made after the acceptance set had been looked at). Each pattern
is seamless: it is enlarged to a period of at least 112 pixels, tiled, and
cut into 128x128 images with random offsets, flips and slight lighting
changes. The defects are drawn here by code separate from
both DRAEM's training anomalies and the embedded test defects:

  foreign    a blob of another material (GIMP's food, water and legacy
             patterns) with a soft rim;
  scratch    a thin curved line, lighter or darker, 1-2 pixels wide;
  warp       a local swirl or pinch of the surface (only the geometry moves);
  discolour  a soft-edged region of changed hue and tone.

Written as OUTPUT/<category>/{train/good, test/<kind>, ground_truth/<kind>}
(PNG; masks `NNN_mask.png`), read by `data.source=mvtec, data.path=OUTPUT`.
"""
import os
import struct

import cv2
import numpy as np
from absl import app, flags

from vq.data.augment.geometry import size_hw
from vq.data.images import write_image

# name -> ({category: pattern}, seed)
SURFACES = {
    "held_out": ({"wood": "Wood/walnut.pat", "leather": "Animal/leather.pat",
                  "marble": "Stone/pink_marble.pat",
                  "fabric": "Fabric/burlap.pat", "stone": "Stone/stone33.pat"},
                 2026),
    "confirmation": ({"burlwood": "Wood/burlwood.pat",
                      "cork": "Wood/corkboard.pat",
                      "paper": "Paper/crinklepaper.pat",
                      "granite": "Stone/granite1.pat",
                      "slate": "Stone/slate.pat"}, 2027),
    "acceptance": ({"metal": "Paper/paper.pat", "grain": "Wood/wood3.pat",
                    "white_marble": "Stone/marble1.pat",
                    "bark": "Wood/bark.pat", "relief": "Stone/cracked.pat"},
                   2028),
    "verification": ({"amethyst": "Stone/amethyst.pat",
                      "ground": "Stone/ground1.pat", "rock": "Stone/rock.pat",
                      "pine": "Wood/pine.pat", "leopard": "Animal/leopard.pat"},
                     2029),
}
FOREIGN = ("Food/java.pat", "Food/choc_swirl.pat", "Water/ice.pat",
           "Legacy/pastel.pat", "Legacy/3dgreen.pat", "Sky/sky.pat")
DEFECT_KINDS = ("foreign", "scratch", "warp", "discolour")
IMAGE_SIZE = 128
PATTERNS_DIR = "/usr/share/gimp/2.0/patterns"  # Debian's gimp-data
MIN_PERIOD = 112


def read_pattern(path):
  """A GIMP .pat file as uint8 RGB [H, W, 3]."""
  with open(path, "rb") as f:
    data = f.read()
  header_size, version, width, height, depth = struct.unpack(">5I", data[:20])
  if version != 1 or data[20:24] != b"GPAT" or depth not in (1, 3, 4):
    raise ValueError(f"{path}: not a GIMP pattern (version 1, GPAT, 1/3/4 "
                     "bytes per pixel)")
  pixels = np.frombuffer(data, np.uint8, width * height * depth, header_size)
  image = pixels.reshape(height, width, depth)
  if depth == 1:
    return np.repeat(image, 3, -1)
  return np.ascontiguousarray(image[..., :3])


def enlarged(pattern):
  """The pattern scaled so its period is at least MIN_PERIOD pixels."""
  scale = max(1.0, MIN_PERIOD / min(pattern.shape[:2]))
  return cv2.resize(pattern, None, fx=scale, fy=scale,
                    interpolation=cv2.INTER_CUBIC)


def load_patterns(patterns_dir, names):
  """The named GIMP patterns of `patterns_dir`, enlarged."""
  missing = [p for p in names
             if not os.path.isfile(os.path.join(patterns_dir, p))]
  if missing:
    raise FileNotFoundError(
        f"{patterns_dir} lacks {missing}: install Debian's gimp-data package "
        "or name its patterns folder with --patterns")
  return [enlarged(read_pattern(os.path.join(patterns_dir, p)))
          for p in names]


def define_patterns_flag():
  """--patterns: where the GIMP patterns are (every photo_* set reads them)."""
  flags.DEFINE_string("patterns", PATTERNS_DIR,
                      "GIMP's patterns folder (Debian package gimp-data)")


def surface(rng, pattern, size=IMAGE_SIZE):
  """A crop of the tiled pattern, size (an int, square, or (height,
  width)), with lighting jitter."""
  h, w = pattern.shape[:2]
  out_h, out_w = size_hw(size)
  reps = (out_h // h + 2, out_w // w + 2, 1)
  tiled = np.tile(pattern, reps)
  y, x = rng.integers(h), rng.integers(w)
  crop = tiled[y:y + out_h, x:x + out_w].astype(np.float32)
  if rng.random() < 0.5:
    crop = crop[:, ::-1]
  if rng.random() < 0.5:
    crop = crop[::-1]
  crop = crop * rng.uniform(0.93, 1.07) + rng.uniform(-8, 8)
  crop += rng.normal(0, 2.0, crop.shape)
  return np.ascontiguousarray(np.clip(crop, 0, 255), np.float32)


def _soft_blob(rng, size, radius):
  """A float [size, size] blob in [0, 1] (random polygon, blurred rim) and
  its binary mask."""
  centre = rng.uniform(0.2, 0.8, 2) * size
  angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(5, 10)))
  radii = radius * rng.uniform(0.6, 1.0, angles.size)
  points = centre + np.stack([np.cos(angles), np.sin(angles)], -1) * radii[:,
                                                                           None]
  hard = np.zeros((size, size), np.float32)
  cv2.fillPoly(hard, [np.round(points).astype(np.int32)], 1.0)
  soft = cv2.GaussianBlur(hard, (0, 0), 1.2)
  return soft, (soft > 0.5).astype(np.uint8)


def _foreign(rng, image, foreign_patterns):
  size = image.shape[0]
  alpha, mask = _soft_blob(rng, size, rng.uniform(6, 16))
  other = surface(rng, foreign_patterns[rng.integers(len(foreign_patterns))],
                  size)
  a = alpha[..., None]
  return image * (1 - a) + other * a, mask


def _scratch(rng, image):
  size = image.shape[0]
  start = rng.uniform(0.15, 0.85, 2) * size
  direction = rng.uniform(0, 2 * np.pi)
  length = rng.uniform(0.25, 0.6) * size
  bend = rng.uniform(-0.4, 0.4)
  t = np.linspace(0, 1, 40)[:, None]
  angle = direction + bend * t
  steps = np.concatenate([np.cos(angle), np.sin(angle)], -1) * length / 40
  points = start + np.cumsum(steps, 0)
  line = np.zeros((size, size), np.float32)
  cv2.polylines(line, [np.round(points).astype(np.int32)], False, 1.0,
                thickness=int(rng.integers(1, 3)), lineType=cv2.LINE_AA)
  sign = 1.0 if rng.random() < 0.5 else -1.0
  change = sign * rng.uniform(50, 90) * line[..., None]
  return image + change, (line > 0.3).astype(np.uint8)


def _warp(rng, image):
  size = image.shape[0]
  cy, cx = rng.uniform(0.25, 0.75, 2) * size
  radius = rng.uniform(9, 18)
  ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
  dy, dx = ys - cy, xs - cx
  r = np.sqrt(dy ** 2 + dx ** 2)
  falloff = np.clip(1 - r / radius, 0, 1) ** 2
  if rng.random() < 0.5:  # swirl
    angle = rng.choice([-1, 1]) * rng.uniform(1.2, 2.5) * falloff
    cos, sin = np.cos(angle), np.sin(angle)
    map_x, map_y = cx + dx * cos - dy * sin, cy + dx * sin + dy * cos
  else:  # pinch or bulge
    scale = 1 + rng.choice([-1, 1]) * rng.uniform(0.4, 0.6) * falloff
    map_x, map_y = cx + dx * scale, cy + dy * scale
  map_x, map_y = map_x.astype(np.float32), map_y.astype(np.float32)
  # Lanczos keeps the surface as sharp inside the disc as outside (bilinear
  # resampling would blur it: a second, easier defect than the warp).
  warped = cv2.remap(image, map_x, map_y, cv2.INTER_LANCZOS4,
                     borderMode=cv2.BORDER_REFLECT)
  # The distorted disc (a swirl leaves its very centre in place).
  return warped, (r <= 0.8 * radius).astype(np.uint8)


def _discolour(rng, image):
  size = image.shape[0]
  alpha, mask = _soft_blob(rng, size, rng.uniform(7, 16))
  hsv = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8),
                     cv2.COLOR_RGB2HSV).astype(np.float32)
  hsv[..., 0] = (hsv[..., 0] + rng.uniform(15, 40) * rng.choice([-1, 1])) % 180
  hsv[..., 2] *= rng.uniform(0.6, 0.8)
  changed = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
  changed = changed.astype(np.float32)
  a = alpha[..., None]
  return image * (1 - a) + changed * a, mask


def draw_defect(rng, image, kind, foreign_patterns):
  """(float image with the defect, uint8 mask)."""
  if kind == "foreign":
    return _foreign(rng, image, foreign_patterns)
  if kind == "scratch":
    return _scratch(rng, image)
  if kind == "warp":
    return _warp(rng, image)
  if kind == "discolour":
    return _discolour(rng, image)
  raise ValueError(f"defect kind must be one of {DEFECT_KINDS}, got {kind!r}")


def _write(path, image):
  write_image(path, np.clip(np.round(image), 0, 255).astype(np.uint8))


def write_category(output, name, pattern, foreign_patterns, rng, num_train,
                   num_good, num_per_kind):
  root = os.path.join(output, name)
  os.makedirs(os.path.join(root, "train", "good"))
  os.makedirs(os.path.join(root, "test", "good"))
  for i in range(num_train):
    _write(os.path.join(root, "train", "good", f"{i:03d}.png"),
           surface(rng, pattern))
  for i in range(num_good):
    _write(os.path.join(root, "test", "good", f"{i:03d}.png"),
           surface(rng, pattern))
  for kind in DEFECT_KINDS:
    os.makedirs(os.path.join(root, "test", kind))
    os.makedirs(os.path.join(root, "ground_truth", kind))
    for i in range(num_per_kind):
      mask = np.zeros(1)
      while mask.sum() < 4:  # a defect that left the image is drawn again
        image, mask = draw_defect(rng, surface(rng, pattern), kind,
                                  foreign_patterns)
      _write(os.path.join(root, "test", kind, f"{i:03d}.png"), image)
      cv2.imwrite(os.path.join(root, "ground_truth", kind, f"{i:03d}_mask.png"),
                  mask * 255)


def write_dataset(output, patterns_dir, num_train=200, num_good=40,
                  num_per_kind=15, surfaces="held_out"):
  if surfaces not in SURFACES:
    raise ValueError(f"surfaces must be one of {sorted(SURFACES)}, got "
                     f"{surfaces!r}")
  if os.path.exists(output) and os.listdir(output):
    raise FileExistsError(f"{output} is not empty")
  categories, seed = SURFACES[surfaces]
  patterns = load_patterns(patterns_dir,
                           list(categories.values()) + list(FOREIGN))
  foreign_patterns = patterns[len(categories):]
  rng = np.random.default_rng(seed)
  for name, pattern in zip(categories, patterns):
    write_category(output, name, pattern, foreign_patterns, rng, num_train,
                   num_good, num_per_kind)


def main(argv):
  del argv
  categories = SURFACES[flags.FLAGS.surfaces][0]
  write_dataset(flags.FLAGS.output, flags.FLAGS.patterns,
                num_train=flags.FLAGS.train_images,
                surfaces=flags.FLAGS.surfaces)
  print(f"wrote {len(categories)} categories ({', '.join(categories)}) x "
        f"{len(DEFECT_KINDS)} defect kinds to {flags.FLAGS.output}")


if __name__ == "__main__":
  flags.DEFINE_string("output", None, "folder to write (must be empty)")
  define_patterns_flag()
  flags.DEFINE_enum("surfaces", "held_out", sorted(SURFACES),
                    "which five patterns (and seed) make the set")
  flags.DEFINE_integer("train_images", 200, "normal training images per "
                       "category")
  flags.mark_flag_as_required("output")
  app.run(main)
