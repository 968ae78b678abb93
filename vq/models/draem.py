"""DRAEM (Zavrtanik et al., ICCV 2021): a reconstructive and a
discriminative sub-network for surface anomaly detection.

The layers follow the published code: 3x3 convolutions with biases, each
followed by BatchNorm and ReLU; bilinear x2 upsampling (corners aligned).
At the published widths the sub-networks have 69,048,579 and 28,374,146
trainable parameters.
"""
import flax.linen as nn
import jax.numpy as jnp

from vq.models.layers import depth_to_space, max_pool_2x2, space_to_depth


class ConvBNReLU(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x, train):
    x = nn.Conv(self.features, (3, 3), padding=1, name="conv")(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                     epsilon=1e-5, name="bn")(x)
    return nn.relu(x)


def _block(x, widths, train, name):
  for i, w in enumerate(widths):
    x = ConvBNReLU(w, name=f"{name}_{i}")(x, train)
  return x


def upsample_bilinear_aligned(x):
  """x2 bilinear upsampling with aligned corners (PyTorch align_corners=True)."""
  n, h, w, c = x.shape

  def axis_weights(size):
    pos = jnp.linspace(0.0, size - 1.0, 2 * size)
    lo = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, size - 1)
    hi = jnp.clip(lo + 1, 0, size - 1)
    return lo, hi, (pos - lo)[:, None]

  lo, hi, f = axis_weights(h)
  x = x[:, lo] * (1 - f[None, :, :, None]) + x[:, hi] * f[None, :, :, None]
  lo, hi, f = axis_weights(w)
  return x[:, :, lo] * (1 - f[None, None]) + x[:, :, hi] * f[None, None]


class ReconstructiveSubNetwork(nn.Module):
  """Encoder-decoder without skips: image -> reconstructed image.

  Encoder: 5 blocks of 2 conv-BN-ReLU at widths w, 2w, 4w, 8w, 8w with 2x2
  max-pooling between. Decoder: 4 stages of upsample -> conv-BN-ReLU, then 2
  conv-BN-ReLU (the second halving the width, down to w); a final 3x3 conv.
  """
  base_width: int = 128
  out_channels: int = 3

  @nn.compact
  def __call__(self, x, train: bool = False):
    w = self.base_width
    widths = (w, 2 * w, 4 * w, 8 * w, 8 * w)
    for i, width in enumerate(widths):
      if i:
        x = max_pool_2x2(x)
      x = _block(x, (width, width), train, f"enc{i}")
    for i, width in enumerate((8 * w, 4 * w, 2 * w, w)):
      x = ConvBNReLU(width, name=f"up{i}")(upsample_bilinear_aligned(x), train)
      x = _block(x, (width, max(width // 2, w)), train, f"dec{i}")
    return nn.Conv(self.out_channels, (3, 3), padding=1, name="out")(x)


class DiscriminativeSubNetwork(nn.Module):
  """U-Net on [image, reconstruction] (6 channels) -> 2 logits per pixel.

  Encoder: 6 blocks at widths w, 2w, 4w, 8w, 8w, 8w with 5 max-pools.
  Decoder: per stage upsample -> conv-BN-ReLU, concatenate the encoder skip,
  2 conv-BN-ReLU; a final 3x3 conv to 2 logits (normal, anomalous).
  """
  base_width: int = 64
  out_channels: int = 2

  @nn.compact
  def __call__(self, x, train: bool = False):
    w = self.base_width
    skips = []
    for i, width in enumerate((w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w)):
      if i:
        x = max_pool_2x2(x)
      x = _block(x, (width, width), train, f"enc{i}")
      skips.append(x)
    for i, width in enumerate((8 * w, 4 * w, 2 * w, w, w)):
      x = ConvBNReLU(width, name=f"up{i}")(upsample_bilinear_aligned(x), train)
      x = jnp.concatenate([x, skips[-2 - i]], axis=-1)
      x = _block(x, (width, width), train, f"dec{i}")
    return nn.Conv(self.out_channels, (3, 3), padding=1, name="out")(x)


class DRAEM(nn.Module):
  """Both sub-networks: image -> {reconstruction, logits}.

  The discriminative network sees [reconstruction, image] (the published
  order); softmax channel 1 of its logits is the anomaly map. With
  `space_to_depth` b > 1 both sub-networks run on b x b pixel blocks folded
  into channels and return full-resolution outputs (no pixel is lost, the
  cost is that of an image b times smaller).
  """
  reconstructive_width: int = 128
  discriminative_width: int = 64
  space_to_depth: int = 1

  @nn.compact
  def __call__(self, x, train: bool = False):
    b = self.space_to_depth
    fold = (lambda t: space_to_depth(t, b)) if b > 1 else (lambda t: t)
    unfold = (lambda t: depth_to_space(t, b)) if b > 1 else (lambda t: t)
    recon = unfold(ReconstructiveSubNetwork(
        self.reconstructive_width, x.shape[-1] * b * b,
        name="reconstructive")(fold(x), train))
    logits = unfold(DiscriminativeSubNetwork(
        self.discriminative_width, 2 * b * b, name="discriminative")(
            fold(jnp.concatenate([recon, x], -1)), train))
    return {"reconstruction": recon, "logits": logits}
