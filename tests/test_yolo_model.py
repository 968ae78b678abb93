import jax
import jax.numpy as jnp
import numpy as np

from vq.models.yolo import YOLO, dense_head_as_conv, tiny_backbone


def test_dense_head_as_convolutions_matches_and_slides():
  backbone = tiny_backbone((4, 8, 8))  # stride 4
  kwargs = dict(backbone=backbone, num_boxes=2, num_classes=3, grid_size=3,
                head_hidden=16)
  dense = YOLO(head="dense", **kwargs)
  images = jax.random.uniform(jax.random.key(0), (2, 24, 24, 3))
  variables = dense.init(jax.random.key(1), images)
  expected = dense.apply(variables, images)  # [2, 3, 3, 13]
  fcn = YOLO(head="dense_fcn", dense_window=(6, 6), **kwargs)
  converted = dense_head_as_conv(variables, (6, 6))
  out = fcn.apply(converted, images)
  assert out.shape == (2, 1, 1, 3, 3, 13)
  np.testing.assert_allclose(out[:, 0, 0], expected, atol=1e-5)
  # A larger input gives a map of grids, one per window position.
  big = jnp.tile(images, (1, 2, 2, 1))
  out = fcn.apply(converted, big)
  assert out.shape == (2, 7, 7, 3, 3, 13)
  assert np.all(np.isfinite(out))
