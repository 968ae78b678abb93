r"""MobileNetV2 pre-training on embedded data (single machine parts).

  python -m vq.main --config=configs/pretrain_mobilenet.py --workdir=/tmp/vq/pretrain

(`:variant=test` runs two steps at 32x32.) Its workdir can then initialise a keypoint backbone with no download:
  python -m vq.main --config=configs/keypoints.py --workdir=/tmp/vq/kp \
    --config.model.backbone_weights=/tmp/vq/pretrain
"""
from vq import config_base
from vq.tasks import classification


def get_config(arg=None):
  c = config_base.trainer_config()
  c.update(classification.default_config())
  c.task = "classification"
  c.batch_size = 32
  c.num_train_steps = 1500
  c.log_every_steps = 100
  c.eval_every_steps = 1500
  c.checkpoint_every_steps = 1500
  c.optimizer.learning_rate = 2e-3
  c.optimizer.warmup_steps = 100
  if arg == "variant=test":
    c.data.image_size = 32
    c.data.synthetic_train_size = 64
    c.data.synthetic_eval_size = 16
    c.batch_size = c.eval_batch_size = 8
    c.num_train_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
    c.log_every_steps = 2
    c.optimizer.warmup_steps = 0
  elif arg:
    raise ValueError(f"unknown argument {arg!r}: none or variant=test")
  return c
