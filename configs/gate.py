r"""The inspection pipeline's gate: a thin clean / damaged classifier.

  python -m vq.main --config=configs/gate.py --workdir=/tmp/vq/gate

MobileNetV2 alpha 0.35 at 96x96 on the embedded car panels (damage_level:
a scratch or a dent; a panel gap alone is clean). It stops clean photos
before the segmentation network; `vq.inspect` picks its threshold for a
target recall on this run's eval split.

Variants (after the colon):
  default        2-core CPU, about 1000 steps.
  variant=test   a few steps at 32x32 for tests.
Real data: data.source=image_folder data.path=ROOT (ROOT/clean/*.jpg and
  ROOT/damaged/*.jpg, or ROOT/train/<class>/ and ROOT/val/<class>/).
"""
from vq import config_base
from vq.data.classification import CAR_CLASS_NAMES
from vq.tasks import classification


def get_config(arg=None):
  args = config_base.parse_arg(arg, variant=("default", "test"))
  c = config_base.trainer_config()
  c.update(classification.default_config())
  c.task = "classification"
  c.data.source = "synthetic_car"
  c.data.class_names = CAR_CLASS_NAMES
  c.data.image_size = 96
  c.data.synthetic_eval_size = 400
  c.data.augment.scale = 0.1
  config_base.set_run(c, batch_size=32, num_train_steps=1000,
                      best_metric="accuracy",
                      learning_rate=2e-3, warmup_steps=50)
  if args.variant == "test":
    c.data.image_size = 32
    c.data.synthetic_train_size = 64
    c.data.synthetic_eval_size = 16
    config_base.few_step_run(c)
  return c
