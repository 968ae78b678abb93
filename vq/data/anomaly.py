"""Anomaly data: the embedded textures or an MVTec AD / AD 2 tree; training
images get DRAEM's synthetic anomalies, test images keep their masks."""
import dataclasses
import os

from absl import logging
import cv2
import numpy as np

from vq.data import tfds_records
from vq.data.augment import anomaly_synthesis, letterbox
from vq.data.embedded import embedded_textures
from vq.data.formats import mvtec
from vq.data.check import Kept, Subset
from vq.data.sources import Datasets, RecordSource, require, select


class MVTecImages(RecordSource):
  """Random access over MVTec records (grain source)."""

  def __getitem__(self, index):
    r = self.records[index]
    return dict(mvtec.load_record(r), category=r["category"],
                defect_type=r["defect_type"])


class WithReferences:
  """The test records, then normal training images labelled -1 (neither
  good nor defective): evaluated beside the test split, they give each
  category's maps on normal images their scale (eval.scoring=fused)."""

  def __init__(self, test, train, reference_indices):
    self.test, self.train = test, train
    self.reference_indices = list(reference_indices)

  def __len__(self):
    return len(self.test) + len(self.reference_indices)

  def __getitem__(self, index):
    if index < len(self.test):
      return self.test[index]
    record = self.train[self.reference_indices[index - len(self.test)]]
    return dict(record, label=np.int32(-1), defect_type="good",
                mask=np.zeros(record["image"].shape[:2], np.uint8))


def reference_split(category, num_train, memory_images, reference_images):
  """(m, r): a category's first m training images make the texture
  memory, the next r are references. With too few images for both, a
  quarter of them (at least one) are references and the rest the memory."""
  if num_train < 2:
    raise ValueError(f"{category}: {num_train} training image(s); the "
                     "texture memory scorings need at least 2 (one for the "
                     "memory, one to calibrate its maps)")
  references = min(reference_images, max(1, num_train // 4))
  return min(memory_images, num_train - references), references


def train_categories(datasets):
  """Each training record's category, in `datasets.train`'s order: when
  the data check left bad records out (`Kept`, of the source
  info['train_categories'] describes), those of the records it kept."""
  categories = datasets.info["train_categories"]
  train = datasets.train
  if isinstance(train, Kept):
    return [categories[i] for i in train.indices]
  return categories


def category_indices(train_categories, category):
  """Indices of `category`'s images in the training source, in order."""
  return [i for i, c in enumerate(train_categories) if c == category]


def reference_indices(train_categories, categories, memory_images,
                      reference_images):
  """The reference training images of each category (`reference_split`),
  as indices into the training source, in the order of `categories`."""
  indices = []
  for category in categories:
    own = category_indices(train_categories, category)
    m, r = reference_split(category, len(own), memory_images,
                           reference_images)
    indices += own[m:m + r]
  return indices


def _embedded(d):
  unknown = set(d.categories) - set(embedded_textures.CATEGORIES)
  if unknown:
    raise ValueError(f"data.categories {sorted(unknown)} are not embedded; "
                     f"choose from {embedded_textures.CATEGORIES}")
  root = embedded_textures.ensure_written(
      d.cache_dir or embedded_textures.default_cache_dir(),
      image_size=d.image_size)
  return root, "mvtec_ad"


def _mvtec(d):
  require(d, "path")
  return d.path, d.layout


SOURCES = {"embedded": _embedded, "mvtec": _mvtec}  # and "tfds" (_tfds)


def shape_of(size):
  """(height, width) of a scored shape given as a side or a pair."""
  if isinstance(size, (int, np.integer)):
    return int(size), int(size)
  h, w = size
  return int(h), int(w)


def resize(image, size, interpolation=cv2.INTER_AREA, keep_aspect=False):
  """`image` at `size` (a side, or (height, width)): stretched, or with
  `keep_aspect` letterboxed (margins reflected from the image)."""
  hw = shape_of(size)
  if image.shape[:2] == hw:
    return image
  if keep_aspect:
    return letterbox.letterbox(image, hw, interpolation)
  return cv2.resize(image, hw[::-1], interpolation=interpolation)


def resize_mask(mask, size, keep_aspect=False):
  """A 0/1 mask at `size` (a side, or (height, width)), nearest neighbour;
  letterboxed margins are 0."""
  if keep_aspect:
    return letterbox.letterbox(mask, shape_of(size), cv2.INTER_NEAREST,
                               fill=0)
  return resize(mask, size, cv2.INTER_NEAREST)


def scored_image(image, network_size, score_size, enlarge="repeat",
                 keep_aspect=False):
  """`image` at the scored shape (`score_size`: a side, a whole multiple of
  the networks', or (height, width) under the memory scoring): shrunk to
  it when large enough; else, with `enlarge='repeat'`, read at the
  networks' side as in training and its pixels repeated, so that
  `layers.block_mean` gives the networks exactly their training-time view
  (a non-square shape, which no network reads: nearest neighbour), or with
  'linear' enlarged bilinearly (for an ImageNet encoder, which reads a
  smooth image better than blocks of pixels). With `keep_aspect` it is
  letterboxed at the scored shape instead, enlarged by repeating pixels
  (nearest neighbour) or bilinearly."""
  hw = shape_of(score_size)
  enlarging = cv2.INTER_LINEAR if enlarge == "linear" else cv2.INTER_NEAREST
  if keep_aspect:
    interpolation = None  # area when shrinking, else as `enlarge` says
    if not letterbox.shrinks(image.shape[:2], hw):
      interpolation = enlarging
    return resize(image, hw, interpolation, keep_aspect=True)
  if image.shape[0] >= hw[0] and image.shape[1] >= hw[1]:
    return resize(image, hw)
  if enlarge == "linear" or hw[0] != hw[1]:
    return resize(image, hw, enlarging)
  factor = hw[0] // network_size
  return np.repeat(np.repeat(resize(image, network_size), factor, 0),
                   factor, 1)


def training_identity(datasets, category):
  """What a memory of `category`'s training images is built from: each
  file's path, size and modification time (a file source; those the data
  check left out included, so a run's tools agree whether or not they ran
  it), else the count of its images."""
  source = datasets.train
  while isinstance(source, Subset):
    source = source.source
  if not isinstance(source, MVTecImages):
    return len(category_indices(train_categories(datasets), category))
  identity = []
  for record in source.records:
    if record["category"] == category:
      path = record["image_path"]
      try:
        stat = os.stat(path)
        identity.append((os.fsdecode(path), stat.st_size, stat.st_mtime_ns))
      except OSError:
        identity.append((os.fsdecode(path), None, None))
  return identity


def normal_images(datasets, category, limit, network_size, score_size,
                  enlarge="repeat", keep_aspect=False):
  """uint8 [n, height, width, 3] (`score_size`: a side or (height,
  width)): the first `limit` training images of `category` (all of them
  normal), read from `datasets.train` (`scored_image`)."""
  return normal_canvases(datasets, category, limit, network_size,
                         score_size, enlarge, keep_aspect)[0]


def normal_canvases(datasets, category, limit, network_size, score_size,
                    enlarge="repeat", keep_aspect=False):
  """(`normal_images`, each one's (top, left, height, width) box of the
  photograph's pixels: its letterbox box with `keep_aspect`, else all)."""
  own = category_indices(train_categories(datasets), category)
  if not own:
    raise ValueError(f"{category}: no training images")
  images, boxes = [], []
  for i in own[:limit]:
    photograph = datasets.train[i]["image"]
    images.append(scored_image(photograph, network_size, score_size, enlarge,
                               keep_aspect))
    boxes.append(photograph_box(photograph.shape[:2], score_size,
                                keep_aspect))
  return np.stack(images), boxes


def photograph_box(photograph_hw, score_size, keep_aspect):
  """(top, left, height, width) of a `photograph_hw` photograph's pixels
  at the scored shape: its letterbox box with `keep_aspect`, else all."""
  hw = shape_of(score_size)
  return letterbox.fit_box(photograph_hw, hw) if keep_aspect else (0, 0, *hw)


def _is_grey(image):
  return bool(np.all(image[..., 0] == image[..., 1]) and
              np.all(image[..., 1] == image[..., 2]))


@dataclasses.dataclass(frozen=True)
class SyntheticAnomalyTransform:
  """Normal image -> {image with a synthetic anomaly (or clean), clean,
  mask}, of a random `crop_size` crop when that is set (0: whole)."""
  image_size: int
  source: anomaly_synthesis.AnomalySource
  rotate_probability: float
  perlin_max_scale: int
  crop_size: int = 0
  self_source_probability: float = 0.0
  stroke_probability: float = 0.0
  keep_aspect: bool = False

  def __call__(self, record, rng):
    image = resize(record["image"], self.image_size,
                   keep_aspect=self.keep_aspect)
    if self.crop_size:
      y, x = rng.integers(self.image_size - self.crop_size + 1, size=2)
      image = image[y:y + self.crop_size, x:x + self.crop_size]
    if rng.random() < self.rotate_probability:
      image = anomaly_synthesis.rotate(image, rng.uniform(-90, 90))
    if self.self_source_probability and (
        rng.random() < self.self_source_probability):
      source = anomaly_synthesis.distorted(image, rng)
    else:
      source = self.source.sample(rng, image.shape[0])
    if _is_grey(image):
      # Grey surfaces get grey anomalies: colour alone would give them away.
      source = np.repeat(cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)[..., None],
                         3, -1)
    augmented, mask = anomaly_synthesis.synthesize_anomaly(
        image, source, rng, max_scale=self.perlin_max_scale,
        stroke_probability=self.stroke_probability)
    return {"image": augmented, "clean": image, "mask": mask}


@dataclasses.dataclass(frozen=True)
class TestTransform:
  """Test image -> {image, mask at the scored shape (`scored_image`),
  valid (1 on the image's pixels, 0 on letterbox margins), label, category
  index, defect index (-1 for good images)}."""
  image_size: int
  score_size: int | tuple  # a side, or (height, width)
  categories: tuple
  defect_types: tuple
  enlarge: str = "repeat"  # `scored_image`'s
  keep_aspect: bool = False

  def __call__(self, record):
    hw, shape = record["image"].shape[:2], shape_of(self.score_size)
    return {"image": scored_image(record["image"], self.image_size, shape,
                                  self.enlarge, self.keep_aspect),
            "mask": resize_mask(record["mask"], shape, self.keep_aspect),
            "valid": (letterbox.valid_mask(hw, shape)
                      if self.keep_aspect else np.ones(shape, np.uint8)),
            "label": record["label"],
            "category": np.int32(self.categories.index(record["category"])),
            "defect": np.int32(self.defect_types.index(record["defect_type"])
                               if record["label"] > 0 else -1)}


def _tfds(d):
  """(train, test sources of a prepared dataset limited to
  `data.categories`, the test records' labels without their pixels, the
  training images' categories)."""
  train, test = tfds_records.pair(d)
  keep = lambda values: [i for i, c in enumerate(values)
                         if c in set(d.categories)]
  columns = {k: test.values(k) for k in ("label", "category", "defect_type")}
  kept = keep(columns["category"])
  labels = [{k: v[i] for k, v in columns.items()} for i in kept]
  train_categories = train.values("category")
  kept_train = keep(train_categories)
  return (Subset(train, kept_train), Subset(test, kept), labels,
          [train_categories[i] for i in kept_train])


ASPECT_MULTIPLE = 32  # a non-square scored shape's sides are multiples
LOOSE_FIT = 0.75      # a letterboxed image filling less of its shape: noted


def aspect_shape(side, aspect_ratio):
  """(height, width) with about side x side pixels at `aspect_ratio`
  (width / height), sides multiples of ASPECT_MULTIPLE: the shorter the
  nearest to side / sqrt(ratio) (ratio >= 1), the longer the nearest to
  the shorter times the ratio (a photograph of that ratio fills as much
  of it as the multiples allow); (side, side) at ratio 1."""
  if aspect_ratio == 1:
    return int(side), int(side)
  long_over_short = max(aspect_ratio, 1 / aspect_ratio)
  snap = lambda x: max(1, int(round(x / ASPECT_MULTIPLE))) * ASPECT_MULTIPLE
  short = snap(side / np.sqrt(long_over_short))
  long = snap(short * long_over_short)
  return (short, long) if aspect_ratio > 1 else (long, short)


def common_aspect(source, samples=16, spread=0.15):
  """The geometric mean width / height of up to `samples` images spread
  over `source`, or None when one of them is more than `spread` (a
  fraction) off it (photographs of many shapes: no one ratio fits) or
  none is readable (unreadable ones are skipped: the data check reports
  them)."""
  ratios = []
  for i in np.unique(np.linspace(0, len(source) - 1, samples).astype(int)):
    try:
      h, w = source[int(i)]["image"].shape[:2]
    except Exception:  # pylint: disable=broad-except
      continue  # bad files raise many types (OpenCV, NumPy, TFDS)
    ratios.append(w / h)
  if not ratios:
    return None
  ratios = np.array(ratios)
  mean = float(np.exp(np.log(ratios).mean()))
  if np.max(np.abs(ratios / mean - 1)) > spread:
    return None
  return mean


def report_scale(source, size, keep_aspect, prefix="", side=0):
  """Says at start (after `prefix`) when the scored shape (`size`: a side
  or (height, width)) shrinks a file source's images (its first image's
  size) or stretches them out of their aspect ratio, and which settings
  keep more of them. `side`: the memory scoring's eval.memory.image_size,
  whose shape eval.memory.aspect_ratio sets (0: another scoring's square);
  then also when letterboxed images of one shape fill under LOOSE_FIT of
  the scored shape (margins scored in their place)."""
  if not len(source):
    return
  h, w = source[0]["image"].shape[:2]
  sh, sw = shape_of(size)
  factor = max(h / sh, w / sw)
  stretched = w * sh != h * sw and not keep_aspect
  what, advice = [], []
  if factor > 1:
    what.append(f"{factor:.1f}x smaller")
    advice.append("a larger eval.memory.image_size (the memory scorings) or "
                  "data.image_size (the networks) keeps more of them")
  if stretched:
    what.append("stretched out of their aspect ratio")
    advice.append("data.keep_aspect=True letterboxes them instead")
  ratio = common_aspect(source) if side and (stretched or keep_aspect) \
      else None
  if ratio is not None:
    _, _, fh, fw = letterbox.fit_box((1000, round(1000 * ratio)), (sh, sw))
    filled = fh * fw / (sh * sw)
    ah, aw = aspect_shape(side, round(ratio, 2))
    if (filled < LOOSE_FIT or stretched) and (ah, aw) != (sh, sw):
      if keep_aspect:
        what.append(f"letterboxed, they fill {filled:.0%} of it")
      advice.append(f"eval.memory.aspect_ratio={ratio:.2f} scores them at "
                    f"{aw}x{ah}, about as many pixels")
  if what:
    logging.warning("%simages are %dx%d, scored at %dx%d (%s); %s", prefix,
                    w, h, sw, sh, ", ".join(what), "; ".join(advice))


def _sources(d):
  """(train source, test source, test records' labels, training images'
  categories) of `data.categories`."""
  if d.source == "tfds":
    return _tfds(d)
  root, layout = select(SOURCES, d, "anomaly")
  train, records = [], []
  for category in d.categories:
    category_train, category_test = mvtec.read_mvtec(root, category, layout)
    train += category_train
    records += category_test
  return (MVTecImages(train), MVTecImages(records), records,
          [r["category"] for r in train])


def training_aspect(data_config):
  """The width / height the training photographs share (`common_aspect`
  of a sample), or None when they differ; 1 for the embedded textures."""
  if data_config.source == "embedded":
    return 1.0
  return common_aspect(_sources(data_config)[0])


def datasets(data_config, eval_size=0, enlarge="repeat", note_prefix="",
             memory_side=0):
  """Sources per category; test images are read at `eval_size` (a side or
  (height, width); 0: data.image_size; smaller ones enlarged as `enlarge`
  says, see `scored_image`; letterboxed with data.keep_aspect);
  info['defect_types'] names the test defects,
  info['train_categories'] each training image's category. A file source's
  scale is noted at start after `note_prefix` (None: not noted), with the
  memory scoring's `memory_side` (`report_scale`)."""
  d = data_config
  train, test, records, train_categories = _sources(d)
  categories = tuple(d.categories)
  for category in categories:
    labels = {int(r["label"]) for r in records if r["category"] == category}
    if labels != {0, 1}:
      missing = "good" if 0 not in labels else "defective"
      raise ValueError(f"{category}: the test split has no {missing} image; "
                       "image AUROC and the threshold need both")
  defect_types = tuple(sorted({r["defect_type"] for r in records
                               if r["label"]}))
  if d.crop_size and not 0 < d.crop_size <= d.image_size:
    raise ValueError(f"data.crop_size={d.crop_size} must be at most "
                     f"data.image_size={d.image_size}")
  if d.source != "embedded" and note_prefix is not None:
    report_scale(test, eval_size or d.image_size, d.keep_aspect, note_prefix,
                 memory_side)
  return Datasets(
      train, test,
      SyntheticAnomalyTransform(
          d.image_size,
          anomaly_synthesis.AnomalySource(d.anomaly_source, d.tfds_data_dir),
          d.rotate_probability, d.perlin_max_scale, d.crop_size,
          d.self_source_probability, d.stroke_probability, d.keep_aspect),
      TestTransform(d.image_size, eval_size or d.image_size, categories,
                    defect_types, enlarge, d.keep_aspect),
      info={"defect_types": defect_types,
            "train_categories": train_categories})
