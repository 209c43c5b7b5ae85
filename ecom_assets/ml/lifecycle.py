"""One model's life cycle in one call: train the families, judge, explain, log, register, gate, promote.

The promotion decision (quality gate, then the challenger against production on the same holdout)
is made before any alias moves; `production` moves only when it passes.
"""

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
    apply_promotion,
    champion_holdout_metrics,
    close_orphan_runs,
    decide_promotion,
    describe_registered_model,
    ensure_experiment,
    log_training_run,
    production_model_version,
    task_description,
)
from ecom_assets.ml.training import (
    TrainingConfig,
    TrainingResult,
    quality_problems,
    quality_verdicts,
    quality_warnings,
    train_and_compare,
)

# All (user, item) pairs bought in each test label window, and how many have a candidate row: the
# purchase model only ranks pairs seen in the lookback, so its recall is over those alone.
_COVERAGE_SQL = """
WITH windows AS (
    SELECT DISTINCT cutoff, label_window_end FROM {table} WHERE dataset = 'test' AND {label} IS NOT NULL
), bought AS (
    SELECT DISTINCT w.cutoff, e.user_id, e.item_id
    FROM windows AS w
    JOIN silver.events AS e
      ON e.event_type = 'purchase' AND e.event_time >= w.cutoff AND e.event_time < w.label_window_end
)
SELECT count(*) AS purchased_pairs, count(f.cutoff) AS covered_pairs
FROM bought AS b
LEFT JOIN (SELECT DISTINCT cutoff, user_id, item_id FROM {table} WHERE dataset = 'test') AS f
  ON f.cutoff = b.cutoff AND f.user_id = b.user_id AND f.item_id = b.item_id
"""


def purchase_candidate_coverage(con, feature_table: str, label: str) -> dict[str, float] | None:
    """`purchased_pairs` (distinct (user, item) purchases in the test label windows, from
    silver.events) and `candidate_coverage` (the share of them with a candidate row); None when
    nothing was bought there (training then refuses the split anyway)."""
    purchased, covered = con.execute(_COVERAGE_SQL.format(table=feature_table, label=label)).fetchone()
    if not purchased:
        return None
    return {"purchased_pairs": float(purchased), "candidate_coverage": covered / purchased}


@dataclass
class TrainingReport:
    task: ModelTask
    result: TrainingResult
    verdicts: pd.DataFrame
    importance: pd.DataFrame
    curves: Path
    logged: LoggedModel
    decision: PromotionDecision
    holdout: dict[str, float]  # the champion's holdout metrics with every baseline

    def summary_table(self) -> pd.DataFrame:
        """One row per family for the warehouse (ml.<model>): role, metrics with baselines, verdict
        against the champion, version, promotion."""
        table = self.result.comparison().reset_index()
        verdicts = self.verdicts.set_index("baseline")["verdict"] if len(self.verdicts) else pd.Series(dtype=str)
        table["verdict_vs_champion"] = table["model"].map(verdicts)
        table["positive_class"] = self.result.positive_class
        if "candidate_coverage" in self.holdout:
            table["test_purchased_pairs"] = int(self.holdout["purchased_pairs"])
            table["candidate_coverage"] = round(self.holdout["candidate_coverage"], 4)
            table["recall_over_all_purchases"] = (table["recall"] * self.holdout["candidate_coverage"]).round(4)
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
    holdout_extra: dict[str, float] | None = None,
) -> TrainingReport:
    """Raises training.InsufficientData (naming the counts) when the labelled data is too thin, and
    tracking.RegistryError when the registry cannot be read or production cannot score the holdout.

    `holdout_extra`: holdout facts measured outside the training core (the purchase model's
    `candidate_coverage` and `purchased_pairs`), logged and described with the metrics."""
    production_model_version(uri, task.registered_model)  # an unreadable registry fails now, not after training
    result = train_and_compare(frame, task.specs, task.label, config, what=task.what, log=log)
    verdicts = quality_verdicts(result, resamples=config.bootstrap_resamples)
    problems = quality_problems(result)
    champion = result.champion
    importance = global_importance(champion.model, result.X_test, task.specs)
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
            "champion_vs_others": verdicts,
            "single_feature_auc": result.leakage,
            "split_counts": result.counts,
        },
        importance=importance,
        task=task,
        holdout_extra=holdout_extra,
    )
    log(f"{task.registered_model}: logged run {logged.run_id}, registered {champion.family} as v{logged.version}")
    decision = decide_promotion(
        uri,
        task.registered_model,
        logged.version,
        result.X_test,
        result.y_test,
        champion.test_probabilities,
        config.promotion_margin,
        problems,
        config.bootstrap_resamples,
        champion.family,
    )
    apply_promotion(uri, task.registered_model, decision)  # the aliases move only on the decision
    decision.quality_warnings = quality_warnings(verdicts)
    describe_registered_model(uri, task)  # with the production version's holdout metrics
    log(f"{task.registered_model}: {decision.reason}")
    for warning in decision.quality_warnings:
        log(f"{task.registered_model}: warning: {warning}")
    holdout = champion_holdout_metrics(result, holdout_extra)
    return TrainingReport(task, result, verdicts, importance, curves, logged, decision, holdout)
