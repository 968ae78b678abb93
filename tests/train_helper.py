"""Runs a short training and prints its losses as JSON (for subprocess tests).

  python tests/train_helper.py WORKDIR '{"num_train_steps": 4}'
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from vq import distributed, train  # noqa: E402
from configs import yolo  # noqa: E402


def main(workdir, overrides):
  distributed.initialize_if_launched()
  config = yolo.get_config("variant=test")
  config.update_from_flattened_dict(json.loads(overrides))
  summary = train.train_and_evaluate(config, workdir)
  print("SUMMARY " + json.dumps({"losses": summary["losses"],
                                 "step": summary["step"],
                                 "eval": summary["eval"]}), flush=True)


if __name__ == "__main__":
  main(*sys.argv[1:3])
