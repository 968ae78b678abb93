r"""Throughput of the inspection pipeline on 512x512 JPEG photos.

  python -m vq.benchmarks.inspect --runs=/tmp/vq/inspect_demo [--photos=200]

`runs` holds the demo's trained stage runs (runs/gate, runs/segment:
`python -m vq.inspection.demo`). New photos (20 % damaged, a seed no
training set uses) are inspected four ways: with and without the gate,
models run by XLA (jit) or by onnxruntime (ONNX exports of both runs, the
post-processing still jit-compiled). Timed: reading and decoding the JPEG
files, every stage, and writing the JSON lines; models are compiled before
timing and overlays are not drawn. Prints one Markdown table.
"""
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from absl import app, flags  # noqa: E402
from absl import logging  # noqa: E402

from vq import config_base, export, inspect  # noqa: E402
from vq.inspection import demo  # noqa: E402

SETUPS = (("XLA", True), ("XLA", False), ("onnxruntime", True),
          ("onnxruntime", False))


def run(runs, num_photos=200, size=512, defective_fraction=0.2):
  """[(backend, gated, summary)] of the four set-ups."""
  results = []
  with tempfile.TemporaryDirectory() as tmp:
    photos = os.path.join(tmp, "photos")
    demo.write_photos(photos, num_photos, size, defective_fraction)
    onnx = {}
    for stage in ("gate", "segment"):
      onnx[stage] = os.path.join(tmp, f"{stage}.onnx")
      export.export_run(os.path.join(runs, stage), "onnx", onnx[stage])
    for backend, gated in SETUPS:
      config = config_base.load_config_file(
          os.path.join(demo.CONFIGS, "inspect.py"), f"runs={runs}")
      config.overlays = False
      if backend == "onnxruntime":
        config.gate.model, config.segment.model = onnx["gate"], onnx["segment"]
        config.gate.workdir = config.segment.workdir = ""
      if not gated:
        config.gate.workdir = config.gate.model = ""
      name = f"{backend}_{'gate' if gated else 'nogate'}"
      summary = inspect.inspect(config, os.path.join(tmp, name),
                                os.path.join(photos, "*.jpg"),
                                os.path.join(tmp, name, "output"),
                                progress=open(os.devnull, "w"))
      results.append((backend, gated, summary))
  return results


def table(results):
  stage_names = ("read", "gate", "segment", "write")
  lines = ["| models | gate | photos/s | " +
           " | ".join(f"{s} ms/photo" for s in stage_names) +
           " | segmented | defective |",
           "|---|---|---:|" + "---:|" * len(stage_names) + "---:|---:|"]
  for backend, gated, s in results:
    by_stage = {r["stage"]: r for r in s["stages"]}
    cells = [f"{by_stage[n]['ms_per_photo']:.1f}" if n in by_stage else "-"
             for n in stage_names]
    lines.append(f"| {backend} | {'yes' if gated else 'no'} | "
                 f"{s['photos_per_second']:.1f} | " + " | ".join(cells) +
                 f" | {by_stage['segment']['images_in']} | "
                 f"{s['defective']} |")
  return "\n".join(lines)


FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  print(table(run(FLAGS.runs, FLAGS.photos, FLAGS.size)))


if __name__ == "__main__":
  flags.DEFINE_string("runs", "/tmp/vq/inspect_demo", "The demo's runs.")
  flags.DEFINE_integer("photos", 200, "Photos per set-up.")
  flags.DEFINE_integer("size", 512, "Their side in pixels.")
  app.run(main)
