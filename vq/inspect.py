r"""The inspection pipeline over folders, globs or videos of photos.

  python -m vq.inspect --config=configs/inspect.py:runs=RUNS \
    --workdir=PIPELINE --input=DIR|GLOB|VIDEO [--output=DIR]

PIPELINE/pipeline.json holds the pipeline's config and the gate's
threshold, chosen once for `gate.target_recall` on validation photos
(`gate.validation_path`) or the gate run's eval split, and chosen again when
the gate run, its step, the target, the normal class or the validation
photos' folder change. OUTPUT (default PIPELINE/output) receives
inspections.jsonl (one line per photo: defective, masks as Severstal RLE in
the photo's pixels, gate score, the stage that stopped it), overlays/,
stages.json (per stage: photos in, passed on, time) and failed.txt.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from vq import prediction_outputs, predict  # noqa: E402
from vq.cli import run, tool  # noqa: E402
from vq.inspection import gate as gate_lib  # noqa: E402
from vq.inspection.pipeline import (InspectionPipeline, Stage,  # noqa: E402
                                    StageStats)
from vq.progress import ProgressLine  # noqa: E402


def _stage(name, c, batch_size, overrides=None):
  if not (c.workdir or c.model):
    return None, None
  task, predict_fn, step = predict.load_model(c.workdir, c.model, c.step,
                                              overrides)
  return Stage(name, task, predict_fn, batch_size), step


def _policy_overrides(config):
  p = config.policy
  if p.from_run:
    return None
  return {"eval.thresholds": tuple(p.thresholds),
          "eval.min_areas": tuple(p.min_areas),
          "eval.refine": tuple(p.refine)}


def gate_calibration(config, gate, gate_step, workdir):
  """The gate's stored calibration if it still applies, else a new one
  (written to WORKDIR/pipeline.json with the config)."""
  c = config.gate
  source = {"run": c.workdir, "model": c.model, "step": gate_step,
            "normal_class": c.normal_class,
            "target_recall": c.target_recall,
            "validation_path": c.validation_path}
  path = os.path.join(workdir, "pipeline.json")
  if os.path.isfile(path):
    with open(path) as f:
      stored = json.load(f).get("gate", {})
    if stored.get("source") == source:
      return stored
  if c.validation_path:
    chosen = gate_lib.calibrate_on_photos(gate, c.validation_path,
                                          c.normal_class, c.target_recall)
    gate.stats = StageStats(gate.stats.name)  # calibration is not inspection
  else:
    chosen = gate_lib.calibrate(gate.task, gate.predictor.predict_fn,
                                c.normal_class, c.target_recall)
  stored = {"source": source, **chosen}
  os.makedirs(workdir, exist_ok=True)
  with open(path, "w") as f:
    json.dump({"config": json.loads(config.to_json_best_effort()),
               "gate": stored}, f, indent=1)
  return stored


def build(config, workdir):
  """(pipeline, gate calibration or None) from an inspect config."""
  b = config.batch_size
  segment, _ = _stage("segment", config.segment, b, _policy_overrides(config))
  if segment is None:
    raise ValueError("segment.workdir or segment.model must name the "
                     "segmentation run")
  if segment.task.name != "segmentation":
    raise ValueError(f"segment names a {segment.task.name} run, not a "
                     "segmentation run")
  localise, _ = _stage("localise", config.localise, b)
  if localise and localise.task.name != "detection":
    raise ValueError(f"localise names a {localise.task.name} run, not a "
                     "detection run")
  if localise and config.localise.class_name not in localise.task.class_names:
    raise ValueError(f"localise.class_name {config.localise.class_name!r} is "
                     f"not a class of the detection run "
                     f"{localise.task.class_names}")
  gate, gate_step = _stage("gate", config.gate, b)
  calibration = (gate_calibration(config, gate, gate_step, workdir)
                 if gate else None)
  for stage in (localise, gate, segment):
    if stage:
      stage.warm_up()
  pipeline = InspectionPipeline(
      segment, gate, calibration and calibration["threshold"],
      config.gate.normal_class, localise, config.localise.class_name,
      config.localise.margin, tuple(config.policy.defect_classes))
  return pipeline, calibration


def _timed(frames, stats):
  """Yields `frames`, counting them and timing each read."""
  while True:
    start = time.perf_counter()
    frame = next(frames, None)
    stats.seconds += time.perf_counter() - start
    if frame is None:
      return
    stats.images_in += 1
    yield frame


def inspect(config, workdir, inputs, output, every_n_frames=1,
            progress=sys.stderr, overwrite=False):
  """Runs the pipeline over `inputs`; returns the summary (also written to
  OUTPUT/stages.json)."""
  pipeline, calibration = build(config, workdir)
  prediction_outputs.prepare(
      output, {"tool": "vq.inspect", "config": config.to_dict(),
               "workdir": os.path.abspath(workdir),
               "input": os.path.abspath(inputs),
               "every_n_frames": every_n_frames},
      "inspections.jsonl", overwrite)
  writer = prediction_outputs.RecordWriter(
      output, pipeline.draw, "inspections.jsonl",
      submission_classes=pipeline.segment.task.class_names,
      overlays=config.overlays, input_root=inputs)
  read, write = StageStats("read"), StageStats("write")

  def frames():
    for frame in predict.iterate_inputs(inputs, every_n_frames):
      if not writer.set_aside(frame):
        yield frame

  start, done, defective = time.perf_counter(), 0, 0
  line = ProgressLine(progress)
  try:
    for frame, record in pipeline.run(_timed(frames(), read)):
      t = time.perf_counter()
      writer.write(frame, record)
      write.seconds += time.perf_counter() - t
      write.images_in += 1
      done += 1
      defective += record["defective"]
      line.update(f"{done} photos, "
                  f"{done / (time.perf_counter() - start):.1f} photos/s, "
                  f"{defective} defective")
  except BaseException:
    writer.close(finished=False)
    raise
  writer.close()
  seconds = time.perf_counter() - start
  line.close()
  read.images_out = read.images_in
  write.images_out = write.images_in
  stats = [read] + [s.stats for s in pipeline.stages] + [write]
  summary = {"photos": done, "defective": defective,
             "failed": writer.failed, "seconds": round(seconds, 3),
             "photos_per_second": round(done / max(seconds, 1e-9), 2),
             "gate": calibration,
             "stages": [s.as_dict(done) for s in stats]}
  with open(os.path.join(output, "stages.json"), "w") as f:
    json.dump(summary, f, indent=1)
  return summary


def stage_table(summary):
  """The per-stage table as Markdown."""
  lines = ["| stage | photos in | passed on | ms per photo in | "
           "ms per photo (all) |", "|---|---:|---:|---:|---:|"]
  for s in summary["stages"]:
    lines.append(f"| {s['stage']} | {s['images_in']} | {s['images_out']} | "
                 f"{s['ms_per_image_in']:.1f} | {s['ms_per_photo']:.1f} |")
  lines.append(f"| total | {summary['photos']} | {summary['defective']} "
               f"defective | | {1e3 / max(summary['photos_per_second'], 1e-9):.1f} "
               f"({summary['photos_per_second']:.1f} photos/s) |")
  return "\n".join(lines)


FLAGS = flags.FLAGS


@tool
def main():
  output = FLAGS.output or os.path.join(FLAGS.workdir, "output")
  summary = inspect(FLAGS.config, FLAGS.workdir, FLAGS.input, output,
                    FLAGS.every_n_frames, overwrite=FLAGS.overwrite)
  if summary["gate"]:
    g = summary["gate"]
    print(f"gate threshold {g['threshold']:.4f} (recall "
          f"{g['validation_recall']:.3f}, pass rate "
          f"{g['validation_pass_rate']:.3f} on {g['validation']})")
  print(stage_table(summary))
  print(f"-> {output}")
  for line in summary["failed"]:
    print(f"failed: {line}", file=sys.stderr)
  sys.exit(1 if summary["failed"] or not summary["photos"] else 0)


if __name__ == "__main__":
  config_flags.DEFINE_config_file("config", None, "An inspect config.")
  flags.DEFINE_string("workdir", None, "The pipeline's folder "
                      "(pipeline.json: config and gate threshold).")
  flags.DEFINE_string("input", None, "A folder, a glob, an image or a video.")
  flags.DEFINE_string("output", "", "Results (default WORKDIR/output).")
  flags.DEFINE_integer("every_n_frames", 1, "Videos: every n-th frame.")
  flags.DEFINE_bool("overwrite", False, "Replace the outputs of another "
                    "run in --output.")
  flags.mark_flags_as_required(["config", "workdir", "input"])
  run(main)
