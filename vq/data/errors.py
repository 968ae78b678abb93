"""Errors raised by the dataset readers."""


class AnnotationError(ValueError):
  """An annotation file that does not hold what its format promises."""
