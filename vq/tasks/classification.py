"""Image classification with MobileNetV2 or EfficientNet-B0.

Embedded single machine parts (pre-training a backbone with no download,
named by another config's `model.backbone_weights`), embedded car panels
labelled clean / damaged (the inspection pipeline's gate), or real images in
the image-folder layout (vq/data/formats/image_folder.py).
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vq import config_base, visualize
from vq.data import classification as classification_data
from vq.data import tfds_records
from vq.data.check import item_names
from vq.data.embedded import synthetic_parts
from vq.models.efficientnet import EfficientNetB0
from vq.models.mobilenet_v2 import MobileNetV2
from vq.tasks import encoder_weights
from vq.tasks.base import Evaluation, Task


def default_config():
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict()
  c.model.architecture = "mobilenet_v2"  # mobilenet_v2 | efficientnet_b0
  c.model.alpha = 0.35            # mobilenet_v2 width multiplier
  encoder_weights.add_config_fields(c.model)
  c.data = ml_collections.ConfigDict()
  tfds_records.add_config_fields(c.data)  # data.source=tfds
  c.data.source = "synthetic"    # synthetic | synthetic_car | image_folder
  c.data.class_names = synthetic_parts.CLASS_NAMES
  c.data.image_size = 96
  c.data.path = ""                # image_folder: root/[split/]<class>/*.jpg
  c.data.eval_split = "val"       # image_folder with split folders
  c.data.validation_fraction = 0.2  # image_folder without split folders
  c.data.split_seed = 0
  c.data.synthetic_train_size = 20000
  c.data.synthetic_eval_size = 512
  c.data.synthetic_seed = 10
  c.data.part_min_size = 0.45     # part size, fraction of the image side
  c.data.part_max_size = 0.8
  c.data.augment = ml_collections.ConfigDict()
  c.data.augment.scale = 0.15
  c.data.augment.flip = True
  c.data.augment.brightness = 20.0
  c.data.augment.contrast = 0.2
  return c


# Fields of config.model each architecture uses.
ARCHITECTURE_FIELDS = {"mobilenet_v2": ("alpha",), "efficientnet_b0": ()}


class ClassificationTask(Task):
  """Classification: MobileNetV2 or EfficientNet-B0 with its classifier,
  accuracy."""

  name = "classification"
  default_config = staticmethod(default_config)

  def __init__(self, config):
    super().__init__(config)
    self.image_size = config.data.image_size
    self.class_names = tuple(config.data.class_names)
    m = config.model
    config_base.refuse_inapplicable(m, default_config().model, "architecture",
                                    ARCHITECTURE_FIELDS)
    common = dict(num_classes=len(self.class_names), padding=self.padding,
                  frozen_bn_layers=self.frozen_bn_layers(),
                  depthwise=self.depthwise)
    self.model = (MobileNetV2(alpha=m.alpha, **common)
                  if m.architecture == "mobilenet_v2" else
                  EfficientNetB0(**common))

  def encoder(self):
    m = self.config.model
    return encoder_weights.Encoder(
        m.architecture, m.alpha if m.architecture == "mobilenet_v2" else 1.0,
        "")

  @property
  def input_shape(self):
    return (self.image_size, self.image_size, 3)

  def datasets(self):
    return classification_data.datasets(self.config.data)

  def init_variables(self, rng):
    return self.with_encoder_weights(
        jax.jit(self.model.init)({"params": rng, "dropout": rng}, self.dummy_input()))

  def loss(self, params, batch_stats, batch, rng):
    logits, batch_stats = self.apply_train(params, batch_stats,
                                           self.model_input(batch["image"]),
                                           {"dropout": rng})
    loss = optax.softmax_cross_entropy_with_integer_labels(
        logits, batch["label"]).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
    return loss, ({"loss": loss, "accuracy": accuracy}, batch_stats)

  def forward(self, variables, images):
    """uint8 images -> {'logits' [N, C], 'probs' [N, C], 'label' [N]}."""
    logits = self.apply_model(variables, self.model_input(images),
                              train=False)
    return {"logits": logits, "probs": jax.nn.softmax(logits),
            "label": jnp.argmax(logits, -1)}

  def evaluate(self, results, datasets):
    """Accuracy; per image its true class, the predicted class and its
    probability (as prediction names them), and whether they agree."""
    truth = np.concatenate([b["label"][b["batch_mask"]] for b, _ in results])
    predicted, probs = (np.concatenate([o[k][b["batch_mask"]]
                                        for b, o in results])
                        for k in ("label", "probs"))
    names = item_names(self.eval_source(datasets))
    rows = tuple(
        {"file": name, "label": self.class_names[t],
         "class": self.class_names[p], "score": float(probs[i, p]),
         "correct": bool(t == p)}
        for i, (name, t, p) in enumerate(zip(names, truth, predicted,
                                             strict=True)))
    return Evaluation({"accuracy": float(np.mean(truth == predicted))}, {},
                      rows)

  def to_record(self, outputs, image_hw):
    """{'class', 'score', 'probabilities': {class: p}}."""
    del image_hw
    label = int(outputs["label"])
    return {"class": self.class_names[label],
            "score": round(float(outputs["probs"][label]), 4),
            "probabilities": {n: round(float(p), 4) for n, p in
                              zip(self.class_names, outputs["probs"])}}

  def draw(self, image, record):
    return visualize.caption(image, f"{record['class']} {record['score']:.2f}")
