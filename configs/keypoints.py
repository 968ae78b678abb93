r"""Adhesive-bead keypoints: MobileNetV2 features + regression head.

  python -m vq.main --config=configs/keypoints.py --workdir=/tmp/vq/kp

Variants (after the colon):
  default        alpha 0.35 at 96x96, sized for a 2-core CPU.
  frozen=1       the backbone frozen (zero updates, BatchNorm on running
                 statistics): the study's ablation.
  variant=full   alpha 1.0 at 224x224 (with model.backbone_weights naming an
                 ImageNet Keras .h5 or torchvision .pth file).
  variant=test   a few steps at 32x32 for tests.

ImageNet features with no file to fetch: --config.model.backbone=
efficientnet_lite0 --config.model.backbone_weights=efficientnet_lite0_imagenet
(the weights' padding and input scaling follow).
"""
from vq import config_base
from vq.tasks import keypoints


def get_config(arg=None):
  args = config_base.parse_arg(arg, variant=("default", "full", "test"),
                              frozen=False)
  c = config_base.trainer_config()
  c.update(keypoints.default_config())
  c.task = "keypoints"
  config_base.set_run(c, batch_size=32, num_train_steps=2000,
                      best_metric="mean_error_px",
                      best_metric_mode="min",
                      learning_rate=2e-3, warmup_steps=100)
  if args.frozen:
    c.freeze = ("^backbone/",)
  if args.variant == "full":
    c.model.alpha = 1.0
    c.data.image_size = 224
    c.batch_size = 16
    c.num_train_steps = 20000
    c.optimizer.learning_rate = 1e-3
  elif args.variant == "test":
    c.data.image_size = 32
    c.data.synthetic_train_size = 64
    c.data.synthetic_eval_size = 16
    config_base.few_step_run(c)
  return c


# launch/ablation.py runs these variants side by side.
ABLATION = {
    "fine_tuned": {},
    "frozen": {"freeze": ("^backbone/",)},
}
