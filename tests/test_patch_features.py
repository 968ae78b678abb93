"""PatchCore's patch features and greedy coreset against independent
implementations (torch's pooling, a NumPy k-centre loop)."""
import jax
import jax.numpy as jnp
import numpy as np
import torch

from vq.ops import patch_features


def test_local_mean_is_torch_avg_pool():
  x = np.random.default_rng(0).normal(size=(2, 7, 5, 3)).astype(np.float32)
  expected = torch.nn.AvgPool2d(3, 1, 1)(
      torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
  np.testing.assert_allclose(patch_features._local_mean(jnp.asarray(x)),
                             expected, atol=1e-6)


def test_greedy_coreset_is_k_centre_greedy():
  rows = np.random.default_rng(1).normal(size=(300, 20)).astype(np.float32)
  chosen = np.asarray(patch_features.greedy_coreset(jnp.asarray(rows), 25,
                                                    dims=8, seed=3))
  # The same projection and first row, then the greedy rule in NumPy.
  key = jax.random.key(3)
  z = rows @ (np.asarray(jax.random.normal(key, (20, 8))) / np.sqrt(8))
  expected = [int(jax.random.randint(key, (), 0, 300, jnp.int32))]
  nearest = np.full(300, np.inf)
  while len(expected) < 25:
    nearest = np.minimum(nearest, ((z - z[expected[-1]]) ** 2).sum(1))
    expected.append(int(np.argmax(nearest)))
  np.testing.assert_array_equal(chosen, expected)
  assert len(set(chosen.tolist())) == 25


def test_anomaly_task_scores_with_an_imagenet_patch_memory(tmp_path):
  """eval.memory.features=efficientnet_lite0: the memory is a coreset of
  the training images' patch features as they are (drawn with the run's
  seed); a map is each patch's distance to its nearest row (brute force
  here), enlarged bilinearly, blurred (OpenCV) and divided by the border
  level; the image score its maximum (window 1)."""
  import cv2  # pylint: disable=g-import-not-at-top
  from configs import draem  # pylint: disable=g-import-not-at-top
  from vq.data import anomaly as anomaly_data  # pylint: disable=g-import-not-at-top
  from vq.tasks.anomaly import AnomalyTask  # pylint: disable=g-import-not-at-top
  config = draem.get_config("variant=test,category=brick,scoring=memory")
  config.data.cache_dir = str(tmp_path / "cache")
  config.eval.memory.update(features="efficientnet_lite0", image_size=64,
                            stride=1, map_stride=1, images=4, coreset=0.5,
                            blur=2.0, window=1)
  config.eval.reference_images = 2
  config.seed = 5  # draws the coreset's projection
  task = AnomalyTask(config)
  data = task.datasets()
  memory = task.texture.memory_for("brick", data)
  images = anomaly_data.normal_images(data, "brick", 6, 32, 64, "linear")
  features = np.asarray(task.texture.features(images))
  assert features.shape == (6, 8, 8, 152)
  rows = features[:4].reshape(-1, 152)
  assert len(memory.rows) == 128
  np.testing.assert_array_equal(memory.rows, rows[np.asarray(
      patch_features.greedy_coreset(jnp.asarray(rows), 128, seed=5))])

  def brute_force_maps(x):
    q = x.reshape(-1, 152)
    d = np.sqrt(((q[:, None] - memory.rows[None]) ** 2).sum(-1)).min(1)
    return np.stack([
        cv2.GaussianBlur(cv2.resize(m, (64, 64),
                                    interpolation=cv2.INTER_LINEAR),
                         (17, 17), 2.0, borderType=cv2.BORDER_REFLECT_101)
        for m in d.reshape(-1, 8, 8).astype(np.float32)])

  test = np.stack([data.eval_transform(data.eval[i])["image"]
                   for i in range(0, len(data.eval), 7)])
  expected = brute_force_maps(np.asarray(task.texture.features(test)))
  level = memory.border_level((64, 64))
  assert level.shape == (64, 64) and level.min() > 0
  np.testing.assert_allclose(task.texture.maps(test, "brick"),
                             expected / level, rtol=1e-4, atol=1e-4)
  task.calibration = {"brick": {"threshold": 1.0, "score_min": 0.0,
                                "score_max": 2.0}}
  task.select_category("brick")
  out = jax.device_get(task.postprocess({"map": None}, test))
  np.testing.assert_allclose(out["score"], (expected / level).max((1, 2)),
                             rtol=1e-4)
  # PatchCore's reweighting (eval.memory.neighbours), as anomalib writes
  # it: the worst patch's distances to the rows nearest its match m*
  # (m* first), 1 - their softmax at m*.
  task.config.eval.memory.neighbours = 3
  weights = []
  for q in np.asarray(task.texture.features(test)).reshape(len(test), -1,
                                                           152):
    d = np.sqrt(((q[:, None] - memory.rows[None]) ** 2).sum(-1))
    worst = d.min(1).argmax()
    star = d[worst].argmin()
    support = np.argsort(((memory.rows - memory.rows[star]) ** 2).sum(1))[:3]
    assert support[0] == star
    to_support = d[worst][support].astype(np.float64)
    weights.append(1 - np.exp(to_support[0]) / np.exp(to_support).sum())
  assert 0 < min(weights) and max(weights) < 1
  out = jax.device_get(task.postprocess({"map": None}, test))
  np.testing.assert_allclose(
      out["score"], (expected / level).max((1, 2)) * np.array(weights),
      rtol=1e-4)


def test_a_lite2_memory_reads_lite2_weights(tmp_path):
  """eval.memory.features names the encoder, eval.memory.weights its
  weights: Lite2's patches have 48 + 120 features; features and weights of
  different encoders are refused before any image is read."""
  import pytest  # pylint: disable=g-import-not-at-top
  from configs import draem  # pylint: disable=g-import-not-at-top
  from vq import config_base  # pylint: disable=g-import-not-at-top
  from vq.tasks.anomaly import AnomalyTask  # pylint: disable=g-import-not-at-top
  config = draem.get_config("variant=test,category=brick,scoring=patchcore")
  config.data.cache_dir = str(tmp_path / "cache")
  config.eval.memory.features = "efficientnet_lite2"
  with pytest.raises(config_base.ConfigError,
                     match="features=efficientnet_lite2 reads the weights "
                     "efficientnet_lite2_imagenet, got eval.memory.weights="
                     "efficientnet_lite0_imagenet"):
    AnomalyTask(config)
  config.eval.memory.weights = "efficientnet_lite2_imagenet"
  task = AnomalyTask(config)
  images = np.zeros((2, 32, 48, 3), np.uint8)
  assert task.texture.features(images).shape == (2, 4, 6, 168)
