r"""A trained run as a deployable file: ONNX or serialised StableHLO.

  python -m vq.export --workdir=RUN --format=onnx --output=model.onnx
  python -m vq.export --workdir=RUN --format=stablehlo --output=model.stablehlo
  python -m vq.export --workdir=RUN --format=stablehlo --category=wood ...

ONNX (through jax2onnx) holds the task's `forward`: the network and its
activations up to the data-dependent post-processing (NMS, mask policy,
anomaly scoring), which a server runs itself. StableHLO (`jax.export`)
holds the whole `predict`, post-processing included. Both take uint8 NHWC
images of the run's input size with any batch size, carry the weights, and
carry what a server needs (task, input size, scaling, class names,
thresholds): ONNX in its metadata properties (`vq` key, JSON), StableHLO in
OUTPUT.json beside it. An anomaly run scored with a texture memory
(eval.scoring=auto, memory or fused) exports to StableHLO for one `--category`,
whose memory (the one its evaluation kept in WORKDIR/memories/) is compiled
in; a fused run's ONNX file holds the networks, and prediction builds the
memory from the run's training images. A memory that scores each
photograph at its own shape (eval.memory.short_side) is exported for the
photographs of one shape, a line camera's: --photo_shape=HEIGHTxWIDTH.
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from absl import flags  # noqa: E402

from vq import runs  # noqa: E402
from vq.cli import run, tool  # noqa: E402
from vq.models import preprocessing  # noqa: E402

FORMATS = ("onnx", "stablehlo")


def metadata(task, step, fmt):
  """What a server needs to feed the model and read its outputs."""
  h, w, c = task.input_shape
  category = getattr(task, "category", None)
  return {"task": task.name, "format": fmt, "step": int(step),
          **({"category": category} if category else {}),
          "input": {"shape": ["batch", h, w, c], "dtype": "uint8",
                    "layout": "NHWC", "channels": "RGB",
                    "model_input": preprocessing.DESCRIPTIONS[
                        task.input_scaling]},
          "class_names": list(task.class_names),
          "outputs": "forward" if fmt == "onnx" else "predict",
          "calibration": task.calibration,
          "settings": json.loads(task.config.to_json_best_effort())}


def export_onnx(task, variables):
  """task.forward with the weights inside, batch dimension 'batch'."""
  from jax2onnx import to_onnx  # pylint: disable=g-import-not-at-top
  batch, = jax.export.symbolic_shape("batch")
  spec = jax.ShapeDtypeStruct((batch, *task.input_shape), jnp.uint8)
  names = sorted(jax.eval_shape(task.forward, variables, spec))
  return to_onnx(lambda images: task.forward(variables, images), [spec],
                 input_names=["images"], output_names=names,
                 model_name=f"vq_{task.name}")


def export_stablehlo(task, variables):
  """task.predict with the weights inside, symbolic batch dimension."""
  batch, = jax.export.symbolic_shape("batch")
  exported = jax.export.export(jax.jit(
      lambda images: task.predict(variables, images)))(
          jax.ShapeDtypeStruct((batch, *task.input_shape), jnp.uint8))
  return exported.serialize()


def export_run(workdir, fmt, output, step="best", category="",
               calibration="", photo_shape=None):
  """Writes the export (and for StableHLO its JSON); returns metadata.
  `category`: an anomaly run's category to decide for (and, for a texture
  memory scoring's StableHLO file, the memory to compile in).
  `calibration`: the run's evaluation whose thresholds it carries.
  `photo_shape`: (height, width) of the photographs a memory scored at
  each photograph's own shape (eval.memory.short_side) is exported for."""
  if fmt not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
  _, task, variables, step = runs.load_run(workdir, step,
                                           calibration=calibration)
  if fmt == "stablehlo" and task.needs_training_images and not category:
    raise ValueError(
        f"{workdir}: eval.scoring={task.config.eval.scoring} compiles a "
        "category's texture memory into the StableHLO file: name it with "
        f"--category (one of {', '.join(task.class_names)})")
  if fmt == "onnx" and not getattr(task, "runs_network", True):
    raise ValueError(
        f"{workdir}: eval.scoring={task.config.eval.scoring} runs no "
        "network, so an ONNX file would hold nothing: export the category's "
        "memory with --format=stablehlo --category=NAME, or predict from the "
        "run (--workdir)")
  if fmt == "onnx":  # the networks only: prediction builds any memory
    task.needs_training_images = False
  task.select_category(category)
  if task.scores_own_shape and not photo_shape:
    raise ValueError(
        f"{workdir}: eval.memory.short_side scores each photograph at its "
        "own shape, and a StableHLO file takes one: name the shape of the "
        "photographs it will score with --photo_shape=HEIGHTxWIDTH (e.g. "
        "460x1130)")
  if photo_shape and not task.scores_own_shape:
    raise ValueError(
        f"{workdir}: --photo_shape applies to runs that score each "
        "photograph at its own shape (eval.memory.short_side); this one "
        f"takes images of {task.input_shape[0]}x{task.input_shape[1]}")
  task.photo_shape = tuple(photo_shape) if photo_shape else None
  meta = metadata(task, step, fmt)
  if task.photo_shape:
    meta["input"]["photo_shape"] = list(task.photo_shape)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  if fmt == "onnx":
    model = export_onnx(task, variables)
    entry = model.metadata_props.add()
    entry.key, entry.value = "vq", json.dumps(meta)
    with open(output, "wb") as f:
      f.write(model.SerializeToString())
  else:
    with open(output, "wb") as f:
      f.write(export_stablehlo(task, variables))
    with open(output + ".json", "w") as f:
      json.dump(meta, f, indent=1)
  return meta


def parse_shape(text):
  """'HEIGHTxWIDTH' -> (height, width); '' -> None."""
  if not text:
    return None
  parts = text.lower().split("x")
  if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
    raise ValueError(f"--photo_shape={text!r}: expected HEIGHTxWIDTH in "
                     "pixels, e.g. 460x1130")
  return int(parts[0]), int(parts[1])


FLAGS = flags.FLAGS


@tool
def main():
  meta = export_run(FLAGS.workdir, FLAGS.format, FLAGS.output, FLAGS.step,
                    FLAGS.category, FLAGS.calibration,
                    parse_shape(FLAGS.photo_shape))
  print(f"{meta['task']} step {meta['step']} -> {FLAGS.output}")


if __name__ == "__main__":
  flags.DEFINE_string("workdir", None, "A vq training run.")
  flags.DEFINE_enum("format", "onnx", FORMATS, "onnx or stablehlo.")
  flags.DEFINE_string("output", None, "The file to write.")
  flags.DEFINE_string("step", "best", "best, latest or a step number.")
  flags.DEFINE_string("category", "", "Anomaly runs: the category to "
                      "decide for (a texture memory scoring's StableHLO "
                      "file compiles its memory in).")
  flags.DEFINE_string("calibration", "", "Anomaly runs: the name of the "
                      "run's evaluation (vq.evaluate --name) whose "
                      "thresholds the file carries.")
  flags.DEFINE_string("photo_shape", "", "Anomaly runs scored at each "
                      "photograph's own shape (eval.memory.short_side): "
                      "HEIGHTxWIDTH of the photographs the StableHLO file "
                      "will score.")
  flags.mark_flags_as_required(["workdir", "output"])
  run(main)
