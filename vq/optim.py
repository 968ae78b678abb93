"""optax optimizers, schedules and freeze rules from the config."""
import re

import flax.traverse_util
import jax
import optax


def make_schedule(config):
  """Learning-rate schedule from `config.optimizer` and num_train_steps."""
  opt = config.optimizer
  steps = config.num_train_steps
  lr = opt.learning_rate
  warmup = min(opt.warmup_steps, steps)
  if opt.schedule == "constant":
    main = optax.constant_schedule(lr)
  elif opt.schedule == "cosine":
    main = optax.cosine_decay_schedule(lr, max(steps - warmup, 1),
                                       alpha=opt.end_factor)
  elif opt.schedule == "cosine_restarts":
    period = max(opt.restart_period, 1)
    main = optax.sgdr_schedule([
        dict(init_value=lr, peak_value=lr, decay_steps=period, warmup_steps=0,
             end_value=lr * opt.end_factor)
        for _ in range(max(steps - warmup, 1) // period + 1)])
  elif opt.schedule == "step":
    # Boundaries are fractions of the whole run; the main schedule's clock
    # starts after the warm-up.
    boundaries = {}
    for b in opt.step_boundaries:
      at = max(int(b * steps) - warmup, 1)
      boundaries[at] = boundaries.get(at, 1.0) * opt.step_factor
    main = optax.piecewise_constant_schedule(lr, boundaries)
  else:
    raise ValueError(
        f"optimizer.schedule must be one of constant, cosine, cosine_restarts, "
        f"step; got {opt.schedule!r}")
  if warmup <= 0:
    return main
  return optax.join_schedules(
      [optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def _base_optimizer(opt, schedule):
  if opt.name == "adam":
    return optax.adam(schedule, b1=opt.b1, b2=opt.b2)
  if opt.name == "adamw":
    return optax.adamw(schedule, b1=opt.b1, b2=opt.b2,
                       weight_decay=opt.weight_decay)
  if opt.name == "sgd":
    return optax.sgd(schedule, momentum=opt.momentum, nesterov=True)
  if opt.name == "rmsprop":
    return optax.rmsprop(schedule, momentum=opt.momentum)
  raise ValueError(f"optimizer.name must be one of adam, adamw, sgd, rmsprop; "
                   f"got {opt.name!r}")


def frozen_mask(params, patterns):
  """Pytree of bools: True where a parameter's '/'-joined path matches any
  regex in `patterns` (re.search)."""
  compiled = [re.compile(p) for p in patterns]
  flat = flax.traverse_util.flatten_dict(params, sep="/")
  return flax.traverse_util.unflatten_dict(
      {k: any(c.search(k) for c in compiled) for k in flat}, sep="/")


def make_optimizer(config, params):
  """The full optax transformation: clipping, optimizer, frozen params."""
  opt = config.optimizer
  schedule = make_schedule(config)
  tx = _base_optimizer(opt, schedule)
  if opt.grad_clip_norm > 0:
    tx = optax.chain(optax.clip_by_global_norm(opt.grad_clip_norm), tx)
  if config.freeze:
    mask = frozen_mask(params, config.freeze)
    if not any(flax.traverse_util.flatten_dict(mask).values()):
      raise ValueError(f"freeze patterns {list(config.freeze)} match no "
                       f"parameter")
    labels = {True: "frozen", False: "trained"}
    tx = optax.multi_transform(
        {"trained": tx, "frozen": optax.set_to_zero()},
        lambda _: jax.tree.map(lambda m: labels[m], mask))
  return tx, schedule
