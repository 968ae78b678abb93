"""The output folder of vq.predict and vq.inspect under hostile names,
crashes and reruns (no model needed: frames go straight to the writer)."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from vq import predict, prediction_outputs

ROOT = os.path.join(os.path.dirname(__file__), "..")


def write_all(output, inputs, stop_after=None):
  """Lists `inputs` like vq.predict and writes each image's record,
  overlay and map (an anomaly record's: its mean brightness, 4x5); with
  `stop_after`, the process kills itself (-9) after that many records."""
  prediction_outputs.prepare(output, {"input": inputs}, "predictions.jsonl")
  writer = prediction_outputs.RecordWriter(
      output, lambda image, record: image, input_root=inputs)
  for frame in predict.iterate_inputs(inputs):
    if not writer.set_aside(frame):
      writer.write(frame, {"defective": False, "map": np.full(
          (4, 5), frame.image.mean(), np.float64)})
    if writer.count == stop_after:
      os.kill(os.getpid(), signal.SIGKILL)
  writer.close()


def _writer_script(output, inputs, stop_after=None):
  """`write_all` in a process of its own."""
  return textwrap.dedent(f"""
      import sys
      sys.path.insert(0, {os.path.dirname(__file__)!r})
      from test_prediction_outputs import write_all
      write_all({output!r}, {inputs!r}, {stop_after!r})
      """)


def _run(script):
  return subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                        capture_output=True)


def _photo(value):
  return cv2.imencode(".png", np.full((8, 10, 3), value, np.uint8))[1]


def _records(output):
  with open(os.path.join(output, "predictions.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_names_that_are_not_utf8_are_read_and_written(tmp_path):
  """OpenCV's own file calls crashed (exit 139) on such names; every byte
  a Linux file name may hold except '/' and NUL is tried."""
  inputs = os.path.join(os.fsencode(tmp_path), b"in")
  os.makedirs(os.path.join(inputs, b"sub\xff"))
  names = [bytes(range(1, 47)) + b".png", bytes(range(48, 128)) + b".png",
           bytes(range(128, 256)) + b".png", b"\xff\xfe.png",
           b"sub\xff/\x80.png"]
  for k, name in enumerate(names):
    _photo(40 * k).tofile(os.path.join(inputs, name))
  # OpenCV's video reader crashed on such a name too: listed as failed.
  with open(os.path.join(inputs, b"clip\xff.mp4"), "wb") as f:
    f.write(b"not read")
  output = str(tmp_path / "out")
  result = _run(_writer_script(output, os.fsdecode(inputs)))
  assert result.returncode == 0, result.stderr.decode()
  failed = (tmp_path / "out" / "failed.txt").read_bytes()
  assert b"clip\\udcff.mp4'" in failed and b"not valid UTF-8" in failed
  records = _records(output)
  assert len(records) == len(names)
  for record in records:
    overlay = os.path.join(output, record["overlay"])
    image = cv2.imdecode(np.fromfile(overlay, np.uint8), 1)
    assert image.shape == (8, 10, 3)
    assert record["map"] == record["overlay"].replace(
        "overlays/", "maps/", 1)[:-len(".jpg")] + ".npy"
    anomaly_map = np.load(os.path.join(output, record["map"]))
    assert anomaly_map.dtype == np.float32 and anomaly_map.shape == (4, 5)
    assert anomaly_map[0, 0] == pytest.approx(image.mean(), abs=2)
  assert {os.fsencode(r["file"]) for r in records} == {
      os.path.join(inputs, n) for n in names}
  assert len({r["overlay"] for r in records}) == len(names)


def test_a_killed_run_leaves_records_with_overlays_and_says_so(tmp_path,
                                                              caplog):
  inputs = tmp_path / "in"
  inputs.mkdir()
  for k in range(5):
    _photo(k).tofile(inputs / f"{k}.png")
  (inputs / "notes.txt").write_text("not an image")
  output = str(tmp_path / "out")
  killed = _run(_writer_script(output, str(inputs), stop_after=3))
  assert killed.returncode == -signal.SIGKILL
  records = _records(output)
  assert len(records) == 3
  assert all(os.path.isfile(os.path.join(output, r["overlay"])) and
             os.path.isfile(os.path.join(output, r["map"])) for r in records)
  run = json.load(open(os.path.join(output, "run.json")))
  assert run["finished"] is False
  with caplog.at_level("WARNING"):
    write_all(output, str(inputs))
  assert "did not finish (stopped after 3 records)" in caplog.text
  assert len(_records(output)) == 5
  run = json.load(open(os.path.join(output, "run.json")))
  assert (run["finished"], run["records"], run["skipped"]) == (True, 5, 1)
  assert "notes.txt" in open(os.path.join(output, "skipped.txt")).read()


def test_an_output_of_another_run_or_other_files_is_refused(tmp_path):
  output = str(tmp_path / "out")
  prediction_outputs.prepare(output, {"input": "a"}, "predictions.jsonl")
  with pytest.raises(prediction_outputs.OutputFolderError,
                     match="outputs of another run.*input=a.*--overwrite"):
    prediction_outputs.prepare(output, {"input": "b"}, "predictions.jsonl")
  (tmp_path / "out" / "maps").mkdir()
  for name in ("leftover.jpg", "overlays/stale.jpg", "maps/stale.npy"):
    (tmp_path / "out" / name).write_bytes(b"x")
  prediction_outputs.prepare(output, {"input": "b"}, "predictions.jsonl",
                             overwrite=True)
  assert sorted(os.listdir(output)) == ["leftover.jpg", "overlays",
                                        "run.json"]
  assert os.listdir(os.path.join(output, "overlays")) == []
  with pytest.raises(prediction_outputs.OutputFolderError,
                     match="files vq did not write there \\(leftover.jpg"):
    prediction_outputs.prepare(output, {"input": "b"}, "predictions.jsonl")


def test_pages_of_a_tiff_become_records_of_their_own(tmp_path):
  pages = [np.full((6, 9, 3), 60 * k, np.uint8) for k in range(3)]
  cv2.imwritemulti(str(tmp_path / "scan.tif"), pages)
  frames = list(predict.iterate_inputs(str(tmp_path)))
  assert [(f.page, int(f.image.mean())) for f in frames] == [
      (0, 0), (1, 60), (2, 120)]
  output = str(tmp_path / "out")
  prediction_outputs.prepare(output, {}, "predictions.jsonl")
  writer = prediction_outputs.RecordWriter(output, lambda i, r: i,
                                           input_root=str(tmp_path))
  for frame in frames:
    writer.write(frame, {})
  writer.close()
  assert [(r["page"], r["overlay"]) for r in _records(output)] == [
      (0, "overlays/scan.jpg"), (1, "overlays/scan_p1.jpg"),
      (2, "overlays/scan_p2.jpg")]


def test_video_frames_have_maps_of_their_own(tmp_path):
  """Frame N of clip.mp4 maps to maps/clip_fN.npy; an image named like a
  frame gets a name of its own."""
  inputs = tmp_path / "in"
  inputs.mkdir()
  video = cv2.VideoWriter(str(inputs / "clip.mp4"),
                          cv2.VideoWriter_fourcc(*"mp4v"), 5, (16, 8))
  for i in range(3):
    video.write(np.full((8, 16, 3), 80 * i, np.uint8))
  video.release()
  _photo(200).tofile(inputs / "clip_f2.png")
  output = str(tmp_path / "out")
  write_all(output, str(inputs))
  records = _records(output)
  assert [(r.get("frame"), r["map"]) for r in records] == [
      (0, "maps/clip_f0.npy"), (1, "maps/clip_f1.npy"),
      (2, "maps/clip_f2.npy"), (None, "maps/clip_f2_1.npy")]
  means = [float(np.load(os.path.join(output, r["map"]))[0, 0])
           for r in records]
  assert means == pytest.approx([0, 80, 160, 200], abs=8)
  assert os.path.isfile(os.path.join(output, "overlays", "clip_annotated.mp4"))
