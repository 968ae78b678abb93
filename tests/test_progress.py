"""The progress line of vq.predict and vq.inspect: redrawn in place on a
terminal, separate throttled lines in a log file."""
import io

from vq.progress import ProgressLine


class Clock:

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


class Terminal(io.StringIO):

  def isatty(self):
    return True


def test_a_log_file_gets_a_line_every_few_seconds_and_the_last_state():
  stream, clock = io.StringIO(), Clock()
  line = ProgressLine(stream, every_seconds=10.0, clock=clock)
  for t, text in ((0, "8 images"), (4, "16 images"), (9, "24 images"),
                  (10, "32 images"), (12, "40 images")):
    clock.now = t
    line.update(text)
  line.close()
  assert stream.getvalue() == "8 images\n32 images\n40 images\n"


def test_a_log_file_gets_no_repeated_last_line():
  stream, clock = io.StringIO(), Clock()
  line = ProgressLine(stream, every_seconds=10.0, clock=clock)
  line.update("8 images")
  line.close()
  assert stream.getvalue() == "8 images\n"


def test_a_terminal_redraws_one_line():
  stream = Terminal()
  line = ProgressLine(stream, every_seconds=10.0, clock=Clock())
  line.update("16 images, 10.5 images/s")
  line.update("24 images, 9.5 images/s")  # one character shorter
  line.close()
  assert stream.getvalue() == ("\r16 images, 10.5 images/s"
                               "\r24 images, 9.5 images/s \n")
