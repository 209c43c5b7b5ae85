"""The production model refit on every labelled row, for scoring the forward-looking cutoff.

The registered production version was fitted on the train split only: validation chose its
threshold and the test split judged it. The forward cutoff deserves the most recent labels too,
so before scoring it the production pipeline is cloned (same family, same hyper-parameters) and
fitted on train + validation + test. The refit is not a new registered version (it has no
holdout left to be judged on, and aliases must not move): it is an MLflow run of its own in the
task's experiment, tagged `refit_of_version`, with the model logged as the run's artifact, and the
production version carries a `refit_run_id` tag pointing to it. One refit per production version:
later runs load it; a new production version gets a new one. The threshold is production's,
chosen on validation; the refit has no unseen labelled rows to choose another on.

No Dagster import: the assets and the tests call these functions.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.base import clone

from ecom_assets.ml.feature_specs import ModelTask, coerce
from ecom_assets.ml.tracking import (
    NOTE_TAG,
    ProductionModel,
    client,
    ensure_experiment,
    pip_requirements,
    process_tags,
    task_description,
    trusted_types,
    using_tracking_uri,
)
from ecom_assets.ml.training import TrainingConfig

# On the refit run: which registered model and version it refits, and what it saw.
REFIT_OF_MODEL_TAG, REFIT_OF_VERSION_TAG = "refit_of_model", "refit_of_version"
REFIT_MODEL_URI_TAG = "refit_model_uri"
# On the production version: the run holding its refit.
REFIT_RUN_TAG = "refit_run_id"


class CannotRefit(ValueError):
    """Too few labelled rows (or one class only) to refit; the message names the counts."""


@dataclass
class RefitModel:
    """The production version refit on all labelled rows, and where it is recorded."""

    name: str
    version: str  # the registered production version it refits
    run_id: str
    experiment_id: str
    model: Any
    model_uri: str
    threshold: float  # production's, chosen on validation
    trained_at: str
    rows: int
    positives: int
    fit_seconds: float
    reused: bool  # loaded from an earlier run rather than fitted now
    available: int = 0  # the labelled rows read, before the `max_rows` sample (0: unknown, a reused refit)
    max_rows: int = 0  # the cap it was fitted under


def capped(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """A uniform fixed-seed sample of at most `max_rows` rows, in the frame's order: every split keeps its
    share, and the positive rate its value (production's threshold stays meaningful)."""
    return frame if len(frame) <= max_rows else frame.sample(n=max_rows, random_state=seed).sort_index()


def labelled_rows(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Every labelled row of the frame, whatever its split (train, validation and test); the frame itself
    when every row is labelled (no copy of millions of rows)."""
    labelled = frame[label].notna()
    return frame if labelled.all() else frame[labelled]


def find_refit(uri: str, task: ModelTask, version: str) -> str | None:
    """The run id of the recorded refit of `version`: the version's tag, else a run tagged as its refit.

    The search covers a run whose version tag was never written (a process killed in between).
    """
    registry = client(uri)
    entry = registry.get_model_version(task.registered_model, version)
    run_id = (entry.tags or {}).get(REFIT_RUN_TAG)
    if run_id and _finished(registry, run_id):
        return run_id
    experiment = registry.get_experiment_by_name(task.experiment)
    if experiment is None:
        return None
    runs = registry.search_runs(
        [experiment.experiment_id],
        filter_string=(
            f"tags.{REFIT_OF_MODEL_TAG} = '{task.registered_model}' and tags.{REFIT_OF_VERSION_TAG} = '{version}' "
            "and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def _finished(registry, run_id: str) -> bool:
    try:
        run = registry.get_run(run_id)
    except Exception:  # deleted or never finished writing: refit again rather than fail the scoring
        return False
    return run.info.status == "FINISHED" and run.info.lifecycle_stage == "active"


def load_refit(uri: str, task: ModelTask, production: ProductionModel, run_id: str) -> RefitModel:
    import mlflow

    registry = client(uri)
    run = registry.get_run(run_id)
    tags = run.data.tags
    model_uri = tags.get(REFIT_MODEL_URI_TAG) or f"runs:/{run_id}/model"
    with using_tracking_uri(uri):
        model = mlflow.sklearn.load_model(model_uri)
    return RefitModel(
        name=task.registered_model,
        version=production.version,
        run_id=run_id,
        experiment_id=run.info.experiment_id,
        model=model,
        model_uri=model_uri,
        threshold=float(tags["threshold"]),
        trained_at=tags["trained_at"],
        rows=int(tags["refit_rows"]),
        positives=int(tags["refit_positives"]),
        fit_seconds=float(run.data.metrics.get("fit_seconds", 0.0)),
        reused=True,
    )


def refit_production(
    uri: str,
    task: ModelTask,
    production: ProductionModel,
    labelled: Callable[[], pd.DataFrame],
    artifact_root: Path,
    log: Callable[[str], None] = lambda message: None,
    max_rows: int = TrainingConfig.max_refit_rows,
    seed: int = TrainingConfig.seed,
) -> RefitModel:
    """The refit of `production`: the recorded one when it exists, else fitted now and recorded.

    `labelled` reads the labelled rows (every split, bounded by the training config's caps); it is
    called only when a refit is needed, so a daily run that reuses the refit reads nothing. The refit
    fits at most `max_rows` of them (`capped`); the run records the cap and the rows available.
    """
    existing = find_refit(uri, task, production.version)
    if existing is not None:
        refit = load_refit(uri, task, production, existing)
        log(f"{task.registered_model} v{production.version}: reusing refit run {existing} ({refit.rows:,} rows)")
        return refit
    every = labelled_rows(labelled(), task.label)
    frame, available = capped(every, max_rows, seed), len(every)
    del every  # the fit needs the sample only (2.3M rows of every column at 20M events)
    counts = frame.groupby("dataset")[task.label].agg(["count", "sum"]).astype(int)
    if frame.empty or frame[task.label].nunique() < 2:
        raise CannotRefit(
            f"Cannot refit {task.registered_model} v{production.version}: {len(frame)} labelled rows in "
            f"{task.feature_table}, {int(frame[task.label].sum()) if len(frame) else 0} positive; "
            "both classes are needed."
        )
    X, y = coerce(frame, task.specs), frame[task.label].astype(int).to_numpy()
    started = time.perf_counter()
    model = clone(production.model).fit(X, y)  # same family and hyper-parameters, unfitted
    fit_seconds = time.perf_counter() - started
    trained_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    refit = RefitModel(
        name=task.registered_model,
        version=production.version,
        run_id="",
        experiment_id=ensure_experiment(uri, task.experiment, artifact_root, task_description(task)),
        model=model,
        model_uri="",
        threshold=production.threshold,
        trained_at=trained_at,
        rows=len(frame),
        positives=int(y.sum()),
        fit_seconds=fit_seconds,
        reused=False,
        available=available,
        max_rows=max_rows,
    )
    _record(uri, task, production, refit, X, counts)
    sampled = f" (a sample: {available:,} available, cap {max_rows:,})" if available > len(frame) else ""
    log(
        f"{task.registered_model} v{production.version}: refit on {refit.rows:,} labelled rows{sampled} "
        f"({refit.positives:,} positive) in {fit_seconds:.1f}s, run {refit.run_id}"
    )
    return refit


def _record(
    uri: str, task: ModelTask, production: ProductionModel, refit: RefitModel, X: pd.DataFrame, counts: pd.DataFrame
) -> None:
    """Log the refit as its own run (model artifact, not registered) and tag the production version."""
    import mlflow
    from mlflow.models import infer_signature

    os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")  # log_model: no slow pip probe offline
    per_split = ", ".join(f"{split} {row['count']:,} ({row['sum']:,} positive)" for split, row in counts.iterrows())
    note = (
        f"Refit of **{task.registered_model} v{production.version}** (run `{production.run_id}`) on every "
        f"labelled row of `{task.feature_table}`: {refit.rows:,} rows, {refit.positives:,} positive ({per_split}); "
        f"{refit.available:,} labelled rows were read, at most {refit.max_rows:,} are fitted (a uniform sample). "
        f"Same pipeline and hyper-parameters; decision threshold {refit.threshold:.4f} is production's, chosen "
        "on validation. Scores the forward-looking cutoff only; it is not registered (no holdout is left to "
        "judge it), so aliases do not move."
    )
    tags = {
        **process_tags(),
        REFIT_OF_MODEL_TAG: task.registered_model,
        REFIT_OF_VERSION_TAG: production.version,
        "refit_of_run_id": production.run_id,
        "refit_rows": str(refit.rows),
        "refit_positives": str(refit.positives),
        "threshold": f"{refit.threshold:.6f}",
        "trained_at": refit.trained_at,
        NOTE_TAG: note,
    }
    with (
        using_tracking_uri(uri),
        mlflow.start_run(
            experiment_id=refit.experiment_id,
            run_name=f"{task.registered_model} v{production.version} refit {refit.trained_at}",
            tags=tags,
        ) as run,
    ):
        mlflow.log_params(
            {
                "refit_of_version": production.version,
                "threshold": round(refit.threshold, 6),
                "max_refit_rows": refit.max_rows,
            }
        )
        mlflow.log_metrics(
            {"rows": float(refit.rows), "positives": float(refit.positives), "labelled_rows": float(refit.available)}
        )
        mlflow.log_metric("fit_seconds", refit.fit_seconds)
        for split, row in counts.iterrows():
            mlflow.log_metrics({f"{split}_rows": float(row["count"]), f"{split}_positives": float(row["sum"])})
        example = X.head(5)
        info = mlflow.sklearn.log_model(
            refit.model,
            name="model",
            signature=infer_signature(example, refit.model.predict_proba(example)[:, 1]),
            input_example=example,
            skops_trusted_types=trusted_types(refit.model),
            pip_requirements=pip_requirements(),
            pyfunc_predict_fn="predict_proba",
        )
        mlflow.set_tag(REFIT_MODEL_URI_TAG, info.model_uri)
    refit.run_id, refit.model_uri = run.info.run_id, info.model_uri
    # Written last: a run killed before this point is found again by its tags (find_refit).
    client(uri).set_model_version_tag(task.registered_model, production.version, REFIT_RUN_TAG, refit.run_id)
