"""The texture-memory scoring: Gabor kernels and features against OpenCV,
nearest distances against scikit-learn, a turned patch found, and the
anomaly task's evaluation and prediction with eval.scoring=memory."""
import os
import sys

import cv2
import jax
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from vq import export
from vq.data import anomaly as anomaly_data
from vq.data import pipeline
from vq.predict import load_exported
from vq.ops import texture_memory
from vq.tasks.anomaly import AnomalyTask

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import draem  # noqa: E402


@pytest.mark.parametrize("wavelength,theta", [(3.0, 0.0), (6.0, 1.1),
                                              (4.5, np.pi * 7 / 8)])
def test_gabor_kernels_equal_opencv(wavelength, theta):
  size = 15
  for phase in (0.0, np.pi / 2):
    expected = cv2.getGaborKernel((size, size), wavelength / 2, theta,
                                  wavelength, texture_memory.ASPECT, phase,
                                  cv2.CV_64F)
    np.testing.assert_allclose(
        texture_memory.gabor_kernel(wavelength, theta, phase, size),
        expected, atol=1e-6)


def _opencv_features(rgb, wavelengths, orientations, sigma):
  """The features computed independently: OpenCV filters, mirrored
  borders (BORDER_REFLECT_101), NumPy elsewhere."""
  grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
  std = grey.std()
  grey = (grey - grey.mean()) / (std + 1e-6)
  size = 2 * (int(1.5 * max(wavelengths)) | 1) + 1
  radius = int(np.ceil(4 * sigma))
  out = []
  for wavelength in wavelengths:
    for i in range(orientations):
      theta = np.pi * i / orientations
      even, odd = (cv2.getGaborKernel((size, size), wavelength / 2, theta,
                                      wavelength, texture_memory.ASPECT, p,
                                      cv2.CV_64F) for p in (0, np.pi / 2))
      # filter2D correlates; the kernels are OpenCV's own layout.
      re = cv2.filter2D(grey, -1, even - even.mean())
      im = cv2.filter2D(grey, -1, odd)
      energy = np.sqrt(re ** 2 + im ** 2)
      blurred = cv2.GaussianBlur(energy, (2 * radius + 1,) * 2, sigma)
      out.append(np.log(blurred + texture_memory.EPS))
  r, g, b = np.moveaxis(rgb.astype(np.float64), -1, 0)
  for channel in (grey, (r - g) / np.sqrt(2), (r + g - 2 * b) / np.sqrt(6)):
    if channel is not grey:
      channel = (channel - channel.mean()) / (std + 1e-6)
    out.append(cv2.GaussianBlur(channel, (2 * radius + 1,) * 2, sigma))
  return np.stack(out, -1)


def test_features_equal_an_opencv_pipeline():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (2, 40, 36, 3), dtype=np.uint8)
  images[1] = cv2.GaussianBlur(images[1], (0, 0), 1.5)  # another texture
  bank = texture_memory.gabor_bank((3.0, 6.0), 4)
  got = np.asarray(texture_memory.texture_features(images, bank, 1.5,
                                                   colour=True))
  assert got.shape == (2, 40, 36, 11)
  texture_only = texture_memory.texture_features(images, bank, 1.5)
  np.testing.assert_array_equal(texture_only, got[..., :8])
  for i in range(2):
    # From float RGB: OpenCV rounds a uint8 image's grey to integers.
    rgb = images[i].astype(np.float32)
    np.testing.assert_allclose(
        got[i], _opencv_features(rgb, (3.0, 6.0), 4, 1.5), atol=2e-3)


def test_nearest_distance_equals_scikit_learn():
  rng = np.random.default_rng(1)
  memory = rng.normal(size=(1000, 16)).astype(np.float32)
  queries = rng.normal(size=(300, 16)).astype(np.float32)
  expected = NearestNeighbors(n_neighbors=1).fit(memory).kneighbors(
      queries)[0][:, 0]
  # A block that does not divide the memory: the padding is never nearest.
  got = texture_memory.nearest_distance(queries, memory, block=384)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_strided_maps_search_block_means_and_enlarge_bilinearly():
  """map_stride 2: the distance of each 2x2 block's mean feature to the
  memory (scikit-learn), enlarged by OpenCV's bilinear resize."""
  rng = np.random.default_rng(2)
  features = rng.normal(size=(2, 12, 16, 5)).astype(np.float32)
  memory, mean, std = texture_memory.build_memory(
      rng.normal(size=(3, 12, 16, 5)).astype(np.float32), stride=1)
  got = np.asarray(texture_memory.anomaly_maps(features, memory, mean, std,
                                               stride=2))
  blocks = features.reshape(2, 6, 2, 8, 2, 5).mean((2, 4))
  search = NearestNeighbors(n_neighbors=1).fit(np.asarray(memory))
  for image, expected_blocks in zip(got, blocks):
    distances = search.kneighbors(((expected_blocks - mean) / std).reshape(
        -1, 5))[0].reshape(6, 8).astype(np.float32)
    np.testing.assert_allclose(
        image, cv2.resize(distances, (16, 12),
                          interpolation=cv2.INTER_LINEAR),
        rtol=1e-4, atol=1e-4)


def _rings_over_inside(maps, margin):
  """The border level by explicit loops: each pixel's edge distance, the
  mean of every ring closer than `margin` over the mean of the rest."""
  _, h, w = maps.shape
  distance = np.array([[min(i, j, h - 1 - i, w - 1 - j) for j in range(w)]
                       for i in range(h)])
  inside = np.mean([m[i, j] for m in maps for i in range(h) for j in range(w)
                    if distance[i, j] >= margin])
  level = np.ones((h, w))
  for d in range(margin):
    ring = [m[i, j] for m in maps for i in range(h) for j in range(w)
            if distance[i, j] == d]
    level[distance == d] = np.mean(ring) / inside
  return level


@pytest.mark.parametrize("margin,used", [(3, 3), (9, 3)])
def test_the_border_level_is_each_edge_rings_mean_over_the_inside(margin,
                                                                  used):
  """A margin past a quarter of the shorter side (12 x 16: 3) is cut to
  it."""
  maps = np.random.default_rng(3).gamma(2.0, size=(3, 12, 16))
  got = texture_memory.border_level(
      texture_memory.border_rings([maps], margin), maps.shape[1:])
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, _rings_over_inside(maps, used), rtol=1e-5)


def _grating(size, period, angle, phase=0.0):
  y, x = np.mgrid[0:size, 0:size]
  t = x * np.cos(angle) + y * np.sin(angle)
  return 128 + 80 * np.sin(2 * np.pi * t / period + phase)


def test_a_turned_patch_of_a_striped_surface_stands_out():
  """Stripes of one orientation in memory; a test image whose centre disc
  has them turned by 90 degrees (same brightness and contrast) is far from
  the memory inside the disc only."""
  bank = texture_memory.gabor_bank((3.0, 6.0), 8)
  normals = np.stack([_grating(48, 5.0, 0.3, p) for p in (0.0, 1.0, 2.0)])
  normals = np.repeat(normals[..., None], 3, -1).astype(np.uint8)
  memory = texture_memory.build_memory(
      texture_memory.texture_features(normals, bank, 1.5), stride=2)
  test = _grating(48, 5.0, 0.3, 0.5)
  y, x = np.mgrid[0:48, 0:48]
  disc = (y - 24) ** 2 + (x - 24) ** 2 <= 8 ** 2
  test[disc] = _grating(48, 5.0, 0.3 + np.pi / 2, 0.5)[disc]
  test = np.repeat(test[..., None], 3, -1).astype(np.uint8)[None]
  maps = np.asarray(texture_memory.anomaly_maps(
      texture_memory.texture_features(test, bank, 1.5), *memory))[0]
  inner = (y - 24) ** 2 + (x - 24) ** 2 <= 4 ** 2
  outer = (y - 24) ** 2 + (x - 24) ** 2 >= 16 ** 2
  assert maps[inner].min() > 3 * maps[outer].max()


@pytest.mark.parametrize("field,value,message", [
    ("images", 0, "eval.memory.images must be a whole number >= 1, got 0"),
    ("wavelengths", (3.0, -1.0), "eval.memory.wavelengths"),
    ("sigma", 0.0, "eval.memory.sigma must be positive")])
def test_unusable_memory_settings_are_named(field, value, message):
  config = draem.get_config("variant=test,scoring=memory")
  config.eval.memory[field] = value
  with pytest.raises(ValueError, match=message):
    AnomalyTask(config)


def test_anomaly_task_scores_with_the_memory(tmp_path):
  """Evaluation reports the memory's image and pixel metrics (no network
  is run); prediction reads the category's training images and outlines
  pixels at or above its calibrated threshold."""
  config = draem.get_config("variant=test,category=brick,scoring=memory")
  config.data.cache_dir = str(tmp_path / "cache")
  config.eval.memory.images = 6
  task = AnomalyTask(config)
  data = task.datasets()
  variables = jax.eval_shape(task.init_variables, jax.random.key(0))
  results = []
  for batch in pipeline.eval_batches(data.eval, data.eval_transform, 16):
    inputs = {k: v for k, v in batch.items() if k != "batch_mask"}
    assert task.eval_step(variables, inputs) == {}  # the networks: not run
    results.append((batch, {}))
  scalars, pictures, _ = task.evaluate(results, data)
  rows = pictures["input_map_truth"]
  assert rows.shape[1:] == (32, 3 * 32, 3) and rows.dtype == np.uint8
  assert rows[:, :, 32:64].std() > 0  # the memory's heat map
  assert scalars["image_auroc"] == scalars["image_auroc/memory"]
  for name in ("pixel_auroc", "pixel_ap", "aupro"):  # the scoring's map's
    assert scalars[name] == scalars[f"{name}/memory"], name
  assert not any(k.endswith(("/draem", "/baseline", "/filtered"))
                 for k in scalars), sorted(scalars)
  for name in ("image_auroc/memory", "pixel_auroc/memory", "aupro/memory",
               "pixel_auroc", "brick/scratch/pixel_auroc"):
    assert 0.0 <= scalars[name] <= 1.0, name
  # The defects of the embedded set differ from the memory's texture.
  assert scalars["pixel_auroc/memory"] > 0.6

  predictor = AnomalyTask(config)
  predictor.calibration = predictor.calibrate(scalars)
  with pytest.raises(ValueError, match="none is built for .brick."):
    predictor.postprocess({"map": None}, results[0][0]["image"][:1])
  predictor.select_category("brick")
  images = results[0][0]["image"][:4]
  out = jax.device_get(predictor.postprocess({"map": None}, images))
  assert out["map"].shape == images.shape[:3]
  threshold = scalars["brick/threshold"]
  record = predictor.to_record(jax.tree.map(lambda x: x[0], out), (64, 64))
  assert predictor.region_level() == threshold
  expected_area = int(np.sum(cv2.resize(
      (out["map"][0] >= threshold).astype(np.uint8), (64, 64),
      interpolation=cv2.INTER_NEAREST)))
  assert record["region_area"] == expected_area
  assert record["decision"] == ("defective" if out["score"][0] >= threshold
                                else "good")


def test_memory_maps_are_divided_by_the_border_level_of_reference_images(
    tmp_path):
  """The memory holds a category's first eval.memory.images training
  images; the next eval.reference_images give the border level (32x32: a
  margin of 8), and every map is the distance to the memory over it. On
  the embedded textures the raw distance rises at the edge."""
  config = draem.get_config("variant=test,category=brick,scoring=memory")
  config.data.cache_dir = str(tmp_path / "cache")
  config.eval.memory.images = 4
  config.eval.reference_images = 3
  task = AnomalyTask(config)
  data = task.datasets()
  memory = task.texture.memory_for("brick", data)
  images = anomaly_data.normal_images(data, "brick", 7, 32, 32)
  features = task.texture.features(images)
  rows, mean, std = texture_memory.build_memory(np.asarray(features[:4]),
                                                config.eval.memory.stride)
  np.testing.assert_allclose(memory.rows, rows)
  raw = np.asarray(texture_memory.anomaly_maps(
      features, rows, mean, std, config.eval.memory.map_stride))
  level = _rings_over_inside(raw[4:], 8)
  np.testing.assert_allclose(memory.border_level(level.shape), level,
                             rtol=1e-4)
  assert level[0, :].mean() > 1.1
  np.testing.assert_allclose(task.texture.maps(images, "brick"), raw / level,
                             rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("memory_size,window", [(0, 5), (64, 9)])
def test_fused_scoring_scales_each_map_on_reference_images(
    tmp_path, memory_size, window):
  """eval.scoring=fused: the evaluation reads reference training images
  after the memory's, divides each map by its 0.99 quantile there, adds
  DRAEM's excess over 1 to the memory's and scores only the test images;
  prediction fuses with the calibrated scales. With eval.memory.image_size
  twice data.image_size the images are scored at 64x64 (the network's map
  enlarged, the window scaled). Expected values from NumPy, OpenCV and
  scikit-learn."""
  config = draem.get_config("variant=test,category=brick,scoring=fused")
  config.data.cache_dir = str(tmp_path / "cache")
  config.eval.memory.images = 4
  config.eval.memory.image_size = memory_size
  config.eval.reference_images = 3
  task = AnomalyTask(config)
  side = memory_size or 32
  assert task.input_shape == (side, side, 3)
  data = task.datasets()
  source = task.eval_source(data)
  assert len(source) == len(data.eval) + 3
  assert [int(source[len(data.eval) + i]["label"]) for i in range(3)] == \
      [-1] * 3
  # A known stand-in for the network's map: the red channel.
  variables = jax.eval_shape(task.init_variables, jax.random.key(0))
  results = []
  for batch in pipeline.eval_batches(source, data.eval_transform, 16):
    inputs = {k: v for k, v in batch.items() if k != "batch_mask"}
    shapes = jax.eval_shape(task.eval_step, variables, inputs)
    out = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    out["map"] = batch["image"][..., 0].astype(np.float32) / 255
    results.append((batch, out))
  scalars = task.evaluate(results, data).scalars
  assert results[0][0]["image"].shape[1:] == (side, side, 3)
  assert results[0][0]["mask"].shape[1:] == (side, side)

  keep = np.concatenate([b["batch_mask"] for b, _ in results])
  images = np.concatenate([b["image"] for b, _ in results])[keep]
  labels = np.concatenate([b["label"] for b, _ in results])[keep]
  masks = np.concatenate([b["mask"] for b, _ in results])[keep]
  draem_maps = images[..., 0].astype(np.float32) / 255
  memory_maps = np.asarray(task.texture.maps(images, "brick"))
  reference = labels < 0
  draem_scale = np.quantile(draem_maps[reference], 0.99)
  memory_scale = np.quantile(memory_maps[reference], 0.99)
  np.testing.assert_allclose(scalars["brick/draem_scale"], draem_scale,
                             rtol=1e-5)
  np.testing.assert_allclose(scalars["brick/memory_scale"], memory_scale,
                             rtol=1e-5)
  fused = memory_maps / memory_scale + np.maximum(
      draem_maps / draem_scale - 1, 0)
  assert 0 < np.mean(draem_maps > draem_scale) < 0.5  # both terms count
  scores = np.array([cv2.boxFilter(m, -1, (window, window),
                                   borderType=cv2.BORDER_CONSTANT).max()
                     for m in fused])
  test = ~reference
  np.testing.assert_allclose(
      scalars["image_auroc"], roc_auc_score(labels[test], scores[test]),
      atol=1e-6)
  np.testing.assert_allclose(
      scalars["pixel_auroc/fused"],
      roc_auc_score(masks[test].ravel(), fused[test].ravel()), atol=1e-6)
  np.testing.assert_allclose(
      scalars["pixel_auroc"],
      roc_auc_score(masks[test].ravel(), fused[test].ravel()), atol=1e-6)
  np.testing.assert_allclose(
      scalars["pixel_auroc/draem"],
      roc_auc_score(masks[test].ravel(), draem_maps[test].ravel()), atol=1e-6)

  predictor = AnomalyTask(config)
  predictor.select_category("brick")
  # The network's map comes at its own side, 32: enlarged bilinearly.
  network_maps = np.stack([cv2.resize(m, (32, 32), interpolation=cv2.INTER_AREA)
                           for m in draem_maps[:2]])
  with pytest.raises(ValueError, match="has none at this step"):
    predictor.postprocess({"map": network_maps}, images[:2])
  predictor.calibration = predictor.calibrate(scalars)
  out = jax.device_get(predictor.postprocess({"map": network_maps},
                                             images[:2]))
  enlarged = np.stack([cv2.resize(m, (side, side),
                                  interpolation=cv2.INTER_LINEAR)
                       for m in network_maps])
  expected = memory_maps[:2] / memory_scale + np.maximum(
      enlarged / draem_scale - 1, 0)
  np.testing.assert_allclose(out["map"], expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(out["score"], [
      cv2.boxFilter(m, -1, (window, window),
                    borderType=cv2.BORDER_CONSTANT).max() for m in expected],
                             rtol=1e-5)


def test_a_memory_image_size_the_network_cannot_shrink_from_is_named():
  config = draem.get_config("variant=test,scoring=fused")
  config.eval.memory.image_size = 48
  with pytest.raises(ValueError, match="eval.memory.image_size 48 must be a "
                     "whole multiple of data.image_size 32"):
    AnomalyTask(config)
  config.eval.memory.image_size = 0
  config.eval.memory.update(neighbours=9, map_stride=2)
  with pytest.raises(ValueError, match="eval.memory.neighbours .* needs "
                     "eval.memory.map_stride=1, got 2"):
    AnomalyTask(config)


def test_the_network_reads_an_area_shrink_of_the_scored_images():
  """At eval.memory.image_size = 2 x data.image_size the networks see the
  images as OpenCV's INTER_AREA shrinks them; their maps come back at the
  scored side."""
  config = draem.get_config("variant=test,scoring=fused")
  config.eval.memory.image_size = 64
  task = AnomalyTask(config)
  images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3),
                                             dtype=np.uint8)
  expected = np.stack([cv2.resize(i.astype(np.float32), (32, 32),
                                  interpolation=cv2.INTER_AREA)
                       for i in images]) / 255
  np.testing.assert_allclose(task.network_input(images), expected,
                             atol=1e-6)
  variables = jax.eval_shape(task.init_variables, jax.random.key(0))
  out = jax.eval_shape(task.eval_step, variables, {"image": images})
  assert out["map"].shape == out["filtered_map"].shape == (2, 64, 64)
  assert out["reconstruction"].shape == (2, 64, 64, 3)
  assert jax.eval_shape(task.forward, variables,
                        images)["map"].shape == (2, 32, 32)


def test_small_categories_split_their_images_between_memory_and_references():
  split = anomaly_data.reference_split
  assert split("a", 200, 40, 16) == (40, 16)
  assert split("a", 30, 40, 16) == (23, 7)
  assert split("a", 3, 40, 16) == (2, 1)
  with pytest.raises(ValueError, match="a: 1 training image.*at least 2"):
    split("a", 1, 40, 16)


def test_a_stablehlo_export_of_a_memory_scoring_names_its_category(
    monkeypatch, tmp_path):
  config = draem.get_config("variant=test,scoring=fused")
  task = AnomalyTask(config)
  monkeypatch.setattr(export.runs, "load_run",
                      lambda workdir, step, calibration: (
                          config, task, None, 4))
  with pytest.raises(ValueError, match=r"--category \(one of brick, grass, "
                     r"gravel\)"):
    export.export_run("RUN", "stablehlo", str(tmp_path / "m.stablehlo"))


@pytest.mark.slow  # compiles DRAEM and the memory into StableHLO (~30 s)
@pytest.mark.parametrize("scoring", ["fused", "patchcore"])
def test_a_stablehlo_export_carries_its_category_memory(monkeypatch,
                                                        tmp_path, scoring):
  """The Gabor memory fused with DRAEM's map, or the ImageNet Lite0 patch
  memory (its encoder compiled in with it)."""
  config = draem.get_config(f"variant=test,scoring={scoring}")
  config.data.cache_dir = str(tmp_path / "cache")
  config.eval.memory.images = 4
  task = AnomalyTask(config)
  variables = task.init_variables(jax.random.key(0))
  task.calibration = {"brick": {"threshold": 1.0, "score_min": 0.0,
                                "score_max": 2.0, "draem_scale": 0.5,
                                "memory_scale": 2.0}}
  monkeypatch.setattr(export.runs, "load_run",
                      lambda workdir, step, calibration: (
                          config, task, variables, 4))
  path = str(tmp_path / "m.stablehlo")
  assert export.export_run("RUN", "stablehlo", path,
                           category="brick")["category"] == "brick"
  loaded, predict_fn = load_exported(path)
  loaded.select_category("")
  assert loaded.category == "brick" and not loaded.texture.memories
  images = np.random.default_rng(0).integers(
      0, 256, (3, *task.input_shape)).astype(np.uint8)
  got, expected = predict_fn(images), task.predict(variables, images)
  for k in expected:
    np.testing.assert_allclose(got[k], expected[k], rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match="holds the texture memory of 'brick'"):
    loaded.select_category("grass")


def test_images_smaller_than_the_scored_side_reach_the_network_unchanged():
  """A 32x32 image scored at 64x64 is enlarged by repeating its pixels:
  the networks read it exactly as it was (a 48x48 one as training shrinks
  it), the memory sees its pixels."""
  config = draem.get_config("variant=test,scoring=fused")
  config.eval.memory.image_size = 64
  task = AnomalyTask(config)
  image = np.random.default_rng(0).integers(0, 256, (32, 32, 3),
                                            dtype=np.uint8)
  enlarged = task.resize_input(image)
  np.testing.assert_array_equal(enlarged[::2, ::2], image)
  np.testing.assert_array_equal(enlarged[1::2, 1::2], image)
  np.testing.assert_allclose(task.network_input(enlarged[None])[0],
                             image / 255, atol=1e-6)
  # Between the two sides: the networks see OpenCV's training-time shrink.
  larger = np.random.default_rng(1).integers(0, 256, (48, 48, 3),
                                             dtype=np.uint8)
  np.testing.assert_allclose(
      task.network_input(task.resize_input(larger)[None])[0],
      cv2.resize(larger, (32, 32), interpolation=cv2.INTER_AREA) / 255,
      atol=1e-6)
