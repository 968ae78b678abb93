"""Texture-memory anomaly maps: a memory of normal local texture, no training.

Each pixel is described by the local energy of a bank of oriented Gabor
filters (quadrature pairs, several wavelengths), smoothed and on a log
scale: it says which orientations and scales the surface has around that
pixel, optionally with its local brightness and colour against the
image's own. The memory holds these descriptors sampled from normal images; a
test pixel's anomaly is its distance to the nearest one (PatchCore's
nearest-neighbour scoring, on fixed features instead of a pre-trained
network). A swirl or a pinch turns or stretches the surface's grain, which
changes the descriptor where colour and brightness do not change.

Near the image's edges the filters read mirrored pixels, and normal pixels
there lie farther from the memory than inside (2.5 times, on the edge, on
real textures): `border_rings` measures that rise on normal images outside
the memory, and dividing a map by its `border_level` puts an edge pixel's
normal level on a par with an inner one's.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from vq.models import layers
from vq.ops.filters import gaussian_window, separable_filter

GREY_WEIGHTS = (0.299, 0.587, 0.114)  # RGB -> grey, as OpenCV's
ASPECT = 0.7   # the Gabor envelope's y / x ratio
EPS = 1e-3     # inside the log


def gabor_kernel(wavelength, theta, phase, size):
  """float32 [size, size], laid out as OpenCV's getGaborKernel with
  sigma = wavelength / 2 and the envelope's aspect ASPECT."""
  half = size // 2
  y, x = np.mgrid[half:-half - 1:-1, half:-half - 1:-1].astype(np.float64)
  xr = x * np.cos(theta) + y * np.sin(theta)
  yr = -x * np.sin(theta) + y * np.cos(theta)
  sigma = wavelength / 2
  envelope = np.exp(-(xr ** 2 + ASPECT ** 2 * yr ** 2) / (2 * sigma ** 2))
  return (envelope * np.cos(2 * np.pi * xr / wavelength + phase)).astype(
      np.float32)


def gabor_bank(wavelengths, orientations):
  """[k, k, 1, 2 F] (HWIO): for each wavelength and orientation (F of them)
  the even (zero-mean) and the odd kernel, side k = 3 x the longest
  wavelength, rounded up to odd."""
  size = 2 * (int(1.5 * max(wavelengths)) | 1) + 1
  kernels = []
  for wavelength in wavelengths:
    for i in range(orientations):
      theta = np.pi * i / orientations
      even = gabor_kernel(wavelength, theta, 0.0, size)
      kernels += [even - even.mean(),
                  gabor_kernel(wavelength, theta, np.pi / 2, size)]
  return np.stack(kernels, -1)[:, :, None, :]


def _mirror_pad(images, radius):
  """[N, H, W, C] with `radius` mirrored pixels (OpenCV's default border)
  on each side."""
  return jnp.pad(images, ((0, 0), (radius, radius), (radius, radius),
                          (0, 0)), mode="reflect")


def gaussian_blur(images, sigma):
  """[N, H, W, C] -> the same, each channel blurred by a Gaussian of
  radius ceil(4 sigma), mirrored borders."""
  radius = int(np.ceil(4 * sigma))
  blurred = separable_filter(_mirror_pad(images, radius),
                             gaussian_window(2 * radius + 1, sigma))
  return blurred[:, radius:-radius, radius:-radius]


@functools.partial(jax.jit, static_argnames=("sigma", "colour"))
def texture_features(images, bank, sigma, colour=False):
  """uint8 or float RGB [N, H, W, 3] -> [N, H, W, F (+ 3)]: log of the
  smoothed local energy of each quadrature pair of `bank` (from
  `gabor_bank`), on the grey image standardised per image (so lighting does
  not count); with `colour`, also the smoothed standardised grey and two
  opponent colours (red - green, yellow - blue) less their image means, in
  units of the grey's standard deviation."""
  grey = jnp.tensordot(images.astype(jnp.float32), jnp.asarray(GREY_WEIGHTS),
                       axes=1)[..., None]
  mean = grey.mean(axis=(1, 2, 3), keepdims=True)
  std = grey.std(axis=(1, 2, 3), keepdims=True)
  grey = (grey - mean) / (std + 1e-6)
  radius = bank.shape[0] // 2
  responses = jax.lax.conv_general_dilated(
      _mirror_pad(grey, radius), jnp.asarray(bank), (1, 1), "VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  energy = jnp.sqrt(responses[..., 0::2] ** 2 + responses[..., 1::2] ** 2)
  features = jnp.log(gaussian_blur(energy, sigma) + EPS)
  if not colour:
    return features
  rgb = images.astype(jnp.float32)
  opponent = jnp.stack([(rgb[..., 0] - rgb[..., 1]) / np.sqrt(2),
                        (rgb[..., 0] + rgb[..., 1] - 2 * rgb[..., 2])
                        / np.sqrt(6)], -1)
  opponent = (opponent - opponent.mean(axis=(1, 2), keepdims=True)) / (
      std + 1e-6)
  local = gaussian_blur(jnp.concatenate([grey, opponent], -1), sigma)
  return jnp.concatenate([features, local], -1)


def feature_reach(bank, sigma):
  """How far (pixels) a pixel's descriptor reads: the bank's radius plus
  the energy blur's."""
  return bank.shape[0] // 2 + int(np.ceil(4 * sigma))


def distance_to_edge(height, width):
  """int [H, W]: each pixel's distance to the nearest image edge (0 on
  the edge)."""
  y = np.minimum(np.arange(height), np.arange(height)[::-1])
  x = np.minimum(np.arange(width), np.arange(width)[::-1])
  return np.minimum(y[:, None], x[None, :])


def border_rings(maps, margin):
  """Anomaly maps (a list of [N, H, W] or [H, W], shapes may differ) of
  normal images the memory does not hold -> float32 [margin']: for each
  ring of pixels d < margin' from the edge, the maps' mean there over
  their mean farther in, pooled over every map. `margin` is kept below a
  quarter of the shortest side, so an inside remains."""
  maps = [np.asarray(m, np.float64).reshape(-1, *np.shape(m)[-2:])
          for m in maps]
  margin = max(1, min([int(margin)] + [min(m.shape[1:]) // 4 for m in maps]))
  distances = [distance_to_edge(*m.shape[1:]) for m in maps]

  def mean_where(keep):
    values = np.concatenate([m[:, keep(d)].ravel()
                             for m, d in zip(maps, distances)])
    return max(values.mean(), 1e-12)

  inner = mean_where(lambda d: d >= margin)
  return np.array([mean_where(lambda d, k=k: d == k) / inner
                   for k in range(margin)], np.float32)


def border_level(rings, hw):
  """float32 [H, W]: `border_rings`' level on each edge ring of an `hw`
  map, 1 farther in (what the map is divided by)."""
  distance = distance_to_edge(*hw)
  rings = np.asarray(rings, np.float32)
  level = np.ones(distance.shape, np.float32)
  near = distance < len(rings)
  level[near] = rings[distance[near]]
  return level


def build_memory(features, stride, standardise=True):
  """[N, H, W, F] (or N of [H, W, F], shapes may differ) of normal images
  -> (memory [M, F] standardised per feature, mean [F], std [F]), sampled
  every `stride` pixels; without `standardise`, the features as they are
  (mean 0, std 1)."""
  sampled = np.concatenate([np.asarray(f)[::stride, ::stride].reshape(
      -1, f.shape[-1]) for f in features])
  if not standardise:
    f = sampled.shape[-1]
    return sampled, np.zeros(f, sampled.dtype), np.ones(f, sampled.dtype)
  mean = sampled.mean(0)
  std = sampled.std(0) + 1e-6
  return (sampled - mean) / std, mean, std


@functools.partial(jax.jit, static_argnames="block")
def nearest_distance(queries, memory, block=4096):
  """[Q, F], [M, F] -> [Q]: Euclidean distance to the nearest memory row
  (the memory scanned `block` rows at a time)."""
  m, f = memory.shape
  pad = -m % block
  # Padding rows far from everything are never the nearest.
  memory = jnp.concatenate([memory, jnp.full((pad, f), 1e6, memory.dtype)])
  blocks = memory.reshape(-1, block, f)
  q2 = jnp.sum(queries ** 2, -1)

  def step(best, rows):
    d = q2[:, None] - 2 * queries @ rows.T + jnp.sum(rows ** 2, -1)[None]
    return jnp.minimum(best, d.min(1)), None

  best, _ = jax.lax.scan(step, jnp.full(q2.shape, jnp.inf), blocks)
  return jnp.sqrt(jnp.maximum(best, 0.0))


def _squared_distances(a, b):
  """[A, F], [B, F] -> [A, B] squared Euclidean distances."""
  return jnp.maximum(jnp.sum(a ** 2, -1)[:, None] - 2 * a @ b.T +
                     jnp.sum(b ** 2, -1)[None], 0.0)


@functools.partial(jax.jit, static_argnames="neighbours")
def patchcore_weights(queries, raw_maps, memory, neighbours):
  """PatchCore's image-score weights (Roth et al. 2022, eq. 7): per image,
  its patch farthest from the memory (query q, nearest memory row m*), and
  the `neighbours` memory rows nearest m* (m* among them), N:
  1 - exp(|q - m*|) / sum over n in N of exp(|q - n|), in [0, 1). Near 0
  when m* lies among close neighbours that q is about as far from (a
  dense, well-known region: the distance says less); larger when q is
  closer to m* than to its neighbours (a rare normal patch).

  Args:
    queries: [N, h, w, F] standardised features (those of `raw_maps`).
    raw_maps: [N, h, w] their distances to the memory.
    memory: [M, F].
  """
  n, h, w, f = queries.shape
  worst = jnp.argmax(raw_maps.reshape(n, h * w), 1)
  q = queries.reshape(n, h * w, f)[jnp.arange(n), worst]          # [N, F]
  star = jnp.argmin(_squared_distances(q, memory), 1)             # [N]
  _, support = jax.lax.top_k(-_squared_distances(memory[star], memory),
                             min(neighbours, memory.shape[0]))    # [N, b]
  to_support = jnp.sqrt(jnp.sum((q[:, None] - memory[support]) ** 2, -1))
  to_star = jnp.sqrt(jnp.sum((q - memory[star]) ** 2, -1))
  return 1 - jnp.exp(to_star - jax.nn.logsumexp(to_support, 1))


def queries_of(features, mean, std, stride=1):
  """[N, H, W, F] -> the standardised features the memory is searched with
  (averaged over stride x stride blocks)."""
  return (layers.block_mean(features, stride) - mean) / std


def anomaly_maps(features, memory, mean, std, stride=1):
  """[N, H, W, F] -> [N, H, W]: each pixel's distance to the memory; with
  `stride` > 1, that of the features averaged over stride x stride blocks,
  enlarged back bilinearly (stride^2 times fewer searches)."""
  n, h, w, f = features.shape
  queries = queries_of(features, mean, std, stride)
  maps = nearest_distance(queries.reshape(-1, f), memory).reshape(
      n, h // stride, w // stride, 1)
  if stride == 1:
    return maps[..., 0]
  return layers.resize_bilinear(maps, (h, w))[..., 0]
