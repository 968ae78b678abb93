import ml_collections
import numpy as np
import pytest

from vq import config_base
from vq.optim import make_schedule


def _config(**optimizer):
  c = config_base.trainer_config()
  c.num_train_steps = 10
  c.optimizer.update(optimizer)
  return c


@pytest.mark.parametrize("warmup", [0, 4])
def test_step_boundaries_are_fractions_of_the_run(warmup):
  schedule = make_schedule(_config(schedule="step", learning_rate=1.0,
                                   warmup_steps=warmup,
                                   step_boundaries=(0.5, 0.75),
                                   step_factor=0.1))
  lr = np.array([float(schedule(s)) for s in range(10)])
  # Drops at step 5 (0.5 of 10) and step 7 (int(0.75 * 10)).
  np.testing.assert_allclose(lr[5:7], 0.1, rtol=1e-6)
  np.testing.assert_allclose(lr[7:], 0.01, rtol=1e-6)
  if warmup:
    np.testing.assert_allclose(lr[:5], [0, 0.25, 0.5, 0.75, 1.0], rtol=1e-6)
  else:
    np.testing.assert_allclose(lr[:5], 1.0)


def test_cosine_ends_at_end_factor_after_warmup():
  schedule = make_schedule(_config(schedule="cosine", learning_rate=1.0,
                                   warmup_steps=4, end_factor=0.1))
  assert float(schedule(4)) == pytest.approx(1.0)
  assert float(schedule(10)) == pytest.approx(0.1)


def test_config_arguments_are_typed_and_checked():
  args = config_base.parse_arg("variant=test,frozen=1,steps=7",
                               variant=("default", "test"), frozen=False,
                               steps=3, name="x")
  assert (args.variant, args.frozen, args.steps, args.name) == (
      "test", True, 7, "x")
  with pytest.raises(ValueError, match="unknown config argument 'categroy' "
                     r"\(did you mean category\?\)"):
    config_base.parse_arg("categroy=brick", category="all")
  with pytest.raises(ValueError, match="variant must be one of default, test"):
    config_base.parse_arg("variant=fulll", variant=("default", "test"))
  with pytest.raises(ValueError, match="expected int"):
    config_base.parse_arg("steps=many", steps=3)


def test_inapplicable_model_fields_are_refused():
  defaults = ml_collections.ConfigDict({"name": "a", "x": 1, "y": 2, "z": 3})
  model = defaults.copy_and_resolve_references()
  fields = {"a": ("x",), "b": ("y",)}
  config_base.refuse_inapplicable(model, defaults, "name", fields)
  model.z = 4  # used by every architecture
  config_base.refuse_inapplicable(model, defaults, "name", fields)
  model.y = 5
  with pytest.raises(ValueError, match=r"model.name='a' does not use "
                     r"model.y \(only b\)"):
    config_base.refuse_inapplicable(model, defaults, "name", fields)
