"""train_and_evaluate(config, workdir): the one training loop for every task.

The task supplies the model, a pure loss, its datasets and its evaluation; this
module owns the mesh, shardings, the jitted steps, logging and checkpoints.
"""
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers, parameter_overview, periodic_actions

from vq import (atomic_file, config_base, config_changes, distributed,
                guards, history, per_image, sharding, step_cost)
from vq.checkpoint import Checkpoints, model_description
from vq.data import check as data_check
from vq.data import pipeline
from vq.optim import make_optimizer
from vq.state import NonFiniteLossError, TrainState
from vq.tasks import get_task_class


def _make_train_step(task, tx, schedule):
  def train_step(state, batch):
    rng = jax.random.fold_in(state.rng, state.step)
    grad_fn = jax.value_and_grad(task.loss, has_aux=True)
    (_, (terms, batch_stats)), grads = grad_fn(
        state.params, state.batch_stats, batch, rng)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = jax.tree.map(lambda p, u: p + u, state.params, updates)
    metrics = dict(terms, learning_rate=schedule(state.step))
    new_state = state.replace(step=state.step + 1, params=params,
                              batch_stats=batch_stats, opt_state=opt_state)
    return new_state, metrics
  return train_step


def _all_finite(state):
  """Every floating-point array of the state finite, read on the host from
  this process's first copy of each (the state is replicated: every
  process sees the same values and decides alike)."""
  return all(np.isfinite(np.asarray(x.addressable_data(0))).all()
             for x in jax.tree.leaves(state)
             if jnp.issubdtype(x.dtype, jnp.floating))


@jax.jit
def _copy(state):
  """The state in new buffers (the train step donates its input): one
  program, not one per array shape as eager copies compile."""
  return jax.tree.map(jnp.copy, state)


def _check_state(train_step, state, batch, step, last_good_step):
  """Stops before a save unless the state is fit for it: every
  floating-point array finite, and so the loss it gives on the step's batch
  (an update can explode the parameters while the loss that led to it was
  still finite). That loss comes from the compiled train step run on a
  copy of the state (`_copy`), its update dropped."""
  _, metrics = train_step(_copy(state), batch)
  if not (_all_finite(state) and np.isfinite(float(metrics["loss"]))):
    raise NonFiniteLossError(
        f"the state after step {step} has non-finite values or gives a "
        f"non-finite loss. Stopping without saving it; the last good "
        f"checkpoint (step {last_good_step}) is kept.")


def _check_config(config, task_class, mesh):
  config_base.validate(config, task_class.default_config())
  n = mesh.devices.size
  for field in ("batch_size", "eval_batch_size"):
    if config[field] % n:
      raise ValueError(f"config.{field}={config[field]} must be a multiple of "
                       f"the number of devices ({n})")
  if config.num_train_steps < 0:
    raise ValueError(f"config.num_train_steps must be >= 0 (0: evaluate the "
                     f"initial state), got {config.num_train_steps}")
  for field in ("log_every_steps", "eval_every_steps",
                "checkpoint_every_steps"):
    if config[field] <= 0:
      raise ValueError(f"config.{field} must be positive, got {config[field]}")
  pipeline.data_workers(config.data_workers, jax.default_backend())  # checks it


def _flush_train_metrics(pending, writer, step, wait_time, window_start,
                         last_good_step, losses, step_flops=0.0,
                         peak_tflops=0.0):
  """Fetches the per-step metrics of the last steps, stops on non-finite
  values, writes their means (with the TFLOP/s per device and the MFU that
  `step_flops` per device give, against `peak_tflops` or the device kind's
  peak). Returns the means.

  The window's wall time ends after the fetch, which waits for its steps'
  computation (dispatch is asynchronous).
  """
  if not pending:
    return {}
  fetched = jax.device_get([m for _, m in pending])
  wall_time = time.perf_counter() - window_start
  for (s, _), terms in zip(pending, fetched):
    if not all(np.isfinite(v) for v in terms.values()):
      shown = ", ".join(f"{k}={float(v):.6g}" for k, v in sorted(terms.items()))
      raise NonFiniteLossError(
          f"non-finite loss at step {s}: {shown}. Stopping; the last good "
          f"checkpoint (step {last_good_step}) is kept.")
    losses.append((s, float(terms["loss"])))
  means = {f"train/{k}": float(np.mean([t[k] for t in fetched]))
           for k in fetched[0] if k != "learning_rate"}
  means["learning_rate"] = float(fetched[-1]["learning_rate"])
  means["data_wait_fraction"] = wait_time / max(wall_time, 1e-9)
  means["seconds_per_step"] = wall_time / len(fetched)
  means.update(step_cost.utilisation(step_flops, means["seconds_per_step"],
                                     jax.devices()[0].device_kind,
                                     peak_tflops))
  writer.write_scalars(step, means)
  pending.clear()
  return means


def jit_train_step(task, tx, schedule, state_sharding, mesh):
  """The train step jitted over the mesh: the state in its shardings
  (donated), the batch split along the data axis, metrics replicated."""
  return jax.jit(_make_train_step(task, tx, schedule),
                 in_shardings=(state_sharding, sharding.batch_sharding(mesh)),
                 out_shardings=(state_sharding, sharding.replicated(mesh)),
                 donate_argnums=0)


def compile_train_step(train_step, state, batch, config, mesh):
  """The jitted train step compiled for the batch's shapes, with its cost
  per device logged and its memory checked against the device's."""
  devices = mesh.devices.size
  compiled, cost = step_cost.compile_and_analyse(train_step, state, batch,
                                                 num_devices=devices)
  device = jax.local_devices()[0]
  limit = step_cost.device_memory_bytes(device, config.device_memory_gb)
  logging.info("train step on each of %d x %s: %s; device memory %s",
               devices, device.device_kind, cost.describe(),
               f"{limit / step_cost.GB:.3g} GB" if limit else "not reported")
  batch_bytes = sum(x.nbytes for x in jax.tree.leaves(batch)) // devices
  step_cost.check_fits(cost, limit, config.batch_size, batch_bytes, devices)
  return compiled, cost


def _write_parameter_table(params, workdir):
  """The parameter table to WORKDIR/parameters.txt (chief), one line to
  the log."""
  count = parameter_overview.count_parameters(params)
  size = sum(x.nbytes for x in jax.tree.leaves(params))
  where = ""
  if workdir:
    path = os.path.join(workdir, "parameters.txt")
    with open(path, "w") as f:
      f.write(parameter_overview.get_parameter_overview(params) + "\n")
    where = f"; the table: {path}"
  logging.info("%s parameters, %.3g MB%s", f"{count:,}", size / 1e6, where)


def state_factory(task, config, mesh):
  """How to build the train state, and its shardings, without building it.

  Returns:
    (init_state(rng) -> TrainState, state shardings, abstract state with
    shardings, optax transformation, schedule, model description).
  """
  init_rng, state_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  abstract_params = jax.eval_shape(task.init_variables, init_rng)["params"]
  tx, schedule = make_optimizer(config, abstract_params)

  def init_state():
    variables = task.init_variables(init_rng)
    params = variables["params"]
    return TrainState(step=jnp.int32(0), params=params,
                      batch_stats=variables.get("batch_stats", {}),
                      opt_state=tx.init(params), rng=state_rng)

  abstract = jax.eval_shape(init_state)
  shardings = jax.tree.map(lambda _: sharding.replicated(mesh), abstract)
  abstract = jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
      abstract, shardings)
  description = model_description(config.task, abstract_params)
  return init_state, shardings, abstract, tx, schedule, description


def _evaluate(task, data, eval_step, state, config, mesh):
  """Runs the jitted eval step over the held-out split on every process."""
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  results = []
  for batch in pipeline.eval_batches(task.eval_source(data),
                                     data.eval_transform,
                                     config.eval_batch_size,
                                     config.data_threads):
    inputs = sharding.replicated_batch_as_global(
        {k: v for k, v in batch.items() if k != "batch_mask"}, mesh)
    results.append((batch, jax.device_get(eval_step(variables, inputs))))
  return task.evaluate(results, data)


def _evaluate_checked(task, data, eval_step, state, config, mesh):
  """The `Evaluation` of an evaluation that gives config.best_metric."""
  evaluation = _evaluate(task, data, eval_step, state, config, mesh)
  if config.best_metric and config.best_metric not in evaluation.scalars:
    raise ValueError(
        f"config.best_metric={config.best_metric!r} is not an eval scalar; "
        f"the evaluation gives {sorted(evaluation.scalars)}")
  return evaluation


def _evaluate_initial_state(task, data, eval_step, state, config, mesh,
                            writer, workdir):
  """num_train_steps=0 (scorings that train nothing): the initial state
  evaluated and checked, no train step compiled. Returns its scalars; the
  caller saves it as step 0, which prediction and export restore."""
  evaluation = _evaluate_checked(task, data, eval_step, state, config, mesh)
  _write_eval(writer, 0, evaluation, workdir)
  if not _all_finite(state):
    raise NonFiniteLossError("the initial state has non-finite values; "
                             "nothing is saved")
  return evaluation.scalars


def _write_eval(writer, step, evaluation, workdir=None):
  """An `Evaluation`'s scalars and pictures to the writer; with `workdir`
  its scalars also to the run's eval history and WORKDIR/eval_results.json,
  its per-image rows to WORKDIR/eval_images.csv (both the latest)."""
  scalars, images = evaluation.scalars, evaluation.pictures
  writer.write_scalars(step, {f"eval/{k}": v for k, v in scalars.items()})
  if workdir:
    history.append(workdir, history.EVAL, step, scalars)
    with atomic_file.replaced(os.path.join(workdir, "eval_results.json")) as f:
      json.dump({"step": step, **{k: float(v) for k, v in scalars.items()}},
                f, indent=1)
    per_image.write_csv(os.path.join(workdir, per_image.EVAL_IMAGES),
                        evaluation.per_image)
  if images:
    writer.write_images(step, {f"eval/{k}": v for k, v in images.items()})
  logging.info("eval at step %d: %s", step, ", ".join(
      f"{k}={v:.4f}" for k, v in scalars.items() if "/" not in k))


def _write_eval_everywhere(writer, step, evaluation, workdir):
  """`_write_eval`, whose error (the chief's full disk) every process then
  raises, so that all of them save the step together instead of waiting
  on each other."""
  error = None
  try:
    _write_eval(writer, step, evaluation, workdir)
  except Exception as e:  # pylint: disable=broad-except
    error = e
  failed = distributed.allgather_lists([repr(error)] if error else [])
  if error is not None:
    raise error
  if failed:
    raise OSError(f"another process could not write the evaluation of step "
                  f"{step}: {failed[0]}")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains `config.task` in `workdir`, resuming from its latest checkpoint.

  Returns:
    dict: step, train (last logged means), eval (last evaluation scalars),
    losses ([(step, loss)] of every step run), preempted (bool).
  """
  task_class = get_task_class(config.task)
  mesh = sharding.make_mesh()
  _check_config(config, task_class, mesh)
  task = task_class(config)
  task.use_workdir(workdir)
  # The conventions 'auto' took from the weights, recorded in config.json:
  # prediction and export apply the same.
  if config.model.get("input_scaling") == "auto":
    config.model.input_scaling = task.input_scaling
  if config.model.get("padding") == "auto":
    config.model.padding = task.padding
  config.data_workers = str(resolved_data_workers(config.data_workers,
                                                  workdir))
  is_chief = jax.process_index() == 0
  with guards.WorkdirLock(workdir, is_chief):
    return _train(task, config, workdir, mesh, is_chief)


def resolved_data_workers(value, workdir):
  """config.data_workers as a count; 'auto' keeps the count a resumed run
  started with (its config.json: its data iterator's position needs it),
  else `pipeline.auto_data_workers()`."""
  if value == "auto":
    stored = config_changes.stored_value(workdir, "data_workers")
    value = "auto" if stored is None else stored
  return pipeline.data_workers(value, jax.default_backend())


def load_checked_data(task, config, workdir=None):
  """The task's datasets after the data check (`config.data_check`): its
  table is logged and, with a workdir, written to WORKDIR/data_check.json."""
  config_base.check_choice("data_check", config.data_check,
                           ("skip", "fatal", "off"))
  data = task.datasets()
  if config.data_check != "off":
    data, report = data_check.check_datasets(
        data, config.data_threads, fatal=config.data_check == "fatal",
        shard=(jax.process_index(), jax.process_count()),
        gather=distributed.allgather_lists)
    logging.info("Data check:\n%s", data_check.summary_table(report))
    bad = [reason for r in report.values() for reason in r["reasons"]]
    if bad:
      logging.warning("%d bad records left out (%s)", len(bad),
                      "data_check.json lists them" if workdir else
                      "; ".join(bad[:5]) + ("; ..." if len(bad) > 5 else ""))
    if workdir:
      data_check.write_report(report, workdir)
  data_check.require_records(data, config.data)
  return data


def _train(task, config, workdir, mesh, is_chief):
  """The body of train_and_evaluate, inside the workdir lock."""
  # The model must fit the workdir's checkpoints before anything is written.
  init_state, state_sharding, abstract_state, tx, schedule, description = (
      state_factory(task, config, mesh))
  checkpoints = Checkpoints(workdir, config.keep_checkpoints,
                            config.best_metric, config.best_metric_mode)
  checkpoints.check_compatible(description)
  if is_chief and checkpoints.latest_step() is not None:
    config_changes.check_resume(workdir, config, checkpoints.latest_step())
  if is_chief:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))
  writer = metric_writers.create_default_writer(
      workdir, just_logging=not is_chief)

  # Data: checked once, then each process reads only its own share of the
  # training stream.
  data = load_checked_data(task, config, workdir if is_chief else None)
  train_ds = pipeline.train_dataset(
      data.train, data.train_transform,
      global_batch_size=config.batch_size, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count())
  train_iter = pipeline.train_iterator(
      train_ds, config.data_threads, int(config.data_workers))

  # State: restored into its shardings, or created directly with them.
  state, start_step = checkpoints.restore_latest(abstract_state, train_iter)
  fresh = state is None
  if fresh:
    state = jax.jit(init_state, out_shardings=state_sharding)()
    start_step = 0
    _write_parameter_table(state.params, workdir if is_chief else None)
    writer.write_hparams(config_base.flatten_for_hparams(config))
  else:
    logging.info("Resumed from %s at step %d.", checkpoints.directory,
                 start_step)

  train_step = jit_train_step(task, tx, schedule, state_sharding, mesh)
  eval_step = jax.jit(task.eval_step, out_shardings=sharding.replicated(mesh))

  hooks = [periodic_actions.ReportProgress(
      num_train_steps=config.num_train_steps, writer=writer,
      every_steps=config.log_every_steps)]
  if config.profile_steps and is_chief:
    hooks.append(periodic_actions.Profile(
        logdir=workdir, num_profile_steps=config.profile_steps,
        first_profile=10))

  summary = {"step": start_step, "train": {}, "eval": {}, "losses": [],
             "preempted": False}
  pending, last_saved = [], start_step
  compiled_step, cost = None, None
  wait_time, window_start = 0.0, time.perf_counter()
  step = start_step
  try:
    with guards.TermSignal() as term, metric_writers.ensure_flushes(writer):
      if config.num_train_steps == 0 and fresh:
        summary["eval"] = _evaluate_initial_state(
            task, data, eval_step, state, config, mesh, writer,
            is_chief and workdir)
        checkpoints.save(0, state, train_iter, description, summary["eval"])
      while step < config.num_train_steps:
        t0 = time.perf_counter()
        batch = next(train_iter)
        wait_time += time.perf_counter() - t0
        batch = sharding.global_batch(batch, mesh)
        if compiled_step is None:
          compiled_step, cost = compile_train_step(train_step, state, batch,
                                                    config, mesh)
        state, metrics = compiled_step(state, batch)
        step += 1
        pending.append((step, metrics))
        for hook in hooks:
          hook(step)
        last = step == config.num_train_steps
        preempt = term.received or checkpoints.reached_preemption(step)
        save = last or preempt or step % config.checkpoint_every_steps == 0
        if save or step % config.log_every_steps == 0:
          summary["train"] = _flush_train_metrics(
              pending, writer, step, wait_time, window_start, last_saved,
              summary["losses"], cost.flops, config.device_peak_tflops)
          wait_time, window_start = 0.0, time.perf_counter()
          if is_chief:
            history.append(workdir, history.TRAIN, step, summary["train"])
        scalars = None
        if not preempt and (last or step % config.eval_every_steps == 0):
          try:
            evaluation = _evaluate_checked(task, data, eval_step, state,
                                           config, mesh)
            _write_eval_everywhere(writer, step, evaluation,
                                   is_chief and workdir)
          except Exception:
            # The training since the last save is kept before the error (of
            # the evaluation or of writing its results: a full disk) ends
            # the run.
            _check_state(compiled_step, state, batch, step, last_saved)
            checkpoints.save(step, state, train_iter, description, force=True)
            raise
          scalars = evaluation.scalars
          summary["eval"] = scalars
        if save:
          _check_state(compiled_step, state, batch, step, last_saved)
          checkpoints.save(step, state, train_iter, description, scalars,
                           force=preempt)
          last_saved = step
        if preempt:
          summary["preempted"] = True
          logging.warning("Saved step %d after SIGTERM; exiting.", step)
          break
  finally:
    # Commits the last good checkpoint even when the run stops on an error.
    checkpoints.wait_until_finished()
    checkpoints.close()
    train_iter.close()  # stops grain's worker processes, if any
  summary["step"] = step
  return summary
