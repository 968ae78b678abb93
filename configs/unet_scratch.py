r"""Binary scratches: U-Net with Dice loss; U-Net 3+ and DeepLabV3 selectable.

  python -m vq.main --config=configs/unet_scratch.py --workdir=/tmp/vq/scratch

Variants (after the colon, comma-separated):
  default            U-Net widths 8..128 at 96x96, Dice loss, 2-core CPU.
  model=unet3plus    U-Net 3+: full-scale skips, deep supervision, the
                     classification-guided module (Dice loss).
  model=deeplabv3    DeepLabV3 (ASPP) with binary cross-entropy.
  variant=test       a few steps at 32x32 for tests.
Options the source project tried, as config fields: data.grayscale=True,
data.remove_highlights=True, optimizer.name=rmsprop, optimizer.schedule=
constant | cosine | cosine_restarts | step.
Real data: data.source=mask_folder with data.image_dir, data.mask_dir,
data.eval_image_dir, data.eval_mask_dir.
"""
from vq import config_base
from vq.tasks import segmentation


def get_config(arg=None):
  args = config_base.parse_arg(arg, variant=("default", "test"),
                              model=("unet", "unet3plus", "deeplabv3"))
  c = config_base.trainer_config()
  c.update(segmentation.default_config())
  c.task = "segmentation"
  c.data.source = "synthetic_scratch"
  c.data.class_names = ("scratch",)
  c.data.image_size = (96, 96)
  c.model.widths = (8, 16, 32, 64, 128)
  c.loss.name = "dice"
  c.eval.min_areas = (10,)
  c.eval.defect_min_area = 10
  c.eval_batch_size = 32
  config_base.set_run(c, batch_size=16, num_train_steps=1500,
                      best_metric="miou",
                      learning_rate=3e-3, warmup_steps=50)

  if args.model == "unet3plus":
    c.model.architecture = "unet3plus"
    c.model.cat_width = 8
    c.model.classification_guided = True
  elif args.model == "deeplabv3":
    c.model.architecture = "deeplabv3"
    c.model.encoder = "plain"
    c.model.aspp_width = 64
    c.loss.name = "bce"

  if args.variant == "test":
    c.data.image_size = (32, 32)
    c.model.widths = (4, 8, 16)
    if args.model == "deeplabv3":
      c.model.aspp_width = 8
      c.model.aspp_rates = (1, 2, 3)
    c.data.synthetic_train_size = 64
    c.data.synthetic_eval_size = 16
    config_base.few_step_run(c)
    c.eval.min_areas = (0,)
    c.eval.defect_min_area = 5
  return c
