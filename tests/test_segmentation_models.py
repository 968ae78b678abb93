"""Segmentation models: published parameter counts, decoder counts computed
layer by layer, output shapes."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vq.models.deeplabv3 import DeepLabV3
from vq.models.efficientnet import EfficientNetB0
from vq.models.mobilenet_v2 import MobileNetV2
from vq.models.unet import EncoderUNet, UNet, image_head
from vq.models.unet3plus import UNet3Plus


def n_params(model, size=64):
  v = jax.eval_shape(lambda: model.init(
      {"params": jax.random.key(0), "dropout": jax.random.key(1)},
      jnp.zeros((1, size, size, 3))))
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(v["params"])))


def conv(k, c_in, c_out, bias=False):
  return k * k * c_in * c_out + (c_out if bias else 0)


def conv_bn(k, c_in, c_out):
  return conv(k, c_in, c_out) + 2 * c_out


def double_conv(c_in, c_out):
  return conv_bn(3, c_in, c_out) + conv_bn(3, c_out, c_out)


UNET_ENCODER = sum(double_conv(a, b) for a, b in zip(
    (3, 64, 128, 256, 512), (64, 128, 256, 512, 1024)))


def test_encoder_counts():
  assert n_params(MobileNetV2(feature_maps=True)) == 2_223_872
  # Keras EfficientNetB0: 5,330,571 parameters, 42,023 of them
  # non-trainable; without the top 4,007,548 trainable.
  assert n_params(EfficientNetB0()) == 5_288_548
  assert n_params(EfficientNetB0(feature_maps=True)) == 4_007_548
  assert n_params(EfficientNetB0(include_top=False)) == 4_007_548


def test_unet_published_count():
  # The common PyTorch U-Net (bilinear=False, 3 -> 1 channels).
  assert n_params(UNet(1)) == 31_037_633
  decoder = sum(conv(2, 2 * w, w, bias=True) + double_conv(2 * w, w)
                for w in (512, 256, 128, 64))
  assert UNET_ENCODER + decoder + conv(1, 64, 1, bias=True) == 31_037_633
  plain = n_params(UNet(1, skip_connections=False))
  assert plain == 31_037_633 - sum(9 * w * w for w in (512, 256, 128, 64))


@pytest.mark.parametrize("encoder,count,channels", [
    ("mobilenet_v2", 2_223_872, (16, 24, 32, 96, 1280)),
    ("efficientnet_b0", 4_007_548, (16, 24, 40, 112, 1280)),
])
def test_encoder_unet_count(encoder, count, channels):
  widths = (256, 128, 64, 32, 16)
  skips = channels[-2::-1] + (0,)
  c_in = (channels[-1],) + widths[:-1]
  decoder = sum(double_conv(i + s, w) for i, s, w in zip(c_in, skips, widths))
  head = conv(3, 16, 2, bias=True)
  assert n_params(EncoderUNet(2, encoder=encoder)) == count + decoder + head
  assert n_params(EncoderUNet(2, encoder=encoder, image_classes=1)) == (
      count + decoder + head + channels[-1] + 1)


def test_unet3plus_count():
  cat, levels = 64, (64, 128, 256, 512, 1024)
  decoder = 0
  for i in range(4):
    sources = [levels[j] if j <= i else (1024 if j == 4 else 5 * cat)
               for j in range(5)]
    decoder += sum(conv_bn(3, c, cat) for c in sources)
    decoder += conv_bn(3, 5 * cat, 5 * cat)
  sides = 4 * conv(3, 5 * cat, 1, bias=True) + conv(3, 1024, 1, bias=True)
  cgm = conv(1, 1024, 1, bias=True)
  expected = UNET_ENCODER + decoder + sides + cgm
  assert n_params(UNet3Plus(1)) == expected
  assert round(expected / 1e6, 2) == 26.98  # the paper reports 26.97M


def test_deeplabv3_count():
  aspp = (conv_bn(1, 1024, 256) + 3 * conv_bn(3, 1024, 256) +
          conv_bn(1, 1024, 256) + conv_bn(1, 5 * 256, 256))
  head = conv_bn(3, 256, 256) + conv(1, 256, 3, bias=True)
  assert n_params(DeepLabV3(3)) == UNET_ENCODER + aspp + head


@pytest.mark.parametrize("model", [
    UNet(3, widths=(4, 8, 16)),
    UNet(3, widths=(4, 8, 16), skip_connections=False, image_classes=1),
    UNet(3, widths=(4, 8, 16), space_to_depth=2),
    EncoderUNet(3, alpha=0.35, decoder_widths=(8, 8, 8, 8, 8)),
    UNet3Plus(3, widths=(4, 8, 16), cat_width=4),
    DeepLabV3(3, widths=(4, 8, 16), aspp_width=8, rates=(1, 2)),
    DeepLabV3(3, encoder="mobilenet_v2", alpha=0.35, aspp_width=8),
])
def test_output_shapes(model):
  x = jnp.zeros((2, 32, 64, 3))
  v = jax.eval_shape(lambda: model.init(
      {"params": jax.random.key(0), "dropout": jax.random.key(1)}, x))
  out = jax.eval_shape(model.apply, v, x)
  assert out["logits"].shape == (2, 32, 64, 3)
  if "image_logits" in out:
    assert out["image_logits"].shape == (2, 1)


def test_encoder_unet_rejects_indivisible_size():
  with pytest.raises(ValueError, match="divisible by 32, got 48x64"):
    jax.eval_shape(lambda: EncoderUNet(1).init(jax.random.key(0),
                                               jnp.zeros((1, 48, 64, 3))))


@pytest.mark.parametrize("shape,hw", [((2, 4, 6, 3), (16, 24)),
                                      ((1, 5, 5, 2), (7, 3)),
                                      ((1, 8, 8, 1), (2, 4))])
def test_resize_bilinear_equals_jax_image_resize(shape, hw):
  from vq.models.layers import resize_bilinear
  x = jax.random.normal(jax.random.key(0), shape)
  expected = jax.image.resize(x, (shape[0], *hw, shape[-1]), "bilinear",
                              antialias=False)
  np.testing.assert_allclose(resize_bilinear(x, hw), expected, atol=1e-5)


def test_space_to_depth_matches_tensorflow_and_inverts():
  import tensorflow as tf
  from vq.models.layers import depth_to_space, space_to_depth
  x = np.random.default_rng(0).normal(size=(2, 6, 10, 3)).astype(np.float32)
  folded = space_to_depth(jnp.asarray(x), 2)
  np.testing.assert_array_equal(folded, tf.nn.space_to_depth(x, 2).numpy())
  np.testing.assert_array_equal(
      depth_to_space(folded, 2), tf.nn.depth_to_space(folded, 2).numpy())
  np.testing.assert_array_equal(depth_to_space(folded, 2), x)
  with pytest.raises(ValueError, match="divisible by 2, got 5x10"):
    space_to_depth(jnp.asarray(x[:, :5]), 2)


def test_space_to_depth_unet_params():
  # The first convolution sees 4 x 3 channels; the head gives 4 logits per
  # class, one per pixel of each 2x2 block.
  plain, folded = UNet(2, widths=(4, 8)), UNet(2, widths=(4, 8),
                                                 space_to_depth=2)
  assert n_params(folded) - n_params(plain) == (
      conv(3, 12, 4) - conv(3, 3, 4) + conv(1, 4, 8, bias=True)
      - conv(1, 4, 2, bias=True))


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_the_image_head_pools_a_spot_by_its_rule(pool):
  """Max pooling gives a defect the same weight on a strip three times the
  crop's width; the mean thins it out."""

  class Head(nn.Module):
    @nn.compact
    def __call__(self, x):
      return image_head(x, 1, pool)

  crop = np.zeros((1, 4, 4, 8), np.float32)
  crop[0, 1, 2] = 3.0
  strip = np.concatenate([crop, np.zeros((1, 4, 8, 8), np.float32)], 2)
  params = Head().init(jax.random.PRNGKey(0), crop)
  bias = params["params"]["image_head"]["bias"]
  on_crop, on_strip = (Head().apply(params, x) - bias for x in (crop, strip))
  if pool == "max":
    np.testing.assert_allclose(on_strip, on_crop, rtol=1e-6)
  else:
    np.testing.assert_allclose(on_strip, on_crop / 3, rtol=1e-6)
