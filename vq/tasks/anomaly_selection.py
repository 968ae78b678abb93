"""eval.scoring=auto: each category scored by the candidate recipe whose
map does best on its validation half.

A candidate (`eval.candidates.<name>`) is a memory scoring given as the
config fields that differ from the run's (e.g. the ImageNet patch memory's
`eval.memory.features` and `data.keep_aspect`). Each is evaluated as a run
with its fields would be (it reads the test split itself, at its own side);
per category the candidate whose map has the higher pixel AUROC on the
validation half (the half that sets the threshold) is chosen, and its
figures, threshold and pictures become the category's. The other half's
image and pixel AUROC of every candidate are reported beside them
(`<category>/candidate/<name>/test_image_auroc`, ...). Prediction and
export adopt the chosen candidate's settings for the category they decide
for.
"""
import dataclasses

import numpy as np

from vq import config_base
from vq.data import pipeline
from vq.data.check import Kept, item_names
from vq.metrics import anomaly as anomaly_metrics
from vq.tasks import anomaly_evaluation as evaluation
from vq.tasks.anomaly_scorings import MEMORY
from vq.tasks.base import Evaluation

AUTO = "auto"
CANDIDATE = "candidate"  # the calibration's entry naming the chosen one
SELECTED_BY = "val_pixel_auroc"
HALVES = ("val", "test")


def candidate_configs(config, task_defaults):
  """{name: the run's config with candidate `name`'s fields (under
  eval.scoring=memory)}, in name order, each checked like a run's."""
  candidates = config.eval.candidates
  if not candidates:
    raise config_base.ConfigError(
        f"eval.scoring={AUTO} chooses among eval.candidates, and none is "
        "given (configs/draem.py sets 'gabor' and 'patchcore')")
  configs = {}
  for name in sorted(candidates):
    fields = candidates[name]
    if not hasattr(fields, "to_dict"):
      raise config_base.ConfigError(
          f"eval.candidates.{name} must hold config fields (e.g. "
          f"{{'eval': {{'memory': {{'features': 'efficientnet_lite0'}}}}}}), "
          f"got {fields!r}")
    c = config.copy_and_resolve_references()
    with c.unlocked():
      c.eval.scoring = MEMORY
      try:
        c.update(fields.to_dict())
        config_base.validate(c, task_defaults)
      except (config_base.ConfigError, KeyError, TypeError) as e:
        raise config_base.ConfigError(f"eval.candidates.{name}: {e}") from e
      if c.eval.scoring != MEMORY:
        raise config_base.ConfigError(
            f"eval.candidates.{name}: candidates are memory scorings "
            f"(eval.scoring={MEMORY}, no network), got {c.eval.scoring!r}")
      c.eval.candidates = type(candidates)()
    configs[name] = c
  return configs


def choose(measures):
  """The candidate name with the highest measure (NaN: never chosen unless
  all are; ties: the first name)."""
  names = sorted(measures)
  values = [measures[n] if np.isfinite(measures[n]) else -np.inf
            for n in names]
  return names[int(np.argmax(values))]


def chosen_candidates(scalars, class_names, names):
  """{category: its chosen candidate}, from an evaluation's scalars."""
  return {c: choose({n: scalars[f"{c}/{CANDIDATE}/{n}/{SELECTED_BY}"]
                     for n in names})
          for c in class_names
          if all(f"{c}/{CANDIDATE}/{n}/{SELECTED_BY}" in scalars
                 for n in names)}


def _auroc_or_nan(scores, labels):
  labels = np.asarray(labels).ravel()
  if labels.min() == labels.max():
    return float("nan")
  return anomaly_metrics.auroc(scores, labels)


def half_measures(host, outs, class_names, data_config):
  """{category: {'val_image_auroc', 'val_pixel_auroc', 'test_...'}} of the
  memory scoring's score and map on each half of the category's test
  images (`evaluation.halves`)."""
  measures = {}
  for c, name in enumerate(class_names):
    sel = host["category"] == c
    labels, scores = host["label"][sel], outs[f"score/{MEMORY}"][sel]
    maps, truth = outs["memory_map"][sel], host["mask"][sel]
    valid = host["valid"][sel].astype(bool)
    m = {}
    for half, idx in zip(HALVES, evaluation.halves(
        len(labels), data_config.validation_fraction, data_config.split_seed)):
      m[f"{half}_image_auroc"] = _auroc_or_nan(scores[idx], labels[idx])
      m[f"{half}_pixel_auroc"] = _auroc_or_nan(maps[idx][valid[idx]],
                                               truth[idx][valid[idx]])
    measures[name] = m
  return measures


def kept_by_check(data, checked, name):
  """A candidate's `data` limited to the records the run's data check kept
  (`checked`: the run's datasets; None: unchecked), which are the same
  files in the same order (a candidate reads the run's records at its own
  shape)."""
  if checked is None:
    return data
  kept = {}
  for split in ("train", "eval"):
    source, own = getattr(checked, split), getattr(data, split)
    if not isinstance(source, Kept):
      continue
    if item_names(source.source) != item_names(own):
      raise config_base.ConfigError(
          f"eval.candidates.{name} reads other {split} records than the "
          "run; candidates are compared on the run's test split, so their "
          "fields may not change the data it reads")
    kept[split] = Kept(own, source.indices)
  return dataclasses.replace(data, **kept)


def _evaluate_candidate(name, candidate, checked, batch_size, threads):
  """(`Evaluation`, half measures) of one candidate, evaluated on the test
  split as its own run would be (no network), on the records the run's
  data check kept (`checked`: the run's datasets)."""
  data = kept_by_check(candidate.datasets(), checked, name)
  batches = list(pipeline.eval_batches(candidate.eval_source(data),
                                       data.eval_transform, batch_size,
                                       threads))
  host = {k: np.concatenate([b[k][b["batch_mask"]] for b in batches])
          for k in batches[0] if k != "batch_mask"}
  host, outs, scalars = candidate.scored_outputs(host, {}, data)
  return (candidate.metrics(host, outs, scalars, data),
          half_measures(host, outs, candidate.class_names,
                        candidate.config.data))


def evaluate(candidates, class_names, checked, batch_size, threads):
  """Every candidate's evaluation (on the records the run's data check
  kept: `checked`, the run's datasets); per category the chosen candidate's
  scalars, every candidate's half measures and full image / pixel AUROC
  (`<category>/candidate/<name>/...`); means over the categories; the
  chosen candidates' pictures; per test image the chosen candidate's row,
  naming it (`scoring`)."""
  results = {name: _evaluate_candidate(name, c, checked, batch_size, threads)
             for name, c in candidates.items()}
  scalars = {}
  for category in class_names:
    for name, (own, measures) in results.items():
      prefix = f"{category}/{CANDIDATE}/{name}/"
      scalars.update({prefix + k: v for k, v in measures[category].items()})
      for k in ("image_auroc", "pixel_auroc"):
        scalars[prefix + k] = own.scalars[f"{category}/{k}"]
  chosen = chosen_candidates(scalars, class_names, tuple(results))
  for category, name in chosen.items():
    own, measures = results[name]
    scalars.update({k: v for k, v in own.scalars.items()
                    if k.startswith(category + "/")})
    scalars.update({f"{category}/{k}": v
                    for k, v in measures[category].items()})
  means = set.intersection(*(
      {k for k in own.scalars if k.split("/")[0] not in class_names}
      for own, _ in results.values()))
  means |= {f"{half}_{m}" for half in HALVES
            for m in ("image_auroc", "pixel_auroc")}
  for k in sorted(means - set(evaluation.CALIBRATION_KEYS)):
    values = [scalars.get(f"{c}/{k}") for c in class_names]
    if all(v is not None for v in values):
      scalars[k] = float(np.mean(values))
  pictures = {f"{key}/{name}": images
              for name in sorted(set(chosen.values()))
              for key, images in results[name][0].pictures.items()}
  rows = []  # every candidate's rows are the test split's, in its order
  for i, row in enumerate(next(iter(results.values()))[0].per_image):
    name = chosen[row["category"]]
    rows.append(dict(results[name][0].per_image[i], scoring=name))
  return Evaluation(scalars, pictures, tuple(rows))
