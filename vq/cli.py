"""What vq's command-line tools share: a user's mistake (a bad config
field, a missing file, a category the run does not have) is reported in
one line naming what to fix, exit status 1, instead of a traceback. Run a
tool with -v=1 to see the traceback as well."""
import functools
import sys

from absl import app, flags
from absl import logging

from vq import config_base
from vq.checkpoint import CheckpointCorruptError, CheckpointMismatchError
from vq.data.check import DataCheckError
from vq.data.errors import AnnotationError
from vq.state import NonFiniteLossError

USER_ERRORS = (config_base.ConfigError, AnnotationError, DataCheckError,
               CheckpointMismatchError, CheckpointCorruptError,
               OSError, NonFiniteLossError, ValueError,
               KeyError)


def parse_flags(argv):
  """absl's flag parsing; a `--config.FIELD=VALUE` override that cannot be
  applied (a misspelt field, a value of the wrong type) ends the tool with
  one line naming the override, exit status 1, as absl does for its own
  flag errors."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    message = str(e)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    text = " ".join(str(a) for a in e.args).replace("\\n", " ")
    text = " ".join(text.replace("\\'", "").replace("'", " ").split())
    if isinstance(e, AttributeError):  # ml_collections: no such field
      field, _, hint = text.partition(" ")
      text = f"no such field {field!r}" + (f"; {hint}" if hint else "")
    overrides = [a.split("=", 1)[0] for a in argv[1:]
                 if a.startswith("--config.")]
    named = [o for o in overrides if o.rsplit(".", 1)[-1] in text]
    message = (f"{named[0] if named else ' '.join(overrides) or '--config'}"
               f": cannot be applied to the config ({text})")
  sys.stderr.write(f"FATAL Flags parsing error: {message}\n")
  sys.exit(1)


def run(main):
  """`absl.app.run(main)` with `parse_flags`."""
  app.run(main, flags_parser=parse_flags)


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


def tool(main):
  """A tool's absl `main`, from a `main()` that takes no arguments: stray
  positional arguments are a usage error, logging shows warnings and
  errors only, and USER_ERRORS are reported in one line
  (`reports_user_errors`)."""

  @reports_user_errors
  @functools.wraps(main)
  def wrapped(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    return main()

  return wrapped
