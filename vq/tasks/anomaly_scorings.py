"""The anomaly task's scorings (`eval.scoring`), behind one function:
`predict(scoring, ...)` -> each image's {'score', 'map'}.

  baseline        DRAEM's map; the score its maximum averaged over
                  eval.baseline_window (the DRAEM paper's).
  filtered        the map filtered (unsharp / Laplacian, `vq.ops.
  filtered_ratio  anomaly_scoring`); the score its strided maximum, or
                  maximum over minimum.
  memory          a memory of the category's training images (Gabor
                  energies or ImageNet patch features, `anomaly_memory`);
                  the score the memory map's maximum over eval.memory.
                  window, times PatchCore's weight with eval.memory.
                  neighbours.
  fused           the memory's map plus DRAEM's where it rises above its
                  level on normal images, each in units of its scale.
"""
import jax.numpy as jnp

from vq.ops import anomaly_scoring

NETWORK_SCORINGS = ("baseline", "filtered", "filtered_ratio")
MEMORY = "memory"  # the memory's map alone
FUSED = "fused"    # the memory's map plus DRAEM's excess over its scale
MEMORY_SCORINGS = (MEMORY, FUSED)
SCORINGS = NETWORK_SCORINGS + MEMORY_SCORINGS


def network_scores(maps, eval_config):
  """DRAEM's maps [N, H, W, 1] -> the filtered map and the image score of
  every network scoring ('score/baseline', ...)."""
  e = eval_config
  filtered = anomaly_scoring.filtered_map(
      maps, weights=tuple(e.filter_weights), noise_std=e.filter_noise,
      pool=e.filter_pool, mix=e.filter_mix)
  strided = dict(window=e.score_window, stride=e.score_stride)
  return {
      "filtered_map": filtered[..., 0],
      "score/baseline": anomaly_scoring.baseline_image_score(
          maps, e.baseline_window),
      "score/filtered": anomaly_scoring.strided_score(filtered, **strided),
      "score/filtered_ratio": anomaly_scoring.strided_score(
          filtered, ratio=True, **strided),
  }


def memory_scores(maps, weights, window):
  """The memory scorings' image scores: the maps' maxima averaged over
  `window`, times `weights`."""
  return anomaly_scoring.baseline_image_score(
      jnp.asarray(maps)[..., None], window) * weights


def predict(scoring, eval_config, network_map, memory=None, window=1,
            scales=None):
  """{'score' [N], 'map' [N, H, W]} of `scoring`.

  Args:
    scoring: one of SCORINGS.
    eval_config: the config's `eval` (the network scorings' settings).
    network_map: [N, H, W] DRAEM's map (at the memory's side under fused).
    memory: the memory scorings' (maps, image-score weights).
    window: the memory scorings' score window.
    scales: fused: {'draem_scale', 'memory_scale'}.
  """
  if scoring in MEMORY_SCORINGS:
    maps, weights = memory
    if scoring == FUSED:
      maps = anomaly_scoring.fused_map(network_map, maps, **scales)
      weights = jnp.ones_like(weights)
    return {"score": memory_scores(maps, weights, window), "map": maps}
  scores = network_scores(network_map[..., None], eval_config)
  return {"score": scores[f"score/{scoring}"],
          "map": (network_map if scoring == "baseline"
                  else scores["filtered_map"])}
