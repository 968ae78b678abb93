r"""Car-body damage, multi-label: U-Net on a MobileNetV2 (or EfficientNet-B0)
encoder, a sigmoid per class, and a global damage classifier.

  python -m vq.main --config=configs/unet_damage.py --workdir=/tmp/vq/damage

Classes scratch, dent and spacing from polygon annotations (embedded painted
panels by default); the image head predicts damage_level. At inference each
class has its threshold and minimum area; the thin classes (scratch, spacing)
are refined by a guided filter, the dent is thresholded as is.

Variants (after the colon):
  default                 MobileNetV2 alpha 0.35 at 128x128, 2-core CPU.
  encoder=efficientnet_b0 the other published encoder.
  head=only               the damage classifier trained on its own.
  variant=full            alpha 1.0 at 256x256, batch 16.
  variant=test            a few steps at 64x64 for tests.
  data=polygon_json       photos in the polygon JSON format
                          (data.train_path=annotations.json,
                          data.image_dir=images; an 8:1:1 stratified split
                          by data.split_seed): trained on 128x128 crops at
                          native resolution, 80 % of them centred on damage,
                          Dice over the batch, a crop's damage label from
                          the scratch and dent in it, a max-pooled damage
                          head; evaluated on whole photos at
                          data.image_size, which should be the photos' own
                          size (multiples of 32; 256x320 by default).
"""
from vq import config_base
from vq.data.embedded import synthetic_car
from vq.tasks import segmentation


def get_config(arg=None):
  args = config_base.parse_arg(arg, variant=("default", "full", "test"),
                              encoder=("mobilenet_v2", "efficientnet_b0"),
                              head=("joint", "only"),
                              data=("synthetic", "polygon_json"))
  c = config_base.trainer_config()
  c.update(segmentation.default_config())
  c.task = "segmentation"
  c.data.source = "synthetic_car"
  c.data.class_names = synthetic_car.CLASS_NAMES
  c.data.image_size = (128, 128)
  c.model.architecture = "encoder_unet"
  c.model.encoder = args.encoder
  c.model.alpha = 0.35
  c.model.decoder_widths = (64, 32, 24, 16, 16)
  c.model.image_head = True
  c.loss.name = "bce_dice"
  c.loss.image_weight = 0.2
  c.eval.thresholds = (0.5, 0.5, 0.5)
  c.eval.min_areas = (10, 20, 10)
  c.eval.refine = ("scratch", "spacing")
  c.eval_batch_size = 32
  config_base.set_run(c, batch_size=8, num_train_steps=1800,
                      best_metric="miou",
                      learning_rate=3e-3, warmup_steps=50)

  if args.data == "polygon_json":
    # Thin scratches shrink to a pixel in resized photos, and per-image
    # Dice pushes classes absent from most photos to zero.
    c.data.source = "polygon_json"
    c.data.image_size = (256, 320)
    c.data.crop_size = (128, 128)
    c.data.defect_crop_share = 0.8
    c.loss.dice_over = "batch"
    c.data.label_classes = ("scratch", "dent")  # a crop of a gap is clean
    # Max-pooled: damage learnt on a crop weighs the same on a whole photo.
    c.model.image_pool = "max"
    c.eval_batch_size = 8

  if args.head == "only":
    c.loss.mask_weight = 0.0
    c.loss.image_weight = 1.0

  if args.variant == "full":
    c.batch_size = 16
    c.data.image_size = (256, 256)
    c.model.alpha = 1.0
    c.model.decoder_widths = (256, 128, 64, 32, 16)
    c.num_train_steps = 20000
    c.eval_every_steps = 2000
    c.checkpoint_every_steps = 2000
    c.optimizer.learning_rate = 1e-3
  elif args.variant == "test":
    c.data.image_size = (64, 64)
    c.model.decoder_widths = (8, 8, 8, 8, 8)
    c.data.synthetic_train_size = 64
    c.data.synthetic_eval_size = 16
    config_base.few_step_run(c)
  return c
