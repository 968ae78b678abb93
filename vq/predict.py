r"""A trained run over new images or videos: JSON records and overlays.

  python -m vq.predict --workdir=RUN --input=DIR|GLOB|VIDEO --output=DIR
  python -m vq.predict --model=model.onnx --input=... --output=DIR

Writes OUTPUT/predictions.jsonl (one line per image, page of a TIFF or GIF,
or video frame, results in the original image's pixels), OUTPUT/overlays/
(the results drawn on each image, named by its path under --input; an
annotated video per video), OUTPUT/submission.csv for segmentation runs
(Severstal form), OUTPUT/failed.txt listing the inputs that could not be
read, with the reason, OUTPUT/skipped.txt the files that are not images or
videos, and OUTPUT/run.json (which model and input; whether the run
finished). The exit status is 1 when any input failed. An OUTPUT holding
another run's outputs is refused unless --overwrite.
"""
import functools
import glob
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import cv2  # noqa: E402
import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from vq import run_config, runs  # noqa: E402
from vq.cli import run, tool  # noqa: E402
from vq.data.augment import short_side  # noqa: E402
from vq.data.images import IMAGE_EXTENSIONS, read_pages  # noqa: E402
from vq.prediction_outputs import RecordWriter, prepare  # noqa: E402
from vq.progress import ProgressLine  # noqa: E402
from vq.tasks import get_task_class  # noqa: E402

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


class Frame:
  """One input image: where it came from (a video's frame or a multi-page
  file's page), and its pixels, or why not (`error`: could not be read;
  `skipped`: not an image or video)."""

  def __init__(self, source, frame=None, image=None, error=None, page=None,
               skipped=None):
    self.source, self.frame, self.image, self.error = (source, frame, image,
                                                       error)
    self.page, self.skipped = page, skipped


def _folder_files(folder):
  """Every file under `folder`, recursively, in order."""
  files = []
  for root, _, names in sorted(os.walk(folder)):
    files += [os.path.join(root, n) for n in sorted(names)]
  return files


def _image_files(spec):
  """The files `spec` names: a folder's files, a glob's matches (folders
  among them searched the same way), or the one file."""
  matches = sorted(glob.glob(spec)) if glob.has_magic(spec) else [spec]
  files = []
  for path in matches:
    files += _folder_files(path) if os.path.isdir(path) else [path]
  return files


def _video_frames(path, every_n_frames):
  if not is_utf8(path):  # OpenCV's video reader crashes on such a name
    yield Frame(path, error=f"{path!r}: OpenCV reads videos by name, and "
                "this name is not valid UTF-8: rename the file")
    return
  capture = cv2.VideoCapture(path)
  if not capture.isOpened():
    yield Frame(path, error=f"{path!r}: cannot open the video")
    return
  index = 0
  while True:
    ok, bgr = capture.read()
    if not ok:
      break
    if index % every_n_frames == 0:
      yield Frame(path, index, np.ascontiguousarray(bgr[..., ::-1]))
    index += 1
  capture.release()


def is_utf8(path):
  """Whether OpenCV's file-name calls can take `path` (a str holding bytes
  that are not UTF-8, as os.fsdecode gives them, crashes them)."""
  try:
    path.encode("utf-8")
  except UnicodeEncodeError:
    return False
  return True


def iterate_inputs(spec, every_n_frames=1):
  """Frames of every image (each page of a TIFF or GIF) and video that
  `spec` (a folder, a glob, a file or a video) names; an unreadable file
  carries its error, a folder's other files are `skipped`."""
  files = _image_files(spec)
  for path in files:
    lower = os.fsdecode(path).lower()
    if lower.endswith(VIDEO_EXTENSIONS):
      yield from _video_frames(path, every_n_frames)
      continue
    if not lower.endswith(IMAGE_EXTENSIONS) and path != spec:
      yield Frame(path, skipped=f"{path!r}: not an image or video (by its "
                  f"extension: {', '.join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)})")
      continue
    try:
      pages = read_pages(path)
    except (OSError, ValueError) as e:
      yield Frame(path, error=str(e))
      continue
    for k, image in enumerate(pages):
      yield Frame(path, image=image, page=k if len(pages) > 1 else None)


class Predictor:
  """A batched predict function called with one fixed batch shape."""

  def __init__(self, predict_fn, batch_size):
    self.predict_fn, self.batch_size = predict_fn, batch_size

  def __call__(self, images):
    """uint8 images of the input size (at most batch_size; where the task
    scores each at its own shape, one call per shape) -> per-image output
    dicts (numpy)."""
    outputs = [None] * len(images)
    for indices in short_side.by_shape(images).values():
      group = [images[i] for i in indices]
      batch = np.stack(group + [group[-1]] * (self.batch_size - len(group)))
      out = jax.device_get(self.predict_fn(batch))
      for j, i in enumerate(indices):
        outputs[i] = jax.tree.map(lambda x, j=j: np.asarray(x)[j], out)
    return outputs


def load_exported(path, overrides=None):
  """(task, batched predict function) of a `vq.export` file: ONNX through
  onnxruntime (the task's post-processing after it, with the config
  `overrides`), StableHLO through jax.export (its post-processing is
  compiled in: no overrides)."""
  if path.endswith(".onnx"):
    import onnx  # pylint: disable=g-import-not-at-top
    import onnxruntime  # pylint: disable=g-import-not-at-top
    props = _read_export(path, lambda: {
        p.key: p.value for p in onnx.load(path).metadata_props})
    if "vq" not in props:
      raise ValueError(f"{path}: not a vq export (no 'vq' metadata)")
    meta = _read_export(path, lambda: json.loads(props["vq"]))
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only, not shape-merge notes
    session = _read_export(path, lambda: onnxruntime.InferenceSession(
        path, options))
    names = [o.name for o in session.get_outputs()]
    task = _task_from_metadata(meta, overrides)
    postprocess = jax.jit(task.postprocess)

    def predict_fn(images):
      outputs = dict(zip(names, session.run(names, {"images": images})))
      return postprocess(outputs, images)
    return task, predict_fn
  if overrides:
    raise ValueError(f"{path}: a StableHLO export has its post-processing "
                     f"compiled in; {sorted(overrides)} cannot change it "
                     "(export to ONNX, or use the run)")
  meta_path = path + ".json"
  if not os.path.isfile(meta_path):
    raise FileNotFoundError(f"{path}: its metadata {meta_path} is missing")
  with open(meta_path, "rb") as f:
    meta = _read_export(meta_path, lambda: json.loads(f.read()))
  with open(path, "rb") as f:
    exported = _read_export(
        path, lambda: jax.export.deserialize(bytearray(f.read())))
  task = _read_export(meta_path, lambda: _task_from_metadata(meta))
  if task.needs_training_images:  # the category's memory is compiled in
    task.use_compiled_memory(meta["category"])
  photo_shape = meta["input"].get("photo_shape")
  task.photo_shape = tuple(photo_shape) if photo_shape else None
  expected = tuple(meta["input"]["shape"][1:])

  def predict_fn(images):
    if tuple(images.shape[1:]) != expected:
      made_for = (f" (photographs of {photo_shape[0]}x{photo_shape[1]}, "
                  "scaled to eval.memory.short_side; export the run again "
                  "with --photo_shape of these)" if photo_shape else "")
      raise ValueError(
          f"{path}: takes images of {expected[0]}x{expected[1]}x"
          f"{expected[2]}{made_for}, got {'x'.join(map(str, images.shape[1:]))}")
    return exported.call(images)
  return task, predict_fn


def _read_export(path, read):
  """`read()`; whatever a damaged file makes the parser raise becomes a
  ValueError naming `path`."""
  try:
    return read()
  except Exception as e:  # pylint: disable=broad-except
    # protobuf, onnxruntime, flatbuffers and json raise many types.
    raise ValueError(f"{path}: damaged or not a vq export "
                     f"({type(e).__name__}: {str(e)[:200]})") from e


def _task_from_metadata(meta, overrides=None):
  config = runs.override(
      ml_collections.ConfigDict(run_config.tuples(meta["settings"])), overrides)
  task = get_task_class(config.task)(config)
  task.calibration = meta.get("calibration", {})
  if meta.get("category"):
    task.category = meta["category"]
  return task


def load_model(workdir="", model="", step="best", overrides=None,
               calibration=""):
  """(task, batched predict function, step) of a run or an exported file,
  its config changed by `overrides` ({dotted field: value}); a run's
  decisions calibrated by its evaluation `calibration` if named
  (`runs.load_run`)."""
  if model:
    if calibration:
      raise ValueError("--calibration applies to a run (--workdir); an "
                       "exported file carries the calibration it was "
                       "exported with")
    task, predict_fn = load_exported(model, overrides)
    return task, predict_fn, "exported"
  config = runs.override(run_config.load_config(workdir), overrides)
  _, task, variables, step = runs.load_run(workdir, step, config,
                                           calibration)
  return task, functools.partial(jax.jit(task.predict), variables), step


def predict(workdir, inputs, output, step="best", batch_size=8,
            every_n_frames=1, progress=sys.stderr, model="", category="",
            overwrite=False, calibration=""):
  """Runs a run's model (or the exported `model` file) over `inputs`;
  returns a summary dict. `output` must be new, empty or hold an earlier
  run of the same model and input, unless `overwrite`
  (`prediction_outputs.prepare`). `calibration`: the run's evaluation
  (`vq.evaluate --name`) whose thresholds decide."""
  task, predict_fn, resolved_step = load_model(workdir, model, step,
                                               calibration=calibration)
  task.select_category(category)
  predictor = Predictor(predict_fn, batch_size)
  identity = {"tool": "vq.predict",
              "model": os.path.abspath(model or workdir), "step": step,
              "input": os.path.abspath(inputs), "category": category,
              "every_n_frames": every_n_frames,
              **({"calibration": calibration} if calibration else {})}
  prepare(output, identity, "predictions.jsonl", overwrite)
  outputs = RecordWriter(
      output, task.draw, submission_classes=(
          task.class_names if task.name == "segmentation" else None),
      input_root=inputs)
  # Frames waiting for a batch, by input shape (one, unless the task
  # scores each photograph at its own shape): a full batch is predicted,
  # so records of several shapes come grouped by shape.
  pending, done, start = {}, 0, time.perf_counter()
  line = ProgressLine(progress)

  def flush(shape):
    nonlocal done
    frames, images = zip(*pending.pop(shape))
    for frame, result in zip(frames, predictor(list(images))):
      outputs.write(frame, task.to_record(result, frame.image.shape[:2]))
    done += len(frames)
    rate = done / (time.perf_counter() - start)
    line.update(f"{done} images, {rate:.1f} images/s, "
                f"{len(outputs.failed)} failed")

  try:
    for frame in iterate_inputs(inputs, every_n_frames):
      if outputs.set_aside(frame):
        continue
      image = task.resize_input(frame.image)
      if task.photo_shape and image.shape != tuple(task.input_shape):
        # An export for one photograph shape: others are listed as failed.
        h, w = frame.image.shape[:2]
        frame.error = (f"{frame.source!r}: a {h}x{w} photograph; this file "
                       f"scores photographs of {task.photo_shape[0]}x"
                       f"{task.photo_shape[1]} (export the run again with "
                       f"--photo_shape={h}x{w} for these)")
        outputs.set_aside(frame)
        continue
      batch = pending.setdefault(image.shape, [])
      batch.append((frame, image))
      if len(batch) == batch_size:
        flush(image.shape)
    for shape in list(pending):
      flush(shape)
  except BaseException:
    outputs.close(finished=False)
    raise
  outputs.close()
  line.close()
  return {"step": resolved_step, "images": done, "failed": outputs.failed,
          "skipped": outputs.skipped,
          "seconds": time.perf_counter() - start}


FLAGS = flags.FLAGS


@tool
def main():
  if bool(FLAGS.workdir) == bool(FLAGS.model):
    raise app.UsageError("give --workdir (a training run) or --model (an "
                         "exported file)")
  summary = predict(FLAGS.workdir, FLAGS.input, FLAGS.output, FLAGS.step,
                    FLAGS.batch_size, FLAGS.every_n_frames, model=FLAGS.model,
                    category=FLAGS.category, overwrite=FLAGS.overwrite,
                    calibration=FLAGS.calibration)
  print(f"step {summary['step']}: {summary['images']} images in "
        f"{summary['seconds']:.1f} s -> {FLAGS.output}")
  for line in summary["failed"]:
    print(f"failed: {line}", file=sys.stderr)
  if summary["skipped"]:
    print(f"skipped {len(summary['skipped'])} files that are not images or "
          f"videos: listed in {os.path.join(FLAGS.output, 'skipped.txt')}",
          file=sys.stderr)
  if not summary["images"] and not summary["failed"]:
    print(f"no images or videos found at {FLAGS.input}", file=sys.stderr)
    sys.exit(1)
  sys.exit(1 if summary["failed"] else 0)


if __name__ == "__main__":
  flags.DEFINE_string("workdir", "", "A vq training run.")
  flags.DEFINE_string("model", "", "Or a vq.export file (.onnx, .stablehlo).")
  flags.DEFINE_string("input", None, "A folder, a glob, an image or a video.")
  flags.DEFINE_string("output", None, "Folder for records and overlays.")
  flags.DEFINE_string("step", "best", "best, latest or a step number.")
  flags.DEFINE_integer("batch_size", 8, "Images per jit-compiled call.")
  flags.DEFINE_integer("every_n_frames", 1, "Videos: predict every n-th frame.")
  flags.DEFINE_bool("overwrite", False, "Replace the outputs of another "
                    "run in --output.")
  flags.DEFINE_string("category", "", "Anomaly runs: the category whose "
                      "threshold decides good/defective.")
  flags.DEFINE_string("calibration", "", "Anomaly runs: the name of the "
                      "run's evaluation (vq.evaluate --name) whose "
                      "thresholds decide, e.g. one at "
                      "--config.eval.threshold_recall=0.99.")
  flags.mark_flags_as_required(["input", "output"])
  run(main)
