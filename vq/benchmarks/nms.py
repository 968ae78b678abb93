"""vq.ops.nms against OpenCV's cv2.dnn.NMSBoxes, per image and batched.

  python -m vq.benchmarks.nms

Random boxes (uniform centres and sizes, uniform scores), IoU threshold 0.5,
score threshold 0, max_outputs 100. OpenCV gets numpy inputs and returns
every kept box (it has no output limit); vq gets device arrays. Both results
are checked equal on the first 100 kept indices. Times are medians.
"""
import time

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from vq.ops import nms


def random_boxes(rng, n):
  xy = rng.uniform(0, 400, (n, 2))
  wh = rng.uniform(10, 100, (n, 2))
  return (np.concatenate([xy, xy + wh], 1).astype(np.float32),
          rng.uniform(0, 1, n).astype(np.float32))


def median_seconds(fn, repeats):
  fn()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def main(sizes=(100, 1000, 5000), batch=16, max_outputs=100):
  rng = np.random.default_rng(0)
  batched = jax.jit(jax.vmap(lambda b, s: nms(
      b, s, iou_threshold=0.5, score_threshold=0.0, max_outputs=max_outputs)))
  print(f"| boxes | vq single (ms) | cv2 single (ms) | vq batch of {batch} "
        f"(ms/image) | cv2 batch of {batch} (ms/image) |")
  print("|---|---|---|---|---|")
  for n in sizes:
    data = [random_boxes(rng, n) for _ in range(batch)]
    boxes, scores = data[0]
    xywh = [np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1) for b, _ in data]
    jb, js = jnp.asarray(boxes), jnp.asarray(scores)
    single = lambda: jax.block_until_ready(nms(
        jb, js, iou_threshold=0.5, score_threshold=0.0,
        max_outputs=max_outputs))
    cv_single = lambda: cv2.dnn.NMSBoxes(xywh[0], scores, 0.0, 0.5)
    idx, num = single()
    expected = np.asarray(cv_single()).ravel()[:max_outputs]
    assert np.array_equal(np.asarray(idx[:num]), expected), "results differ"
    bb = jnp.asarray(np.stack([b for b, _ in data]))
    bs = jnp.asarray(np.stack([s for _, s in data]))
    vq_batch = lambda: jax.block_until_ready(batched(bb, bs))
    cv_batch = lambda: [cv2.dnn.NMSBoxes(x, s, 0.0, 0.5)
                        for x, (_, s) in zip(xywh, data)]
    repeats = 200 if n <= 1000 else 30
    row = [median_seconds(single, repeats), median_seconds(cv_single, repeats),
           median_seconds(vq_batch, repeats // 4) / batch,
           median_seconds(cv_batch, repeats // 4) / batch]
    print(f"| {n} | " + " | ".join(f"{t * 1e3:.3f}" for t in row) + " |")


if __name__ == "__main__":
  main()
