"""Keypoint regression on a MobileNetV2 feature extractor."""
import flax.linen as nn
import jax

from vq.models.mobilenet_v2 import MobileNetV2


class KeypointRegressor(nn.Module):
  """MobileNetV2 without its classifier, then a regression head.

  The head (the study's): global average pooling -> dense -> ReLU -> dense
  to 2K values -> sigmoid: keypoints as (x, y) normalised to the image.
  Parameters live under 'backbone/...' and 'head/...'.
  """
  num_keypoints: int
  alpha: float = 1.0
  padding: str = "keras"
  head_hidden: int = 256
  frozen_bn_layers: frozenset = frozenset()

  @nn.compact
  def __call__(self, images, train: bool = False):
    x = MobileNetV2(alpha=self.alpha, include_top=False, padding=self.padding,
                    frozen_bn_layers=self.frozen_bn_layers,
                    name="backbone")(images, train)
    x = x.mean(axis=(1, 2))
    head = nn.Sequential([nn.Dense(self.head_hidden), nn.relu,
                          nn.Dense(2 * self.num_keypoints)], name="head")
    x = jax.nn.sigmoid(head(x))
    return x.reshape(x.shape[0], self.num_keypoints, 2)
