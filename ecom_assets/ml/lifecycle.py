"""One model's life cycle in one call: train the three families, judge, explain, log, register, promote."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ecom_assets.ml.explain import global_importance
from ecom_assets.ml.feature_specs import ModelTask
from ecom_assets.ml.model_plots import roc_pr_curves
from ecom_assets.ml.tracking import (
    LoggedModel,
    PromotionDecision,
    close_orphan_runs,
    describe_registered_model,
    ensure_experiment,
    log_training_run,
    promote_if_better,
    task_description,
)
from ecom_assets.ml.training import (
    GRADIENT_BOOSTING,
    TrainingConfig,
    TrainingResult,
    quality_verdicts,
    train_and_compare,
)


@dataclass
class TrainingReport:
    task: ModelTask
    result: TrainingResult
    verdicts: pd.DataFrame
    importance: pd.DataFrame
    curves: Path
    logged: LoggedModel
    decision: PromotionDecision

    def summary_table(self) -> pd.DataFrame:
        """One row per family for the warehouse (ml.<model>): metrics, verdict, version, promotion."""
        table = self.result.comparison().reset_index()
        verdicts = self.verdicts.set_index("baseline")["verdict"] if len(self.verdicts) else pd.Series(dtype=str)
        table["verdict_vs_gradient_boosting"] = table["model"].map(verdicts)
        table.loc[table["model"] == GRADIENT_BOOSTING, "verdict_vs_gradient_boosting"] = None
        table["registered_model"] = self.task.registered_model
        table["version"] = self.logged.version
        table["trained_at"] = self.logged.trained_at
        table["promoted"] = self.decision.promoted
        table["production_version"] = self.decision.production_version
        return table


def train_register_promote(
    frame: pd.DataFrame,
    task: ModelTask,
    config: TrainingConfig,
    uri: str,
    artifact_root: Path,
    reports_dir: Path,
    params: dict | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> TrainingReport:
    """Raises training.InsufficientData (naming the counts) when the labelled data is too thin."""
    result = train_and_compare(frame, task.specs, task.label, config, what=task.what, log=log)
    verdicts = quality_verdicts(result)
    importance = global_importance(result.champion.model, result.X_test, task.specs)
    curves = roc_pr_curves(
        result.y_test,
        {f: r.test_probabilities for f, r in result.families.items()},
        f"{task.registered_model}: holdout ({len(result.y_test):,} rows)",
        reports_dir / f"{task.registered_model}_curves.png",
    )
    experiment_id = ensure_experiment(uri, task.experiment, artifact_root, task_description(task))
    for run_id in close_orphan_runs(uri, experiment_id):
        log(f"{task.experiment}: run {run_id} was left RUNNING by a process that is gone: marked it KILLED")
    logged = log_training_run(
        uri,
        experiment_id,
        task.registered_model,
        result,
        params={**config.params(), **(params or {}), "label": task.label, "feature_table": task.feature_table},
        figures=[curves],
        tables={
            "comparison": result.comparison(),
            "gb_vs_baselines": verdicts,
            "single_feature_auc": result.leakage,
            "split_counts": result.counts,
        },
        importance=importance,
        task=task,
    )
    log(f"{task.registered_model}: logged run {logged.run_id}, registered version {logged.version} as challenger")
    decision = promote_if_better(
        uri,
        task.registered_model,
        logged.version,
        result.X_test,
        result.y_test,
        challenger_score=result.champion.test["pr_auc"],
    )
    describe_registered_model(uri, task)  # with the production version's holdout metrics
    log(f"{task.registered_model}: {decision.reason}")
    return TrainingReport(task, result, verdicts, importance, curves, logged, decision)
