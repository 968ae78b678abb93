"""The inspection pipeline over a stream of photos.

localise (optional: a detection run; the best box of one class, widened)
-> gate (a thin classifier; photos scoring below its threshold stop here)
-> segment (the segmentation run with the pipeline's mask policy).
Each stage runs fixed-shape jit-compiled batches; photos that pass the
gate queue until a full segmentation batch is ready. Every stage counts the
photos it received and passed on, and the time it took.
"""
import dataclasses
import time

import numpy as np

from vq import visualize
from vq.data.formats import rle
from vq.inspection.gate import gate_scores
from vq.inspection.localise import crop_box
from vq.predict import Predictor


@dataclasses.dataclass
class StageStats:
  name: str
  images_in: int = 0
  images_out: int = 0
  seconds: float = 0.0

  def as_dict(self, total_images):
    return {"stage": self.name, "images_in": self.images_in,
            "images_out": self.images_out, "seconds": round(self.seconds, 3),
            "ms_per_image_in": round(1e3 * self.seconds /
                                     max(self.images_in, 1), 2),
            "ms_per_photo": round(1e3 * self.seconds /
                                  max(total_images, 1), 2)}


class Stage:
  """A model (task + batched predict function) run on original images."""

  def __init__(self, name, task, predict_fn, batch_size):
    self.task = task
    self.predictor = Predictor(predict_fn, batch_size)
    self.batch_size = batch_size
    self.stats = StageStats(name)

  def warm_up(self):
    """Compiles the batch shape once, outside the stage's timing."""
    self.predictor([self.task.dummy_batch(1)[0]])

  def __call__(self, images):
    """Original uint8 images -> the task's per-image outputs (numpy)."""
    start = time.perf_counter()
    outputs = []
    for i in range(0, len(images), self.batch_size):
      outputs += self.predictor([self.task.resize_input(image) for image in
                                 images[i:i + self.batch_size]])
    self.stats.seconds += time.perf_counter() - start
    self.stats.images_in += len(images)
    return outputs


@dataclasses.dataclass
class _Item:
  frame: object                   # predict.Frame
  crop: tuple = None              # (x1, y1, x2, y2) or None: whole image
  gate_score: float = None

  @property
  def view(self):
    if self.crop is None:
      return self.frame.image
    x1, y1, x2, y2 = self.crop
    return self.frame.image[y1:y2, x1:x2]


def masks_in_full_image(masks, crop, image_hw):
  """{class: RLE in the crop} -> {class: RLE in the whole image}."""
  if crop is None:
    return masks
  x1, y1, x2, y2 = crop
  full = np.zeros(image_hw, np.uint8)
  out = {}
  for name, encoded in masks.items():
    full[:] = 0
    full[y1:y2, x1:x2] = rle.decode(encoded, (y2 - y1, x2 - x1))
    out[name] = rle.encode(full)
  return out


class InspectionPipeline:
  """Stages and the gate's threshold; `run(frames)` yields (frame, record)
  as each photo is done."""

  def __init__(self, segment, gate=None, gate_threshold=None,
               normal_class="", localise=None, localise_class="",
               margin=0.1, defect_classes=()):
    self.segment, self.gate, self.localise = segment, gate, localise
    unknown = set(defect_classes) - set(segment.task.class_names)
    if unknown:
      raise ValueError(f"policy.defect_classes {sorted(unknown)} are not "
                       f"classes of the segmentation run "
                       f"{segment.task.class_names}")
    # A photo is defective when one of these has a mask (all: empty).
    self.defect_classes = set(defect_classes or segment.task.class_names)
    self.gate_threshold, self.normal_class = gate_threshold, normal_class
    self.localise_class, self.margin = localise_class, margin
    self.batch_size = segment.batch_size
    self.queue = []

  @property
  def stages(self):
    return [s for s in (self.localise, self.gate, self.segment) if s]

  def run(self, frames):
    chunk = []
    for frame in frames:
      chunk.append(_Item(frame))
      if len(chunk) == self.batch_size:
        yield from self._process(chunk)
        chunk = []
    if chunk:
      yield from self._process(chunk)
    while self.queue:
      yield from self._segment(self.queue[:self.batch_size])
      del self.queue[:self.batch_size]

  def _process(self, items):
    if self.localise:
      items, stopped = self._localise(items)
      for item in stopped:
        yield item.frame, {"stopped_by": "localise", "defective": False,
                           "masks": {}}
    if self.gate and items:
      items, stopped = self._gate(items)
      for item in stopped:
        yield item.frame, {"gate_score": item.gate_score,
                           "stopped_by": "gate", "defective": False,
                           "masks": {}}
    self.queue += items
    while len(self.queue) >= self.batch_size:
      yield from self._segment(self.queue[:self.batch_size])
      del self.queue[:self.batch_size]

  def _localise(self, items):
    outputs = self.localise([item.frame.image for item in items])
    start = time.perf_counter()
    kept, stopped = [], []
    for item, out in zip(items, outputs):
      hw = item.frame.image.shape[:2]
      item.crop = crop_box(self.localise.task.to_record(out, hw),
                           self.localise_class, self.margin, hw)
      (kept if item.crop else stopped).append(item)
    self.localise.stats.seconds += time.perf_counter() - start
    self.localise.stats.images_out += len(kept)
    return kept, stopped

  def _gate(self, items):
    outputs = self.gate([item.view for item in items])
    scores = gate_scores(self.gate.task, {
        k: np.stack([o[k] for o in outputs]) for k in outputs[0]},
        self.normal_class)
    kept, stopped = [], []
    for item, score in zip(items, scores):
      item.gate_score = round(float(score), 4)
      (kept if score >= self.gate_threshold else stopped).append(item)
    self.gate.stats.images_out += len(kept)
    return kept, stopped

  def _segment(self, items):
    outputs = self.segment([item.view for item in items])
    start = time.perf_counter()
    done = []
    for item, out in zip(items, outputs):
      view = item.view
      record = self.segment.task.to_record(out, view.shape[:2])
      masks = masks_in_full_image(record.pop("masks"), item.crop,
                                  item.frame.image.shape[:2])
      result = {"defective": bool(self.defect_classes & set(masks)),
                "masks": masks, **record}
      if item.crop is not None:
        result["crop"] = list(item.crop)
      if item.gate_score is not None:
        result["gate_score"] = item.gate_score
      done.append((item.frame, result))
    self.segment.stats.seconds += time.perf_counter() - start
    self.segment.stats.images_out += sum(r["defective"] for _, r in done)
    return done

  def draw(self, image, record):
    """The masks over the photo, the crop outlined, the verdict on top."""
    out = self.segment.task.draw(image, record)
    if "crop" in record:
      h, w = image.shape[:2]
      box = np.array([record["crop"]], np.float32) / [w, h, w, h]
      out = visualize.draw_boxes(out, box, np.array([0]),
                                 [self.localise_class],
                                 thickness=max(1, min(h, w) // 200))
    found = [n for n in record["masks"] if n in self.defect_classes]
    verdict = ("defective: " + ", ".join(found) if record["defective"] else
               f"clean ({record.get('stopped_by', 'segmentation')})")
    if record.get("gate_score") is not None:
      verdict += f" gate {record['gate_score']:.2f}"
    return visualize.caption(out, verdict)
