"""The segmentation models by config: which fields each architecture
reads, the module it builds, and the image sizes it accepts."""
from vq import config_base
from vq.models.deeplabv3 import DeepLabV3
from vq.models.unet import EncoderUNet, UNet
from vq.models.unet3plus import UNet3Plus

# Fields of config.model each architecture uses.
ARCHITECTURE_FIELDS = {
    "unet": ("widths", "skip_connections", "space_to_depth", "image_head",
             "image_head_per_class", "image_pool", "classification_guided"),
    "encoder_unet": ("encoder", "alpha", "decoder_widths", "image_head",
                     "image_head_per_class", "image_pool",
                     "classification_guided"),
    "unet3plus": ("widths", "cat_width", "classification_guided"),
    "deeplabv3": ("encoder", "widths", "alpha", "aspp_width", "aspp_rates"),
}


def build_model(m, outputs, image_classes, padding, frozen_bn_layers,
                depthwise):
  """The Flax module `model.architecture` names, from the config's `model`
  fields."""
  if m.architecture == "unet":
    return UNet(outputs, tuple(m.widths), m.skip_connections,
                image_classes=image_classes, image_pool=m.image_pool,
                space_to_depth=m.space_to_depth)
  encoder = dict(padding=padding, frozen_bn_layers=frozen_bn_layers,
                 depthwise=depthwise)
  if m.architecture == "encoder_unet":
    return EncoderUNet(outputs, m.encoder, m.alpha, tuple(m.decoder_widths),
                       image_classes=image_classes,
                       image_pool=m.image_pool, **encoder)
  if m.architecture == "unet3plus":
    return UNet3Plus(outputs, tuple(m.widths), m.cat_width)
  return DeepLabV3(outputs, m.encoder, tuple(m.widths), m.alpha,
                   m.aspp_width, tuple(m.aspp_rates), **encoder)


def size_multiple(m):
  """What the input height and width must be a multiple of: skip
  connections join each pooling level with the upsampled one below it."""
  if m.architecture == "unet":
    return 2 ** (len(m.widths) - 1) * m.space_to_depth
  if m.architecture == "encoder_unet":
    return 32
  return 1                        # unet3plus and deeplabv3 resize levels


def check_size(image_hw, m):
  """Refuses an image size the architecture's levels cannot join."""
  multiple = size_multiple(m)
  if any(v % multiple for v in image_hw):
    fitted = config_base.nearest_multiple(image_hw, multiple)
    raise config_base.ConfigError(
        f"data.image_size {image_hw} must be a multiple of {multiple} for "
        f"model.architecture={m.architecture!r} (its skip connections join "
        f"levels of 1/{multiple} the size); e.g. {fitted}")
