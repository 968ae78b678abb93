"""Image paths named inside annotation files, kept inside their dataset.

An annotation downloaded from a stranger may name `../../elsewhere/x.jpg`
or an absolute path; `dataset_path` refuses such a name (after resolving
`..` and symbolic links) with the annotation's file and record, unless the
config allows outside paths (`data.allow_outside_paths`).
"""
import os

from vq.data.errors import AnnotationError


def dataset_path(root, name, where, allow_outside=False):
  """`root`/`name`; an AnnotationError naming `where` when it resolves
  outside `root` and `allow_outside` is False."""
  path = os.path.join(root, name)
  if allow_outside:
    return path
  real_root = os.path.realpath(root)
  real = os.path.realpath(path)
  if os.path.commonpath([real_root, real]) != real_root:
    raise AnnotationError(
        f"{where}: image {name!r} lies outside the dataset folder {root}; "
        f"set data.allow_outside_paths=True if your data is laid out so")
  return path
