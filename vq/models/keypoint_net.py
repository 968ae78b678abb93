"""Keypoint networks on a MobileNetV2 (or EfficientNet) feature
extractor."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from vq.models.encoders import build_encoder
from vq.models.layers import UpConv2x2
from vq.models.mobilenet_v2 import MobileNetV2


def decode_heatmaps(heatmaps, offsets):
  """Best cell of each heatmap plus its offset -> normalised (x, y).

  heatmaps [B, h, w, K] (logits), offsets [B, h, w, K, 2] in cells from the
  cell centre. Returns [B, K, 2].
  """
  b, h, w, k = heatmaps.shape
  flat = heatmaps.reshape(b, h * w, k)
  best = jnp.argmax(flat, axis=1)  # [B, K]
  row, col = best // w, best % w
  off = jnp.take_along_axis(offsets.reshape(b, h * w, k, 2),
                            best[:, None, :, None], axis=1)[:, 0]
  x = (col + 0.5 + off[..., 0]) / w
  y = (row + 0.5 + off[..., 1]) / h
  return jnp.stack([x, y], axis=-1)


class KeypointNet(nn.Module):
  """MobileNetV2 without its classifier (or another `backbone` of
  vq.models.encoders: its stride-32 map), then one of two heads.

  'regression' (the study's): global average pooling -> dense -> ReLU ->
  dense to 2K -> sigmoid: keypoints as (x, y) normalised to the image.
  'heatmap' (as DeepLabCut): two 2x transposed convolutions take the stride-32
  features to stride 8, then per keypoint a score map (logits) and an (x, y)
  offset from each cell's centre, in cells; keypoints decode from the best
  cell.

  Returns a dict with 'keypoints' [B, K, 2] (normalised), and for the heatmap
  head 'heatmaps' [B, h, w, K] and 'offsets' [B, h, w, K, 2]. Parameters live
  under 'backbone/...' and 'head/...'.
  """
  num_keypoints: int
  backbone: str = "mobilenet_v2"
  alpha: float = 1.0
  padding: str = "keras"
  head: str = "regression"
  head_hidden: int = 256
  frozen_bn_layers: frozenset = frozenset()
  depthwise: str = "auto"

  @nn.compact
  def __call__(self, images, train: bool = False):
    if self.backbone == "mobilenet_v2":
      x = MobileNetV2(alpha=self.alpha, include_top=False,
                      padding=self.padding,
                      frozen_bn_layers=self.frozen_bn_layers,
                      depthwise=self.depthwise, name="backbone")(images, train)
    else:
      x = build_encoder(self.backbone, padding=self.padding,
                        frozen_bn_layers=self.frozen_bn_layers,
                        name="backbone", depthwise=self.depthwise)(images,
                                                                   train)[-1]
    k = self.num_keypoints
    if self.head == "regression":
      head = nn.Sequential([nn.Dense(self.head_hidden), nn.relu,
                            nn.Dense(2 * k)], name="head")
      out = jax.nn.sigmoid(head(x.mean(axis=(1, 2))))
      return {"keypoints": out.reshape(out.shape[0], k, 2)}
    if self.head != "heatmap":
      raise ValueError(f"head must be 'regression' or 'heatmap', got "
                       f"{self.head!r}")
    head = HeatmapHead(k, self.head_hidden, name="head")
    heatmaps, offsets = head(x)
    return {"keypoints": decode_heatmaps(heatmaps, offsets),
            "heatmaps": heatmaps, "offsets": offsets}


class HeatmapHead(nn.Module):
  num_keypoints: int
  features: int

  @nn.compact
  def __call__(self, x):
    for i in range(2):
      x = nn.relu(UpConv2x2(self.features, name=f"up{i}")(x))
    k = self.num_keypoints
    heatmaps = nn.Conv(k, (1, 1), name="scores")(x)
    offsets = nn.Conv(2 * k, (1, 1), name="offsets")(x)
    return heatmaps, offsets.reshape(*offsets.shape[:3], k, 2)
