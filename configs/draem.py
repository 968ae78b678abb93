r"""Surface anomaly detection from normal images only: memories of the
training images (the default) or DRAEM's networks.

  python -m vq.main --config=configs/draem.py --workdir=/tmp/vq/draem

By default the three embedded texture categories (brick, grass, gravel
photographs shipped with scikit-image, with drawn test defects), each
scored by the memory its validation half chooses; under the network
scorings one DRAEM model learns them all. Metrics are reported per
category and averaged.

Arguments (after the colon, comma-separated):
  category=brick     one category (embedded, or MVTec AD's with
                     data.source=mvtec, data.path=ROOT, e.g. category=carpet).
  colour=1           the colour-distribution loss (histogram, 1/PSNR, mean
                     colour; weights 0.1, 0.2, 0.1); with a scoring that
                     reads the networks' map (fused, baseline, filtered).
  scoring=auto       (the default; variant=full: baseline, as published)
                     no network: each category scored by the memory
                     recipe whose map has the higher pixel AUROC on its
                     validation half (the half that sets the threshold):
                     `gabor` (scoring=memory below) or `patchcore` (below);
                     both are reported (eval.candidates; prediction and
                     export use the category's choice, so they need
                     --category).
  scoring=fused      the texture memory's map (below) plus DRAEM's
                     where it rises above its normal level, each divided
                     by its 0.99 quantile on 16 normal training images
                     per category. Images are scored at 128x128: the
                     networks see them shrunk to 64x64, their map is
                     enlarged back.
  scoring=patchcore  no network: PatchCore's recipe, a memory of the
                     training images' patch features from ImageNet
                     EfficientNet-Lite0 (stages at strides 8 and 16,
                     3x3-averaged; photographs of many shapes each
                     scaled to short side 192, the long side a multiple
                     of 32, so they show one scale of the surface;
                     thinned to 10 % by the greedy coreset); the map is
                     each patch's distance to the nearest, enlarged and
                     blurred (sigma 12 px), divided near the edges by its
                     level on 16 reference images; image score = its
                     maximum. Photographs are letterboxed into 256x256
                     first, or, when they share one shape (a fixed
                     camera's), into about as many pixels at their
                     width / height (eval.memory.aspect_ratio=0).
  scoring=baseline   DRAEM's map, image score = max of its 11x11 mean.
  scoring=filtered   filtered anomaly map (Laplacian sharpening 3 and 5),
                     image score = max at stride 4; scoring=filtered_ratio:
                     max / min of it. scoring=memory: no network, a
                     texture memory of the training images (local
                     Gabor-energy descriptors at wavelengths 2, 4 and 8
                     pixels of 128x128; the map is each pixel's
                     distance to the nearest normal one, divided near
                     the edges by its level on 16 reference images).
                     The scorings without a network (auto, memory,
                     patchcore) train no step (num_train_steps=0).
  variant=full       the published recipe: widths 128 / 64 at 256x256,
                     batch 8, 700 epochs' worth of steps of a category,
                     Perlin anomalies only (no strokes).
  variant=test       a few steps at 32x32 for tests (texture memory at
                     32x32 of 8 images, 4 references per category).
"""
import ml_collections

from vq import config_base
from vq.data.embedded import embedded_textures
from vq.tasks import anomaly


def get_config(arg=None):
  args = config_base.parse_arg(arg, variant=("default", "full", "test"),
                              category="all", colour=False,
                              scoring=("default", "auto", "fused",
                                       "baseline", "filtered",
                                       "filtered_ratio", "memory",
                                       "patchcore"))
  c = config_base.trainer_config()
  c.update(anomaly.default_config())
  c.task = "anomaly"
  c.data.categories = (embedded_textures.CATEGORIES if args.category == "all"
                       else (args.category,))
  c.loss.colour = args.colour
  c.eval.scoring = {"default": "auto", "patchcore": "memory"}.get(
      args.scoring, args.scoring)
  c.model.reconstructive_width = 16
  c.model.discriminative_width = 24
  c.data.image_size = 64
  c.data.perlin_max_scale = 4
  c.data.stroke_probability = 0.3  # scratch-like anomalies (CutPaste's scar)
  c.eval.baseline_window = 11
  # The memory scores images at twice the networks' side, where defects a
  # few pixels wide keep their fine detail.
  c.eval.memory.image_size = 128
  c.eval.memory.wavelengths = (2.0, 4.0, 8.0)
  c.eval.memory.sigma = 2.0
  c.eval.memory.stride = 4
  c.eval.memory.map_stride = 2
  c.eval_batch_size = 32
  # One evaluation, at the end: on 2 CPU cores the first one (the texture
  # memory's maps of the test images) costs about 90 s of the run's 15
  # minutes, and a midway one changed no figure on any set measured. 1800
  # steps (0.32-0.37 s each) keep a real-photo run of five categories
  # inside 15 minutes on the machine's slower hours; 2200 did not.
  config_base.set_run(c, batch_size=8, num_train_steps=1800,
                      best_metric="image_auroc", evaluations=1,
                      learning_rate=1e-3, warmup_steps=50)

  if args.variant == "full":
    c.model.reconstructive_width = 128
    c.model.discriminative_width = 64
    c.data.image_size = 256
    c.data.perlin_max_scale = 5
    c.data.stroke_probability = 0.0
    c.eval.memory.image_size = 0  # the networks' 256
    if args.scoring == "default":
      c.eval.scoring = "baseline"
    c.eval.baseline_window = 21
    c.eval.score_window = 32
    c.eval.score_stride = 4
    c.num_train_steps = 700 * 250 // 8
    c.eval_every_steps = 5000
    c.checkpoint_every_steps = 5000
    c.optimizer.learning_rate = 1e-4
    c.optimizer.schedule = "step"
    c.optimizer.step_boundaries = (0.8, 0.9)
    c.optimizer.step_factor = 0.2
    c.optimizer.warmup_steps = 0
  elif args.variant == "test":
    c.model.reconstructive_width = 4
    c.model.discriminative_width = 4
    c.data.image_size = 32
    c.eval.baseline_window = 5
    c.eval.memory.image_size = 0
    c.eval.memory.images = 8
    c.eval.reference_images = 4
    config_base.few_step_run(c)
    c.eval_batch_size = 16
  patchcore = patchcore_fields(args.variant)
  if args.scoring == "patchcore":
    c.update(patchcore)
  if c.eval.scoring == "auto":
    c.eval.candidates = ml_collections.ConfigDict(
        {"gabor": {}, "patchcore": patchcore})
  if c.eval.scoring in ("auto", "memory"):
    # Scored at the training photographs' width / height when they share
    # one (a fixed camera's), at about as many pixels; square otherwise.
    c.eval.memory.aspect_ratio = 0.0
    if args.colour:
      raise config_base.ConfigError(
          f"colour=1 changes how DRAEM's networks train, and "
          f"eval.scoring={c.eval.scoring} trains none: add a scoring that "
          "reads their map (scoring=fused, baseline, filtered or "
          "filtered_ratio)")
    c.num_train_steps = 0  # the initial state evaluated and saved
  return c


def patchcore_fields(variant):
  """The ImageNet patch memory's settings (scoring=patchcore). Measured on
  the magnetic tiles (docs/benchmarks.md): each tile's pixels of its
  256x256 letterbox scaled to short side 192, a 10 % coreset and a blur
  of 12 px give image / pixel AUROC 0.958 / 0.904; the letterbox as it is
  0.950 / 0.911, stretched tiles (3 %, 8 px) 0.953 / 0.870."""
  memory = dict(features="efficientnet_lite0", stride=1, map_stride=1,
                images=100_000, coreset=0.1, blur=12.0, window=1)
  if variant != "test":
    memory.update(image_size=256, short_side=192)
  return {"data": {"keep_aspect": True},
          "eval": {"scoring": "memory", "memory": memory}}
