"""A progress line for the commands that run over many images
(`vq.predict`, `vq.inspect`): redrawn in place on a terminal; elsewhere (a
log file, a pipe, a scheduled job's output) one line at most every
`every_seconds`, and the last state when it closes."""
import time


class ProgressLine:

  def __init__(self, stream, every_seconds=10.0, clock=time.monotonic):
    self.stream = stream
    self.terminal = bool(getattr(stream, "isatty", None) and stream.isatty())
    self.every_seconds = every_seconds
    self.clock = clock
    self._shown_at = None  # when the last line was written (not a terminal)
    self._pending = ""  # the latest text not yet written (not a terminal)
    self._width = 0  # of the line shown (a terminal)

  def update(self, text):
    if self.terminal:  # spaces cover the end of a longer line before
      print(f"\r{text:<{self._width}}", end="", file=self.stream, flush=True)
      self._width = len(text)
      return
    now = self.clock()
    if self._shown_at is None or now - self._shown_at >= self.every_seconds:
      print(text, file=self.stream, flush=True)
      self._shown_at, self._pending = now, ""
    else:
      self._pending = text

  def close(self):
    """Ends the line on a terminal; elsewhere writes the last state if the
    last update was held back."""
    if self.terminal:
      print(file=self.stream, flush=True)
    elif self._pending:
      print(self._pending, file=self.stream, flush=True)
      self._pending = ""
