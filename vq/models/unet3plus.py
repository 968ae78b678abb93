"""U-Net 3+ (Huang et al., 2020): full-scale skip connections, deep
supervision and a classification-guided module."""
import flax.linen as nn
import jax.numpy as jnp

from vq.models.layers import ConvBN, resize_bilinear
from vq.models.unet import UNET_WIDTHS, PlainEncoder


def resize_to(x, hw):
  """Max-pools down or bilinearly upsamples `x` to spatial size `hw`."""
  h = x.shape[1]
  if hw[0] < h:
    f = h // hw[0]
    return nn.max_pool(x, window_shape=(f, f), strides=(f, f))
  if hw[0] > h:
    return resize_bilinear(x, hw)
  return x


class UNet3Plus(nn.Module):
  """U-Net 3+.

  Each decoder level gathers every encoder level (max-pooled down or
  upsampled) and every deeper decoder level, maps each to `cat_width`
  channels, concatenates and fuses them with a conv-BN-ReLU.

  Returns {"logits": full-resolution logits of the shallowest decoder level,
  "deep_logits": [logits of every level, upsampled; shallowest first],
  "image_logits": [N, 1] defect-present logit of the classification-guided
  module}. With `classification_guided`, inference multiplies the logits'
  probabilities by the module's decision (the task does that).
  """
  num_classes: int
  widths: tuple = UNET_WIDTHS
  cat_width: int = 64
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, x, train: bool = False):
    size = x.shape[1:3]
    encoder = PlainEncoder(self.widths, name="encoder")(x, train)
    levels = len(self.widths)
    fused = len(self.widths) * self.cat_width
    decoder = {levels - 1: encoder[-1]}
    for i in range(levels - 2, -1, -1):
      hw = encoder[i].shape[1:3]
      parts = []
      for j in range(levels):
        src = encoder[j] if j <= i else decoder[j]
        parts.append(ConvBN(self.cat_width, activation=nn.relu,
                            name=f"d{i}_from{j}")(resize_to(src, hw), train))
      decoder[i] = ConvBN(fused, activation=nn.relu, name=f"d{i}_fuse")(
          jnp.concatenate(parts, -1), train)
    deep = []
    for i in range(levels):
      logits = nn.Conv(self.num_classes, (3, 3), name=f"side{i}")(decoder[i])
      deep.append(resize_to(logits, size))
    cls = nn.Dropout(self.dropout_rate, deterministic=not train)(encoder[-1])
    cls = nn.Conv(1, (1, 1), name="cgm")(cls)
    return {"logits": deep[0], "deep_logits": deep,
            "image_logits": jnp.max(cls, axis=(1, 2))}
