r"""The inspection pipeline: localise -> gate -> segment -> mask policy.

  python -m vq.inspect --config=configs/inspect.py:runs=/tmp/vq/inspect_demo \
    --workdir=/tmp/vq/inspect_demo/pipeline --input=PHOTOS

`runs` is a folder holding the stage runs as the demo
(`python -m vq.inspection.demo`) trains them: runs/gate (configs/gate.py)
and runs/segment (configs/unet_damage.py). Any stage can instead name its
own run (`--config.gate.workdir=...`) or an exported ONNX file
(`--config.segment.model=seg.onnx`). Localisation is off unless
`localise.workdir` names a detection run.
"""
import ml_collections

from vq import config_base


def get_config(arg=None):
  args = config_base.parse_arg(arg, runs="/tmp/vq/inspect_demo")
  c = ml_collections.ConfigDict()
  c.batch_size = 8                # images per jit-compiled call, every stage
  c.overlays = True               # draw every photo's result

  c.localise = ml_collections.ConfigDict()
  c.localise.workdir = ""         # a detection run; "" skips localisation
  c.localise.model = ""           # or its ONNX export
  c.localise.step = "best"
  c.localise.class_name = "car"   # crop the best box of this class
  c.localise.margin = 0.1         # widen the box by this fraction per side

  c.gate = ml_collections.ConfigDict()
  c.gate.workdir = f"{args.runs}/gate"  # classification run, or segmentation
  c.gate.model = ""               # run with an image head; "" + "": no gate
  c.gate.step = "best"
  c.gate.normal_class = "clean"   # classification gates: P(damage) = 1 - P
  c.gate.target_recall = 0.95     # of the defective validation photos
  # Photos as the pipeline receives them, PATH/<normal_class>/ and folders
  # of defective ones, to choose the threshold on; "": the gate run's eval
  # split.
  c.gate.validation_path = f"{args.runs}/validation_photos"

  c.segment = ml_collections.ConfigDict()
  c.segment.workdir = f"{args.runs}/segment"
  c.segment.model = ""
  c.segment.step = "best"

  # The mask policy per class (the segmentation run's order of classes):
  # thin classes (scratch, panel gap) refined by a guided filter along the
  # image's edges; dents are wide and need a larger minimum area.
  c.policy = ml_collections.ConfigDict()
  c.policy.from_run = False       # True: the segmentation run's eval.* policy
  c.policy.thresholds = (0.5, 0.5, 0.5)
  c.policy.min_areas = (10, 40, 10)  # pixels at the model's input size
  c.policy.refine = ("scratch", "spacing")
  # A photo is defective when one of these classes has a mask (a panel gap
  # is segmented but is not damage); () means any class.
  c.policy.defect_classes = ("scratch", "dent")
  return c
