"""Pictures for TensorBoard: boxes drawn on images, precision-recall curves."""
import cv2
import numpy as np

_COLOURS = np.array([
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
], np.uint8)


def class_colour(c):
  return tuple(int(v) for v in _COLOURS[int(c) % len(_COLOURS)])


def draw_boxes(image, boxes, classes, class_names, scores=None, thickness=1,
               dashed=False):
  """Draws normalised (x1, y1, x2, y2) boxes on a copy of a uint8 RGB image.

  Ground truth is drawn dashed by convention; predictions carry a score.
  """
  out = np.ascontiguousarray(image.copy())
  h, w = out.shape[:2]
  for i, (box, c) in enumerate(zip(boxes, classes)):
    if c < 0:
      continue
    x1, y1, x2, y2 = (int(round(v)) for v in box * np.array([w, h, w, h]))
    colour = class_colour(c)
    if dashed:
      for x in range(x1, x2, 4):
        cv2.line(out, (x, y1), (min(x + 2, x2), y1), colour, thickness)
        cv2.line(out, (x, y2), (min(x + 2, x2), y2), colour, thickness)
      for y in range(y1, y2, 4):
        cv2.line(out, (x1, y), (x1, min(y + 2, y2)), colour, thickness)
        cv2.line(out, (x2, y), (x2, min(y + 2, y2)), colour, thickness)
    else:
      cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
    label = class_names[c] if scores is None else f"{class_names[c]} {scores[i]:.2f}"
    cv2.putText(out, label, (x1 + 1, max(y1 - 2, 8)), cv2.FONT_HERSHEY_PLAIN,
                0.7, colour, 1, cv2.LINE_AA)
  return out


def pr_curve_image(precision, recall, title, size=256):
  """A precision-recall curve on white, as uint8 RGB [size, size, 3]."""
  img = np.full((size, size, 3), 255, np.uint8)
  m = 24  # margin
  span = size - 2 * m
  cv2.rectangle(img, (m, m), (m + span, m + span), (0, 0, 0), 1)
  for t in (0.25, 0.5, 0.75):
    p = m + int(t * span)
    cv2.line(img, (p, m), (p, m + span), (220, 220, 220), 1)
    cv2.line(img, (m, p), (m + span, p), (220, 220, 220), 1)
  if len(recall):
    pts = np.stack([m + np.asarray(recall) * span,
                    m + (1 - np.asarray(precision)) * span], 1)
    cv2.polylines(img, [np.round(pts).astype(np.int32)], False, (0, 90, 200),
                  2, cv2.LINE_AA)
  cv2.putText(img, title, (m, m - 8), cv2.FONT_HERSHEY_PLAIN, 1.0, (0, 0, 0),
              1, cv2.LINE_AA)
  cv2.putText(img, "recall", (size // 2 - 20, size - 6),
              cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 0, 0), 1, cv2.LINE_AA)
  cv2.putText(img, "precision", (2, m + span + 14), cv2.FONT_HERSHEY_PLAIN,
              0.9, (0, 0, 0), 1, cv2.LINE_AA)
  return img


def draw_keypoints(image, pred, true=None, scale=1):
  """True keypoints as rings, predictions as crosses, one colour each.

  pred, true: [K, 2] normalised (x, y); true may be None.
  """
  out = np.ascontiguousarray(np.kron(image, np.ones((scale, scale, 1),
                                                    np.uint8)))
  h, w = out.shape[:2]
  for k, p in enumerate(pred):
    colour = class_colour(k)
    if true is not None:
      tx, ty = int(round(true[k][0] * w)), int(round(true[k][1] * h))
      cv2.circle(out, (tx, ty), 4, colour, 1, cv2.LINE_AA)
    px, py = int(round(p[0] * w)), int(round(p[1] * h))
    cv2.drawMarker(out, (px, py), colour, cv2.MARKER_CROSS, 7, 1)
  return out


def line_chart(series, title, size=(640, 400), log_y=False):
  """Curves {name: (x, y)} on one chart with a legend, as uint8 RGB."""
  w, h = size
  img = np.full((h, w, 3), 255, np.uint8)
  left, right, top, bottom = 60, 20, 30, 40
  xs = np.concatenate([np.asarray(x, float) for x, _ in series.values()])
  ys = np.concatenate([np.asarray(y, float) for _, y in series.values()])
  f = np.log10 if log_y else (lambda v: v)
  y_lo, y_hi = f(np.min(ys)), f(np.max(ys))
  x_lo, x_hi = np.min(xs), np.max(xs)
  sx = lambda x: left + (x - x_lo) / max(x_hi - x_lo, 1e-12) * (w - left - right)
  sy = lambda y: top + (y_hi - f(y)) / max(y_hi - y_lo, 1e-12) * (h - top - bottom)
  cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
  for t in np.linspace(0, 1, 5):
    yv = y_lo + t * (y_hi - y_lo)
    y = int(sy(10 ** yv if log_y else yv))
    cv2.line(img, (left, y), (w - right, y), (225, 225, 225), 1)
    cv2.putText(img, f"{10 ** yv if log_y else yv:.3g}", (2, y + 4),
                cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 0, 0), 1, cv2.LINE_AA)
  cv2.putText(img, f"{x_lo:g}", (left, h - bottom + 15),
              cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 0, 0), 1, cv2.LINE_AA)
  cv2.putText(img, f"{x_hi:g}", (w - right - 40, h - bottom + 15),
              cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 0, 0), 1, cv2.LINE_AA)
  cv2.putText(img, title, (left, top - 10), cv2.FONT_HERSHEY_PLAIN, 1.1,
              (0, 0, 0), 1, cv2.LINE_AA)
  for i, (name, (x, y)) in enumerate(series.items()):
    pts = np.stack([[sx(a) for a in x], [sy(b) for b in y]], 1)
    cv2.polylines(img, [np.round(pts).astype(np.int32)], False,
                  class_colour(i), 2, cv2.LINE_AA)
    cv2.putText(img, name, (w - right - 150, top + 18 + 16 * i),
                cv2.FONT_HERSHEY_PLAIN, 1.0, class_colour(i), 1, cv2.LINE_AA)
  return img


def overlay_masks(image, masks, opacity=0.5):
  """Tints each mask channel's pixels with its class colour (uint8 RGB)."""
  out = image.astype(np.float32)
  if out.shape[-1] == 1:
    out = np.repeat(out, 3, -1)
  for k in range(masks.shape[-1]):
    on = masks[..., k].astype(bool)
    out[on] = (1 - opacity) * out[on] + opacity * np.array(class_colour(k))
  return out.astype(np.uint8)


def caption(image, text):
  """`text` on a dark band at the top of a copy of the image."""
  out = np.ascontiguousarray(image.copy())
  scale = max(out.shape[1] / 400, 0.6)
  band = int(16 * scale)
  out[:band] = (out[:band] * 0.3).astype(np.uint8)
  cv2.putText(out, text, (2, band - 4), cv2.FONT_HERSHEY_PLAIN, scale,
              (255, 255, 255), 1, cv2.LINE_AA)
  return out
