r"""YOLOv1 grid detection of machine parts (embedded synthetic data).

  python -m vq.main --config=configs/yolo.py --workdir=/tmp/vq/yolo

Variants (after the colon):
  default       tiny fully-convolutional net at 96x96, S=6, sized for a
                2-core CPU (about 6 minutes).
  variant=full  the paper: 24 conv layers + 2 dense layers, 448x448, S=7,
                B=2, SGD with momentum, dropout 0.5.
  variant=test  a few steps at 32x32 for tests.

Real data: --config.data.source=voc --config.data.train_path=VOCdevkit/VOC2007
  --config.data.class_names="('aeroplane', ...)" (or source=yolo_txt).
"""
from vq import config_base
from vq.tasks import detection


def get_config(arg=None):
  args = config_base.parse_arg(arg, variant=("default", "full", "test"))
  c = config_base.trainer_config()
  c.update(detection.default_config())
  c.task = "detection"
  config_base.set_run(c, batch_size=32, num_train_steps=3000,
                      best_metric="voc_map50",
                      learning_rate=2e-3, warmup_steps=100)

  if args.variant == "full":
    c.model.backbone = "yolo_v1"
    c.model.head = "dense"
    c.model.head_hidden = 4096
    c.model.grid_size = 7
    c.model.dropout_rate = 0.5
    c.data.image_size = 448
    c.batch_size = 64
    c.num_train_steps = 40000
    c.eval_every_steps = 5000
    c.checkpoint_every_steps = 2000
    c.optimizer.name = "sgd"
    c.optimizer.learning_rate = 1e-2
    c.optimizer.momentum = 0.9
    c.optimizer.warmup_steps = 1000
  elif args.variant == "test":
    c.model.widths = (4, 8, 8)
    c.model.head_hidden = 16
    c.data.image_size = 32
    c.data.synthetic_train_size = 256
    c.data.synthetic_eval_size = 16
    config_base.few_step_run(c)
    c.num_train_steps = 6
    c.eval_every_steps = 6
    c.checkpoint_every_steps = 3
  return c
