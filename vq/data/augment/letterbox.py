"""Fitting images into a fixed model shape with their aspect ratio kept.

`letterbox` scales an image to fit inside the shape and fills the rest,
by default with the image reflected at its edges (a surface stays a
surface; a flat colour would add edges the model never saw); `to_original`
takes a map or mask at that shape back to the image's own pixels. The
placement depends only on the two shapes (`fit_box`), so a prediction
made at the model's shape maps back without carrying it along.
"""
import cv2
import numpy as np


def fit_box(in_hw, out_hw):
  """(top, left, height, width) of an `in_hw` image scaled to fit inside
  `out_hw` with its aspect ratio kept, centred."""
  (h, w), (oh, ow) = in_hw, out_hw
  scale = min(oh / h, ow / w)
  height = min(oh, max(1, round(h * scale)))
  width = min(ow, max(1, round(w * scale)))
  return (oh - height) // 2, (ow - width) // 2, height, width


def shrinks(in_hw, out_hw):
  """Whether fitting `in_hw` into `out_hw` makes the image smaller."""
  return max(in_hw[0] / out_hw[0], in_hw[1] / out_hw[1]) > 1


def letterbox(image, out_hw, interpolation=None, fill=None):
  """`image` ([H, W] or [H, W, C]) scaled into `out_hw` keeping its aspect
  ratio (`fit_box`), the margins reflected from the image (`fill=None`) or
  set to the constant `fill`. The default interpolation averages by area
  when shrinking and is bilinear when enlarging."""
  out_hw = (int(out_hw[0]), int(out_hw[1]))
  top, left, height, width = fit_box(image.shape[:2], out_hw)
  if interpolation is None:
    interpolation = (cv2.INTER_AREA if shrinks(image.shape[:2], out_hw)
                     else cv2.INTER_LINEAR)
  inner = image
  if (height, width) != image.shape[:2]:
    inner = cv2.resize(image, (width, height), interpolation=interpolation)
    inner = inner.reshape(height, width, *image.shape[2:])
  border = ((top, out_hw[0] - height - top), (left, out_hw[1] - width - left))
  border += ((0, 0),) * (image.ndim - 2)
  if fill is None:
    return np.pad(inner, border, mode="symmetric" if min(height, width) == 1
                  else "reflect")
  return np.pad(inner, border, constant_values=fill)


def valid_mask(in_hw, out_hw):
  """uint8 [*out_hw]: 1 where `letterbox` put the image's pixels, 0 in the
  margins."""
  top, left, height, width = fit_box(in_hw, out_hw)
  valid = np.zeros(out_hw, np.uint8)
  valid[top:top + height, left:left + width] = 1
  return valid


def crop_to_image(array, in_hw):
  """The part of a letterboxed `array` ([h, w, ...]) that holds the
  `in_hw` image, at the letterboxed resolution."""
  top, left, height, width = fit_box(in_hw, array.shape[:2])
  return array[top:top + height, left:left + width]


def to_original(array, in_hw, keep_aspect, interpolation=cv2.INTER_LINEAR):
  """A map or mask ([h, w] or [h, w, C]) at the model's shape -> the
  `in_hw` image's own pixels: its image part (`keep_aspect`, letterboxed
  input) or all of it (stretched input) resized to `in_hw`."""
  if keep_aspect:
    array = crop_to_image(array, in_hw)
  h, w = in_hw
  out = cv2.resize(np.ascontiguousarray(array), (w, h),
                   interpolation=interpolation)
  return out.reshape(h, w, *array.shape[2:])
