"""When to retrain a model: its latest drift report crossed the threshold, or it is too old.

Pure decisions, so the sensor stays a thin loop and each rule is unit-tested. A decision carries
the run key that makes the retraining happen once per report (or once per stale version).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class RetrainDecision:
    model: str
    retrain: bool
    reason: str
    run_key: str | None = None


@dataclass(frozen=True)
class DriftReportRecord:
    """What the sensor reads off a drift report's latest materialization."""

    model: str
    batch: str
    drift_share: float
    drifted_columns: str
    storage_id: int  # unique per materialization: the run key's anchor
    report_path: str = ""


def decide_on_drift(report: DriftReportRecord | None, model: str, threshold: float) -> RetrainDecision:
    if report is None:
        return RetrainDecision(model, False, f"{model}: no drift report yet")
    if report.drift_share >= threshold:
        return RetrainDecision(
            model,
            True,
            f"{model}: {report.drift_share:.0%} of columns drifted in batch {report.batch} "
            f"(threshold {threshold:.0%}; {report.drifted_columns}): retraining",
            run_key=f"drift:{model}:{report.storage_id}",
        )
    return RetrainDecision(
        model,
        False,
        f"{model}: {report.drift_share:.0%} of columns drifted in batch {report.batch}, "
        f"below the {threshold:.0%} threshold",
    )


def decide_on_age(
    model: str, version: str | None, trained_at: dt.datetime | None, now: dt.datetime, max_age_days: float
) -> RetrainDecision:
    if version is None:
        return RetrainDecision(model, False, f"{model}: no production version yet")
    if trained_at is None:
        return RetrainDecision(model, False, f"{model}: version {version} has no training time recorded")
    age_days = (now - trained_at).total_seconds() / 86_400
    if age_days > max_age_days:
        return RetrainDecision(
            model,
            True,
            f"{model}: production version {version} is {age_days:.1f} days old (limit {max_age_days:g}): retraining",
            run_key=f"age:{model}:{version}",
        )
    return RetrainDecision(model, False, f"{model}: production version {version} is {age_days:.1f} days old")
