"""Files written whole: to a temporary name beside the target, then renamed
over it, so that a reader, or a run stopped midway (a full disk, a kill),
finds the old file or the new one, never half of one."""
import contextlib
import os


@contextlib.contextmanager
def replaced(path, mode="w", **open_kwargs):
  """`open(path, mode, **open_kwargs)` that replaces `path` only once the
  block ends without an error; on an error the partial file is removed."""
  partial = f"{path}.{os.getpid()}.partial"
  try:
    with open(partial, mode, **open_kwargs) as f:
      yield f
    os.replace(partial, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(partial)
    raise
