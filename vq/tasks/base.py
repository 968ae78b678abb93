"""The task contract: what the trainer, prediction, evaluation and export may
rely on. Every task in vq.tasks.TASKS implements all of it.

A task is built from a config and does no disk I/O in its constructor: only
`datasets()` reads or writes files (and `init_variables` the weights file a
config names; the constructor reads a named vq workdir's config.json for the
conventions its weights bring). Batches are dicts of arrays; images are
uint8 [N, H, W, C] at the model's input size; the trainer adds `batch_mask`
(False on evaluation padding).
"""
import abc
from typing import NamedTuple

import jax.numpy as jnp

from vq import config_base, mixed_precision
from vq.data.augment.geometry import affine_matrix, warp_image
from vq.data.augment.preprocess import to_grayscale
from vq.data.sources import Datasets
from vq.models import preprocessing
from vq.models.layers import DEPTHWISE
from vq.models.pretrained import frozen_bn_layers
from vq.tasks import encoder_weights


class Evaluation(NamedTuple):
  """What `Task.evaluate` returns: scalars, pictures ([N, H, W, 3] uint8
  by name), and one JSON-able row per evaluated image (its file or record
  and how it fared)."""
  scalars: dict
  pictures: dict
  per_image: tuple


class Task(abc.ABC):
  """One model family: model, data seam, loss, evaluation and inference."""

  name: str                       # the config's `task` value
  class_names: tuple              # what the outputs name (classes, keypoints)

  def __init__(self, config):
    self.config = config
    self.calibration = {}         # decision settings that `to_record` applies
    # What the weights expect ('auto' resolved from `model.backbone_weights`).
    self.input_scaling, self.padding = encoder_weights.conventions(
        config.model, self.encoder())
    self.compute_dtype = mixed_precision.compute_dtype(
        config.get("compute_dtype", "auto"))
    self.depthwise = config.model.get("depthwise", "auto")
    config_base.check_choice("model.depthwise", self.depthwise, DEPTHWISE)

  def encoder(self):
    """The model's pretrainable encoder (`encoder_weights.Encoder`), which
    `model.backbone_weights` can start from; None when it has none."""
    return None

  def with_encoder_weights(self, variables):
    """Freshly initialised variables -> the same with the encoder's from
    `model.backbone_weights` (unchanged without)."""
    return encoder_weights.with_weights(variables, self.config.model,
                                        self.encoder())

  def frozen_bn_layers(self):
    """The encoder's BatchNorm layers a `config.freeze` pattern matches
    (their scale): a frozen encoder keeps its running statistics too."""
    encoder = self.encoder()
    if encoder is None or not self.config.get("freeze"):
      return frozenset()
    return frozen_bn_layers(encoder.architecture, encoder.alpha,
                            encoder.module_path, tuple(self.config.freeze))

  def calibrate(self, scalars):
    """The evaluation scalars of the checkpoint's step -> the decision
    settings (`self.calibration`) prediction applies; none by default."""
    del scalars
    return {}

  # The config fields an evaluation (`vq.evaluate`) may change and still
  # calibrate prediction (`--calibration`): they move the decision, not the
  # scores it is applied to.
  calibration_fields = ()

  # Whether `postprocess` reads the run's training images (a memory of
  # them); such a StableHLO export compiles them in for one category.
  needs_training_images = False
  # Whether `resize_input` gives each photograph its own shape (`predict`
  # batches by shape); a StableHLO export then takes one `photo_shape`'s.
  scores_own_shape = False
  photo_shape = None

  def select_category(self, category):
    """The category prediction decides for (`vq.predict --category`); only
    anomaly runs, trained on several categories, have one to choose."""
    if category:
      raise ValueError(f"--category applies to anomaly runs, not {self.name}")

  @staticmethod
  @abc.abstractmethod
  def default_config():
    """The task's config fields (model, data, loss, eval) with defaults."""

  @property
  @abc.abstractmethod
  def input_shape(self):
    """(height, width, channels) of the model input."""

  @abc.abstractmethod
  def datasets(self) -> Datasets:
    """Train and eval sources with their transforms (reads the disk)."""

  @abc.abstractmethod
  def init_variables(self, rng):
    """The model's variables: {'params': ..., 'batch_stats': ...}."""

  @abc.abstractmethod
  def loss(self, params, batch_stats, batch, rng):
    """Pure: -> (loss, (dict of loss terms incl. 'loss', new batch_stats))."""

  @abc.abstractmethod
  def forward(self, variables, images):
    """Jit-able and exportable: uint8 images [N, H, W, C] of the input size
    -> the model's outputs before data-dependent post-processing (NMS, mask
    policy, scoring), a dict of arrays with a leading batch axis."""

  def postprocess(self, outputs, images):
    """Jit-able: `forward` outputs (and the input images) -> `predict`
    outputs. By default nothing to do."""
    del images
    return outputs

  def predict(self, variables, images):
    """Jit-able: uint8 images of the input size -> the task's results."""
    return self.postprocess(self.forward(variables, images), images)

  def eval_step(self, variables, batch):
    """Jit-able: what `evaluate` needs from one batch (default: predict)."""
    return self.predict(variables, batch["image"])

  def use_workdir(self, workdir):
    """Where the task may keep what it derives from a run's data between
    the run's tools (training, evaluation, prediction, export); by default
    it keeps nothing."""
    del workdir

  def eval_source(self, datasets):
    """The records `eval_step` runs over (default: the held-out split)."""
    return datasets.eval

  @abc.abstractmethod
  def evaluate(self, results, datasets):
    """[(host batch, host eval_step outputs)] -> `Evaluation`."""

  @abc.abstractmethod
  def to_record(self, outputs, image_hw):
    """One image's `predict` outputs (numpy, no batch axis) -> a JSON-able
    dict in the coordinates of the original (height, width) image."""

  @abc.abstractmethod
  def draw(self, image, record):
    """`record` drawn over the original uint8 RGB image."""

  def resize_input(self, image):
    """One original uint8 RGB image -> the model's input size and channels
    (the resize the evaluation transform applies)."""
    h, w, channels = self.input_shape
    out = self.fit_image(image, (h, w))
    return to_grayscale(out) if channels == 1 else out

  def fit_image(self, image, hw):
    """An original image resized to the model's (height, width): here
    stretched, averaged by area when it shrinks."""
    return warp_image(image, affine_matrix(image.shape[:2], hw), hw,
                      average_shrink=True)

  def apply_model(self, variables, inputs, **kwargs):
    """`self.model.apply` in `config.compute_dtype` (vq.mixed_precision):
    float32 outputs."""
    return mixed_precision.apply(self.model, variables, inputs,
                                 self.compute_dtype, **kwargs)

  def apply_train(self, params, batch_stats, inputs, rngs=None):
    """Training-mode forward pass: (outputs, updated batch_stats)."""
    out, updates = self.apply_model(
        {"params": params, "batch_stats": batch_stats}, inputs, train=True,
        mutable=["batch_stats"], rngs=rngs)
    return out, updates["batch_stats"]

  def model_input(self, images):
    """uint8 images -> the float input the model's weights expect
    (`model.input_scaling`)."""
    return preprocessing.scale_images(images, self.input_scaling)

  def dummy_input(self):
    return jnp.zeros((1, *self.input_shape), jnp.float32)

  def dummy_batch(self, batch_size=2):
    """Zero images of the input size (no disk): for shapes and tests."""
    return jnp.zeros((batch_size, *self.input_shape), jnp.uint8)


