r"""One command from nothing to an inspected folder of photos.

  python -m vq.inspection.demo --workdir=/tmp/vq/inspect_demo

Trains the gate (configs/gate.py) and the damage segmentation
(configs/unet_damage.py) on the embedded car panels, writes photos the
models never saw (512x512 JPEG, 20 % damaged by default) and as many
validation photos (half damaged, in clean/ and damaged/: the gate's
threshold is chosen on them), and runs the inspection pipeline
(configs/inspect.py) over the photos: WORKDIR/gate, WORKDIR/segment,
WORKDIR/photos (truth.json: each photo's damage_level),
WORKDIR/validation_photos, WORKDIR/pipeline (pipeline.json, output/). Runs already trained are
resumed, not repeated. `--variant=test` trains a few steps.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from absl import logging  # noqa: E402

import vq  # noqa: E402
from vq import config_base, inspect, train  # noqa: E402
from vq.data.embedded import synthetic_car# noqa: E402
from vq.data.images import write_image  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(vq.__file__)),
                       "configs")
PHOTO_SEED = 1000                 # the training sets use seeds 0, 1, 10, 11


def write_photos(folder, num_photos, size=512, defective_fraction=0.2,
                 seed=PHOTO_SEED, by_class=False):
  """Embedded car panels as JPEG photos and truth.json ({file: damage
  level}); returns the truth. `by_class` puts them in clean/ and damaged/
  (the gate's validation photos)."""
  truth = {}
  for i in range(num_photos):
    r = synthetic_car.generate(seed, i, size,
                               damage_probability=defective_fraction)
    name = f"photo_{i:05d}.jpg"
    if by_class:
      name = os.path.join(("clean", "damaged")[int(r["label"])], name)
    os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
    write_image(os.path.join(folder, name), r["image"])
    truth[name] = int(r["label"])
  with open(os.path.join(folder, "truth.json"), "w") as f:
    json.dump(truth, f, indent=0)
  return truth


def photo_scores(summary_records, truth):
  """Photo-level recall and precision of 'defective' against the truth."""
  found = {os.path.basename(r["file"]): r["defective"]
           for r in summary_records}
  names = sorted(truth)
  predicted = np.array([found[n] for n in names], bool)
  actual = np.array([truth[n] for n in names], bool)
  tp = int((predicted & actual).sum())
  return {"recall": tp / max(int(actual.sum()), 1),
          "precision": tp / max(int(predicted.sum()), 1),
          "damaged_photos": int(actual.sum()), "photos": len(names)}


def run_demo(workdir, variant="default", num_photos=200, photo_size=512,
             configs=CONFIGS, progress=sys.stderr):
  """Trains both stage runs, writes the photos, inspects them; returns the
  inspection summary with photo-level scores."""
  arg = "variant=test" if variant == "test" else None
  for name, config_file in (("gate", "gate.py"),
                            ("segment", "unet_damage.py")):
    print(f"training {name} ({config_file}) -> {workdir}/{name}",
          file=progress)
    train.train_and_evaluate(
        config_base.load_config_file(os.path.join(configs, config_file), arg),
        os.path.join(workdir, name))
  photos = os.path.join(workdir, "photos")
  truth = write_photos(photos, num_photos, photo_size)
  # The gate's threshold is chosen on photos like those it will see.
  write_photos(os.path.join(workdir, "validation_photos"), num_photos,
               photo_size, defective_fraction=0.5, seed=PHOTO_SEED + 1,
               by_class=True)
  config = config_base.load_config_file(os.path.join(configs, "inspect.py"),
                                        f"runs={workdir}")
  pipeline_dir = os.path.join(workdir, "pipeline")
  output = os.path.join(pipeline_dir, "output")
  summary = inspect.inspect(config, pipeline_dir,
                            os.path.join(photos, "*.jpg"), output,
                            progress=progress)
  with open(os.path.join(output, "inspections.jsonl")) as f:
    summary["scores"] = photo_scores([json.loads(l) for l in f], truth)
  return summary


FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)
  summary = run_demo(FLAGS.workdir, FLAGS.variant, FLAGS.photos,
                     FLAGS.photo_size)
  print(inspect.stage_table(summary))
  s = summary["scores"]
  print(f"damaged photos found: {s['recall']:.3f} of {s['damaged_photos']}; "
        f"precision {s['precision']:.3f}")


if __name__ == "__main__":
  flags.DEFINE_string("workdir", "/tmp/vq/inspect_demo", "Where it all goes.")
  flags.DEFINE_enum("variant", "default", ["default", "test"],
                    "test: a few training steps.")
  flags.DEFINE_integer("photos", 200, "Photos to inspect.")
  flags.DEFINE_integer("photo_size", 512, "Their side in pixels.")
  app.run(main)
