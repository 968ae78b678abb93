r"""Input pipeline throughput of each family's real-format data, with 0, 1
and 2 grain worker processes, beside what the default configs' training
steps consume.

  python -m vq.benchmarks.input_pipeline [--workdir=/tmp/vq/input_pipeline]

Writes a small set in each published format at the studies' image sizes
(JPEG unless the format ships PNG), reads it through the config's reader,
decode and augmentation (`Task.datasets`, the trainer's grain pipeline),
and prints images/s per worker count. Then trains each default config on
its set for two logging windows (in-process decoding and 2 workers) and
prints the second window's step time, the images/s it consumes and the
fraction of it spent waiting for data.

  family     format                       files
  steel      Severstal CSV + JPEG strips  256x1600 (unet_steel.py:data=severstal)
  damage     polygon JSON + JPEG          512x512  (unet_damage.py)
  anomaly    MVTec AD folders, PNG        512x512  (draem.py:scoring=fused)
  detection  YOLO txt + JPEG              448x448  (yolo.py)
  keypoints  keypoint CSV + JPEG          224x224  (keypoints.py)
"""
import importlib
import os
import shutil
import sys
import time

import cv2
import numpy as np
from absl import app, flags

from vq import train
from vq.data.embedded import synthetic_bead, synthetic_car
from vq.data.embedded import synthetic_parts
from vq.data.images import write_image
from vq.data.pipeline import train_dataset, train_iterator
from vq.photo_sets import steel as photo_steel
from vq.tasks import get_task_class

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/vq/input_pipeline", "Data and runs.")
flags.DEFINE_integer("batches", 20, "Batches timed per worker count.")
flags.DEFINE_integer("window", 20, "Training steps per logging window.")
flags.DEFINE_list("families", ["steel", "damage", "anomaly", "detection",
                               "keypoints"], "Which families.")


def _jpeg_set(folder, generate, num_images, size):
  os.makedirs(folder, exist_ok=True)
  for i in range(num_images):
    record = generate(0, i, size)
    write_image(os.path.join(folder, f"{i:05d}.jpg"), record["image"])
    yield i, record


def write_steel(root):
  csv = photo_steel.write_set(root, 60, strip_hw=(256, 1600))
  return {"data.train_path": csv,
          "data.image_dir": os.path.join(root, "train_images")}


def write_damage(root):
  path = synthetic_car.write_dataset(root, 80, image_size=512,
                                     extension=".jpg")
  return {"data.source": "polygon_json", "data.train_path": path,
          "data.image_dir": os.path.join(root, "images")}


def write_anomaly(root, size=512):
  """MVTec AD folders of one category: flips and turns of scikit-image's
  brick photograph (512x512 PNG), a line drawn on the defective ones."""
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  photo = np.repeat(skdata.brick()[:size, :size, None], 3, -1)
  category = os.path.join(root, "brick")
  for split, count in (("train/good", 64), ("test/good", 4),
                       ("test/scratch", 2)):
    os.makedirs(os.path.join(category, split))
    for i in range(count):
      image = np.ascontiguousarray(np.rot90(photo[:, ::-1] if i % 2 else photo,
                                            i // 2))
      if split == "test/scratch":
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.line(mask, (40, 60 + 90 * i), (400, 300), 255, 5)
        image[mask > 0] = 30
        folder = os.path.join(category, "ground_truth", "scratch")
        os.makedirs(folder, exist_ok=True)
        cv2.imwrite(os.path.join(folder, f"{i:03d}_mask.png"), mask)
      write_image(os.path.join(category, split, f"{i:03d}.png"), image)
  return {"data.source": "mvtec", "data.path": root,
          "data.categories": ("brick",)}


def write_detection(root):
  labels = os.path.join(root, "labels")
  os.makedirs(labels, exist_ok=True)
  for i, record in _jpeg_set(os.path.join(root, "images"),
                             synthetic_parts.generate, 80, 448):
    with open(os.path.join(labels, f"{i:05d}.txt"), "w") as f:
      for (x1, y1, x2, y2), c in zip(record["boxes"], record["classes"]):
        f.write(f"{c} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} "
                f"{x2 - x1:.6f} {y2 - y1:.6f}\n")
  return {"data.source": "yolo_txt", "data.train_path": root}


def write_keypoints(root):
  rows = ["image,x1,y1,x2,y2,x3,y3"]
  for i, record in _jpeg_set(os.path.join(root, "images"),
                             synthetic_bead.generate, 80, 224):
    points = ",".join(f"{v * 224:.2f}" for v in record["keypoints"].ravel())
    rows.append(f"images/{i:05d}.jpg,{points}")
  path = os.path.join(root, "keypoints.csv")
  with open(path, "w") as f:
    f.write("\n".join(rows) + "\n")
  return {"data.source": "csv", "data.train_path": path,
          "data.eval_path": path}


# family -> (config, its argument, writer of its real-format set)
FAMILIES = {
    "steel": ("unet_steel", "data=severstal", write_steel),
    "damage": ("unet_damage", None, write_damage),
    "anomaly": ("draem", "scoring=fused", write_anomaly),  # trains DRAEM
    "detection": ("yolo", None, write_detection),
    "keypoints": ("keypoints", None, write_keypoints),
}


def config_of(family, overrides):
  """The family's default config reading its written set."""
  module, arg, _ = FAMILIES[family]
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
  config = importlib.import_module(f"configs.{module}").get_config(arg)
  config.update_from_flattened_dict(overrides)
  return config


def images_per_second(config, num_workers, num_batches):
  data = get_task_class(config.task)(config).datasets()
  dataset = train_dataset(data.train, data.train_transform,
                          global_batch_size=config.batch_size, seed=0)
  iterator = train_iterator(dataset, config.data_threads, num_workers)
  try:
    # Starts the workers, then drains what they buffered meanwhile (2
    # batches each): the timed batches are made while timed.
    for _ in range(1 + 2 * num_workers):
      next(iterator)
    start = time.perf_counter()
    for _ in range(num_batches):
      next(iterator)
    return num_batches * config.batch_size / (time.perf_counter() - start)
  finally:
    iterator.close()


def training_window(config, workdir, num_workers, window):
  """Second logging window of a short run: (seconds per step, images/s
  consumed, data wait fraction)."""
  config.data_workers = str(num_workers)
  config.num_train_steps = 2 * window
  config.log_every_steps = window
  config.eval_every_steps = 2 * window
  config.checkpoint_every_steps = 2 * window
  config.data_check = "off"
  means = train.train_and_evaluate(config, workdir)["train"]
  seconds = means["seconds_per_step"]
  return seconds, config.batch_size / seconds, means["data_wait_fraction"]


def main(argv):
  del argv
  rows = []
  for family in FLAGS.families:
    root = os.path.join(FLAGS.workdir, "data", family)
    shutil.rmtree(root, ignore_errors=True)
    overrides = FAMILIES[family][2](root)
    config = config_of(family, overrides)
    rates = [images_per_second(config, w, FLAGS.batches) for w in (0, 1, 2)]
    steps = {}
    for w in (0, 2):
      workdir = os.path.join(FLAGS.workdir, "runs", f"{family}_{w}")
      shutil.rmtree(workdir, ignore_errors=True)
      steps[w] = training_window(config_of(family, overrides), workdir, w,
                                 FLAGS.window)
    rows.append((family, config.batch_size, rates, steps))
    print(f"{family}: pipeline {' / '.join(f'{r:.1f}' for r in rates)} "
          f"images/s (0 / 1 / 2 workers); training {steps}", flush=True)
  print("\n| family | batch | pipeline images/s, 0 / 1 / 2 workers | "
        "training step (s), 0 / 2 workers | consumed images/s, 0 / 2 | "
        "waiting for data, 0 / 2 |")
  print("|---|---|---|---|---|---|")
  for family, batch, rates, steps in rows:
    print(f"| {family} | {batch} | {' / '.join(f'{r:.1f}' for r in rates)} | "
          f"{steps[0][0]:.3f} / {steps[2][0]:.3f} | "
          f"{steps[0][1]:.1f} / {steps[2][1]:.1f} | "
          f"{steps[0][2]:.0%} / {steps[2][2]:.0%} |")


if __name__ == "__main__":
  app.run(main)
