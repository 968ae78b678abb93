r"""MobileNetV2 pre-training on embedded data (single machine parts).

  python -m vq.main --config=configs/pretrain_mobilenet.py --workdir=/tmp/vq/pretrain

(`:variant=test` runs two steps at 32x32.) Its workdir can then initialise a keypoint backbone with no download:
  python -m vq.main --config=configs/keypoints.py --workdir=/tmp/vq/kp \
    --config.model.backbone_weights=/tmp/vq/pretrain
"""
from vq import config_base
from vq.tasks import classification


def get_config(arg=None):
  args = config_base.parse_arg(arg, variant=("default", "test"))
  c = config_base.trainer_config()
  c.update(classification.default_config())
  c.task = "classification"
  config_base.set_run(c, batch_size=32, num_train_steps=1500,
                      best_metric="accuracy",
                      learning_rate=2e-3, warmup_steps=100, evaluations=1)
  if args.variant == "test":
    c.data.image_size = 32
    c.data.synthetic_train_size = 64
    c.data.synthetic_eval_size = 16
    config_base.few_step_run(c)
    c.num_train_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
  return c
