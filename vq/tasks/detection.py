"""Detection: a YOLOv1-style grid detector.

The model maps an image to an S x S x (B*5 + C) grid; the loss is YOLOv1's
sum-squared grid loss; evaluation decodes the grid, runs per-class NMS and
reports VOC mAP@0.5 and COCO mAP@[.5:.95] with pictures.
"""
import jax
import ml_collections
import numpy as np

from vq import config_base, losses, visualize
from vq.data import detection as detection_data
from vq.data import tfds_records
from vq.data.check import item_names
from vq.data.embedded import synthetic_parts
from vq.metrics.detection import (ImageDetections, detection_metrics,
                                  image_counts)
from vq.models.encoders import ENCODERS
from vq.models.yolo import YOLO, YOLO_V1_BACKBONE, tiny_backbone
from vq.ops.yolo import decode_scores, select_detections
from vq.tasks import encoder_weights
from vq.tasks.base import Evaluation, Task


def default_config():
  """The task's config fields and their defaults."""
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict()
  c.model.backbone = "tiny"       # tiny | yolo_v1 (the paper's 24 conv
                                  # layers) | mobilenet_v2 | efficientnet_b0
  c.model.widths = (8, 16, 32, 64, 128)  # tiny: one 3x3 conv + pool per width
  c.model.alpha = 1.0             # mobilenet_v2 width multiplier
  encoder_weights.add_config_fields(c.model)  # mobilenet_v2, efficientnet_b0
  c.model.num_boxes = 2           # B
  c.model.head = "conv"           # conv (3x3 + 1x1 per cell) | dense (the
                                  # paper) | dense_fcn (dense as convolutions)
  c.model.head_hidden = 128
  c.model.head_kernel = 3         # conv head: first layer's kernel
  c.model.grid_size = 7           # dense head: S
  c.model.dropout_rate = 0.0

  c.data = ml_collections.ConfigDict()
  tfds_records.add_config_fields(c.data)  # data.source=tfds
  c.data.source = "synthetic"     # synthetic | voc | yolo_txt | coco |
                                  # ultralytics (a data.yaml)
  c.data.class_names = synthetic_parts.CLASS_NAMES
  c.data.image_size = 96          # square model input
  c.data.train_path = ""          # voc / yolo_txt folder, coco JSON,
                                  # ultralytics data.yaml (train and val)
  c.data.eval_path = ""           # defaults to train_path (voc: other split)
  c.data.image_dir = ""           # coco: images of train_path
  c.data.eval_image_dir = ""      # coco: images of eval_path (image_dir)
  # An image an annotation names outside its dataset folder (`..`, an
  # absolute path, a symbolic link out) is refused unless this is True.
  c.data.allow_outside_paths = False
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

  c.predict = ml_collections.ConfigDict()
  c.predict.score_threshold = 0.4  # detections kept in prediction records
  return c


# Fields of config.model that only some backbones / heads use.
BACKBONE_FIELDS = {"tiny": ("widths",), "yolo_v1": (),
                   "mobilenet_v2": ("alpha",), "efficientnet_b0": ()}
HEAD_FIELDS = {"conv": ("head_kernel",), "dense": ("grid_size",),
               "dense_fcn": ("grid_size",)}


class DetectionTask(Task):
  """YOLOv1 detection: model, loss and evaluation from one config."""

  name = "detection"
  default_config = staticmethod(default_config)

  def __init__(self, config):
    super().__init__(config)
    m, d = config.model, config.data
    defaults = default_config().model
    config_base.refuse_inapplicable(m, defaults, "backbone", BACKBONE_FIELDS)
    config_base.refuse_inapplicable(m, defaults, "head", HEAD_FIELDS)
    self.class_names = tuple(d.class_names)
    self.num_classes = len(self.class_names)
    self.image_size = d.image_size
    backbone = {"tiny": tiny_backbone(tuple(m.widths)),
                "yolo_v1": YOLO_V1_BACKBONE}.get(m.backbone, m.backbone)
    self.model = YOLO(backbone=backbone, num_boxes=m.num_boxes,
                      num_classes=self.num_classes, grid_size=m.grid_size,
                      head=m.head, head_hidden=m.head_hidden,
                      head_kernel=m.head_kernel, dropout_rate=m.dropout_rate,
                      alpha=m.alpha, padding=self.padding,
                      frozen_bn_layers=self.frozen_bn_layers(),
                      depthwise=self.depthwise)
    variables = jax.eval_shape(self._init_random, jax.random.key(0))
    # The dense heads fix S; the conv head's grid is the feature map's
    # ('dense_fcn' outputs [N, 1, 1, S, S, ...] at the training size).
    self.grid_size = m.grid_size if m.head != "conv" else jax.eval_shape(
        self.model.apply, variables, self.dummy_input()).shape[1]

  @property
  def input_shape(self):
    return (self.image_size, self.image_size, 3)

  def datasets(self):
    return detection_data.datasets(self.config.data, self.grid_size)

  def encoder(self):
    m = self.config.model
    if m.backbone not in ENCODERS:
      return None
    alpha = m.alpha if m.backbone == "mobilenet_v2" else 1.0
    return encoder_weights.Encoder(m.backbone, alpha, "backbone")

  def _init_random(self, rng):
    return jax.jit(self.model.init)({"params": rng, "dropout": rng}, self.dummy_input())

  def init_variables(self, rng):
    return self.with_encoder_weights(self._init_random(rng))

  def loss(self, params, batch_stats, batch, rng):
    pred, batch_stats = self.apply_train(params, batch_stats,
                                         self.model_input(batch["image"]),
                                         {"dropout": rng})
    terms = losses.yolo_v1_loss_terms(
        pred, batch["target"], num_boxes=self.config.model.num_boxes,
        num_classes=self.num_classes, lambda_coord=self.config.loss.lambda_coord,
        lambda_noobj=self.config.loss.lambda_noobj)
    return terms["loss"], (terms, batch_stats)

  def forward(self, variables, images):
    """uint8 images -> every grid box before NMS: boxes [N, S*S*B, 4]
    (normalised x1, y1, x2, y2), scores [N, S*S*B, C] (confidence x class
    probability)."""
    pred = self.apply_model(variables, self.model_input(images), train=False)
    boxes, scores = decode_scores(pred, self.config.model.num_boxes,
                                  self.num_classes)
    return {"boxes": boxes, "scores": scores}

  def postprocess(self, outputs, images):
    """Per-class NMS (eval.* thresholds): boxes [N, D, 4], scores, classes
    (-1 on padding), num_valid."""
    del images
    e = self.config.eval
    return select_detections(outputs["boxes"], outputs["scores"],
                             score_threshold=e.score_threshold,
                             iou_threshold=e.iou_threshold,
                             max_detections=e.max_detections,
                             class_agnostic=e.class_agnostic_nms)

  def evaluate(self, results, datasets):
    """VOC and COCO mAP, AP per class, pictures and PR curves; a row per
    image: its objects found and missed, and its false detections, among
    the detections prediction keeps (predict.score_threshold)."""
    images, drawn = [], []
    for batch, out in results:
      for b in np.flatnonzero(batch["batch_mask"]):
        n = int(out["num_valid"][b])
        gt = batch["gt_classes"][b] >= 0
        images.append(ImageDetections(
            boxes=out["boxes"][b, :n], scores=out["scores"][b, :n],
            classes=out["classes"][b, :n], gt_boxes=batch["gt_boxes"][b][gt],
            gt_classes=batch["gt_classes"][b][gt],
            gt_difficult=batch["gt_difficult"][b][gt]))
        if len(drawn) < self.config.eval.num_images:
          drawn.append(self._draw_eval(batch["image"][b], images[-1]))
    m = detection_metrics(images, self.num_classes)
    scalars = {"voc_map50": m["voc_map"], "coco_map": m["coco_map"]}
    for name, ap in zip(self.class_names, m["voc_ap"]):
      scalars[f"voc_ap50/{name}"] = ap
    pictures = {"detections": np.stack(drawn)} if drawn else {}
    pictures["pr_curves"] = np.stack([
        visualize.pr_curve_image(p, r, f"{name} AP50 {ap:.3f}")
        for name, (p, r), ap in zip(self.class_names, m["pr_curves"],
                                    m["voc_ap"])])
    rows = tuple(
        {"file": name, **image_counts(image, self.num_classes,
                                      self.config.predict.score_threshold)}
        for name, image in zip(item_names(self.eval_source(datasets)),
                               images, strict=True))
    return Evaluation(scalars, pictures, rows)

  def _draw_eval(self, image, det, scale=2, min_score=0.3):
    """Predictions (solid, score >= min_score) over ground truth (dashed)."""
    big = np.kron(image, np.ones((scale, scale, 1), np.uint8))
    big = visualize.draw_boxes(big, det.gt_boxes, det.gt_classes,
                               self.class_names, dashed=True)
    keep = det.scores >= min_score
    return visualize.draw_boxes(big, det.boxes[keep], det.classes[keep],
                                self.class_names, scores=det.scores[keep])

  def to_record(self, outputs, image_hw):
    """{'detections': [{class, score, box: [x1, y1, x2, y2] pixels}]} with
    score >= predict.score_threshold, best first."""
    h, w = image_hw
    n = int(outputs["num_valid"])
    keep = [i for i in range(n) if outputs["scores"][i] >=
            self.config.predict.score_threshold]
    scale = np.array([w, h, w, h], np.float64)
    return {"detections": [
        {"class": self.class_names[int(outputs["classes"][i])],
         "score": round(float(outputs["scores"][i]), 4),
         "box": [round(float(v), 1) for v in outputs["boxes"][i] * scale]}
        for i in keep]}

  def draw(self, image, record):
    h, w = image.shape[:2]
    dets = record["detections"]
    boxes = np.array([d["box"] for d in dets], np.float64).reshape(-1, 4)
    return visualize.draw_boxes(
        image, boxes / np.array([w, h, w, h]),
        [self.class_names.index(d["class"]) for d in dets], self.class_names,
        scores=[d["score"] for d in dets], thickness=max(1, min(h, w) // 200))
