"""What vq's command-line tools share: a user's mistake (a bad config
field, a missing file, a category the run does not have) is reported in
one line naming what to fix, exit status 1, instead of a traceback. Run a
tool with -v=1 to see the traceback as well."""
import functools
import sys

from absl import flags
from absl import logging

from vq import config_base, train
from vq.checkpoint import CheckpointCorruptError, CheckpointMismatchError
from vq.data.check import DataCheckError
from vq.data.errors import AnnotationError

USER_ERRORS = (config_base.ConfigError, AnnotationError, DataCheckError,
               CheckpointMismatchError, CheckpointCorruptError,
               FileNotFoundError, train.NonFiniteLossError, ValueError,
               KeyError)


def reports_user_errors(main):
  """Wraps an absl `main(argv)`: USER_ERRORS end the tool with their
  message logged in one line (and the traceback under -v=1)."""

  @functools.wraps(main)
  def wrapped(argv):
    verbose = flags.FLAGS["verbosity"].value >= 1
    try:
      return main(argv)
    except USER_ERRORS as e:
      if verbose:
        raise
      message = e.args[0] if isinstance(e, KeyError) and e.args else e
      logging.error("%s: %s", type(e).__name__, message)
      sys.exit(1)

  return wrapped
