"""Detection: a YOLOv1-style grid detector.

The model maps an image to an S x S x (B*5 + C) grid; the loss is YOLOv1's
sum-squared grid loss; evaluation decodes the grid, runs per-class NMS and
reports VOC mAP@0.5 and COCO mAP@[.5:.95] with pictures.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vq import losses, visualize
from vq.data import synthetic_parts
from vq.data.box_augment import resize_and_augment
from vq.data.sources import AnnotatedImages, GeneratedSource
from vq.data.voc import read_voc
from vq.data.yolo_txt import read_yolo_txt
from vq.metrics.detection import ImageDetections, detection_metrics
from vq.models.yolo import YOLO, YOLO_V1_BACKBONE, tiny_backbone
from vq.ops.yolo import postprocess
from vq.tasks.common import apply_train, float_images


def default_config():
  """The task's config fields and their defaults."""
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict()
  c.model.backbone = "tiny"       # tiny | yolo_v1 (the paper's 24 conv layers)
  c.model.widths = (8, 16, 32, 64, 128)  # tiny: one 3x3 conv + pool per width
  c.model.num_boxes = 2           # B
  c.model.head = "conv"           # conv (FCN view) | dense (the paper)
  c.model.head_hidden = 128
  c.model.head_kernel = 3         # conv head: first layer's kernel
  c.model.grid_size = 7           # dense head: S
  c.model.dropout_rate = 0.0

  c.data = ml_collections.ConfigDict()
  c.data.source = "synthetic"     # synthetic | voc | yolo_txt
  c.data.class_names = synthetic_parts.CLASS_NAMES
  c.data.image_size = 96          # square model input
  c.data.train_path = ""          # voc / yolo_txt folder
  c.data.eval_path = ""           # defaults to train_path (voc: other split)
  c.data.train_split = "trainval"  # voc: ImageSets/Main/<split>.txt
  c.data.eval_split = "test"
  c.data.synthetic_train_size = 20000
  c.data.synthetic_eval_size = 256
  c.data.synthetic_seed = 0       # the held-out split uses seed + 1
  c.data.max_boxes = 32           # ground truth kept per eval image
  c.data.augment = ml_collections.ConfigDict()
  c.data.augment.scale = 0.2      # scale in [1 - s, 1 + s]
  c.data.augment.shift = 0.1      # shift in [-s, s] of the image per axis
  c.data.augment.flip = True
  c.data.augment.brightness = 20.0  # grey levels
  c.data.augment.contrast = 0.2

  c.loss = ml_collections.ConfigDict()
  c.loss.lambda_coord = 5.0
  c.loss.lambda_noobj = 0.5

  c.eval = ml_collections.ConfigDict()
  c.eval.score_threshold = 0.01   # low for mAP; inference defaults to 0.4
  c.eval.iou_threshold = 0.5      # NMS: suppress IoU > this
  c.eval.max_detections = 100
  c.eval.class_agnostic_nms = False
  c.eval.num_images = 8           # drawn to TensorBoard
  return c


def encode_targets(boxes, classes, grid_size, num_classes):
  """Ground-truth boxes -> [S, S, 5 + C] YOLO target grid.

  The cell holding a box's centre is responsible for it; when two centres
  share a cell the larger box is kept.
  """
  s = grid_size
  target = np.zeros((s, s, 5 + num_classes), np.float32)
  kept_area = np.zeros((s, s), np.float32)
  for (x1, y1, x2, y2), c in zip(boxes, classes):
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    j, i = min(int(cx * s), s - 1), min(int(cy * s), s - 1)
    if target[i, j, 4] and w * h <= kept_area[i, j]:
      continue
    kept_area[i, j] = w * h
    target[i, j, :5] = (cx * s - j, cy * s - i, w, h, 1.0)
    target[i, j, 5:] = 0.0
    target[i, j, 5 + c] = 1.0
  return target


class DetectionTask:
  """YOLOv1 detection: model, loss, data and evaluation from one config."""

  name = "detection"
  default_config = staticmethod(default_config)

  def __init__(self, config):
    self.config = config
    m, d = config.model, config.data
    self.class_names = tuple(d.class_names)
    self.num_classes = len(self.class_names)
    self.image_size = d.image_size
    if m.backbone == "tiny":
      backbone = tiny_backbone(tuple(m.widths))
    elif m.backbone == "yolo_v1":
      backbone = YOLO_V1_BACKBONE
    else:
      raise ValueError(f"model.backbone must be 'tiny' or 'yolo_v1', got "
                       f"{m.backbone!r}")
    self.model = YOLO(backbone=backbone, num_boxes=m.num_boxes,
                      num_classes=self.num_classes, grid_size=m.grid_size,
                      head=m.head, head_hidden=m.head_hidden,
                      head_kernel=m.head_kernel, dropout_rate=m.dropout_rate)
    out = jax.eval_shape(lambda x: self.model.init(jax.random.key(0), x),
                         self.dummy_input())
    grid = jax.eval_shape(
        lambda v, x: self.model.apply(v, x), out, self.dummy_input()).shape
    self.grid_size = grid[1]
    self._train_records, self._eval_records = self._read_annotations()

  def dummy_input(self):
    return jnp.zeros((1, self.image_size, self.image_size, 3), jnp.float32)

  def init_variables(self, rng):
    return self.model.init({"params": rng, "dropout": rng}, self.dummy_input())

  # Data ---------------------------------------------------------------------

  def _read_annotations(self):
    d = self.config.data
    if d.source == "synthetic":
      return None, None
    if not d.train_path:
      raise ValueError(f"data.train_path is required for data.source="
                       f"{d.source!r}")
    eval_path = d.eval_path or d.train_path
    if d.source == "voc":
      return (read_voc(d.train_path, self.class_names, d.train_split),
              read_voc(eval_path, self.class_names, d.eval_split))
    if d.source == "yolo_txt":
      return (read_yolo_txt(d.train_path, self.num_classes),
              read_yolo_txt(eval_path, self.num_classes))
    raise ValueError(f"data.source must be synthetic, voc or yolo_txt; got "
                     f"{d.source!r}")

  def train_source(self):
    d = self.config.data
    if self._train_records is None:
      return GeneratedSource(synthetic_parts.generate, d.synthetic_train_size,
                             d.synthetic_seed, self.image_size)
    return AnnotatedImages(self._train_records)

  def eval_source(self):
    d = self.config.data
    if self._eval_records is None:
      return GeneratedSource(synthetic_parts.generate, d.synthetic_eval_size,
                             d.synthetic_seed + 1, self.image_size)
    return AnnotatedImages(self._eval_records)

  def train_transform(self, record, rng):
    a = self.config.data.augment
    r = resize_and_augment(record, self.image_size, rng, scale_range=a.scale,
                           shift_range=a.shift, flip=a.flip,
                           brightness=a.brightness, contrast=a.contrast)
    return {"image": r["image"],
            "target": encode_targets(r["boxes"], r["classes"], self.grid_size,
                                     self.num_classes)}

  def eval_transform(self, record):
    r = resize_and_augment(record, self.image_size)
    n = self.config.data.max_boxes
    k = min(len(r["boxes"]), n)
    boxes = np.zeros((n, 4), np.float32)
    classes = np.full(n, -1, np.int32)
    difficult = np.zeros(n, bool)
    boxes[:k], classes[:k] = r["boxes"][:k], r["classes"][:k]
    if "difficult" in r:
      difficult[:k] = r["difficult"][:k]
    return {"image": r["image"], "gt_boxes": boxes, "gt_classes": classes,
            "gt_difficult": difficult}

  # Model, loss, evaluation --------------------------------------------------

  def loss(self, params, batch_stats, batch, rng):
    """(params, batch_stats, batch, rng) -> (loss, (terms, new batch_stats))."""
    pred, batch_stats = apply_train(self.model, params, batch_stats,
                                    float_images(batch), {"dropout": rng})
    terms = losses.yolo_v1_loss_terms(
        pred, batch["target"], num_boxes=self.config.model.num_boxes,
        num_classes=self.num_classes, lambda_coord=self.config.loss.lambda_coord,
        lambda_noobj=self.config.loss.lambda_noobj)
    return terms["loss"], (terms, batch_stats)

  def predict(self, variables, images, **postprocess_kwargs):
    """uint8 or [0, 1] float NHWC images -> batched detections."""
    if images.dtype == jnp.uint8:
      images = images.astype(jnp.float32) / 255.0
    pred = self.model.apply(variables, images, train=False)
    return postprocess(pred, num_boxes=self.config.model.num_boxes,
                       num_classes=self.num_classes, **postprocess_kwargs)

  def eval_step(self, variables, batch):
    e = self.config.eval
    return self.predict(variables, batch["image"],
                        score_threshold=e.score_threshold,
                        iou_threshold=e.iou_threshold,
                        max_detections=e.max_detections,
                        class_agnostic=e.class_agnostic_nms)

  def evaluate(self, results):
    """[(host batch, host eval_step outputs)] -> (scalars, images)."""
    images, drawn = [], []
    for batch, out in results:
      for b in np.flatnonzero(batch["mask"]):
        n = int(out["num_valid"][b])
        gt = batch["gt_classes"][b] >= 0
        images.append(ImageDetections(
            boxes=out["boxes"][b, :n], scores=out["scores"][b, :n],
            classes=out["classes"][b, :n], gt_boxes=batch["gt_boxes"][b][gt],
            gt_classes=batch["gt_classes"][b][gt],
            gt_difficult=batch["gt_difficult"][b][gt]))
        if len(drawn) < self.config.eval.num_images:
          drawn.append(self._draw(batch["image"][b], images[-1]))
    m = detection_metrics(images, self.num_classes)
    scalars = {"voc_map50": m["voc_map"], "coco_map": m["coco_map"]}
    for name, ap in zip(self.class_names, m["voc_ap"]):
      scalars[f"voc_ap50/{name}"] = ap
    pictures = {"detections": np.stack(drawn)} if drawn else {}
    pictures["pr_curves"] = np.stack([
        visualize.pr_curve_image(p, r, f"{name} AP50 {ap:.3f}")
        for name, (p, r), ap in zip(self.class_names, m["pr_curves"],
                                    m["voc_ap"])])
    return scalars, pictures

  def _draw(self, image, det, scale=2, min_score=0.3):
    """Predictions (solid, score >= min_score) over ground truth (dashed)."""
    big = np.kron(image, np.ones((scale, scale, 1), np.uint8))
    big = visualize.draw_boxes(big, det.gt_boxes, det.gt_classes,
                               self.class_names, dashed=True)
    keep = det.scores >= min_score
    return visualize.draw_boxes(big, det.boxes[keep], det.classes[keep],
                                self.class_names, scores=det.scores[keep])
