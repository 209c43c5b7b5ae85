"""The experiment's result table: both experiments x every metric, and its markdown for people."""

from __future__ import annotations

import pandas as pd

from ecom_assets.experiment.analysis import OUTPUT_COLUMNS, analyze_experiment
from ecom_assets.experiment.assignment import CONTROL, TREATMENT

LEGACY_EXPERIMENT = "legacy_md5_parity"
MIN_USERS_PER_ARM = 2  # Welch's t-test needs a variance per arm; a tiny file gets a verdict, not a crash
RESULT_COLUMNS = OUTPUT_COLUMNS[:2] + ["assignment", "treatment_share"] + OUTPUT_COLUMNS[2:] + ["simulated_uplift"]


def experiment_results(
    users: pd.DataFrame, experiment_key: str, treatment_share: float, simulated_uplift: float = 0.0
) -> pd.DataFrame:
    """One row per experiment and metric (users, converted_users, sample_ratio, conversion_rate,
    revenue_per_user): the configured experiment, then the legacy md5-parity split of the same
    users (reproduces the seed project's numbers; on generated data it is a placebo)."""
    frames = []
    for experiment, assignment, share, column in (
        (experiment_key, "salted_md5", treatment_share, "experiment_group"),
        (LEGACY_EXPERIMENT, "legacy_md5_parity", 0.5, "legacy_group"),
    ):
        arms = users[["user_id", column, "converted", "revenue"]].rename(columns={column: "experiment_group"})
        n_c, n_t = int((arms["experiment_group"] == CONTROL).sum()), int((arms["experiment_group"] == TREATMENT).sum())
        if min(n_c, n_t) < MIN_USERS_PER_ARM:
            result = too_few_users(experiment, n_c, n_t)
        else:
            result = analyze_experiment(arms, experiment, share)
        converted = arms.groupby("experiment_group")["converted"].sum()
        counts = result.iloc[[0]].assign(  # right after the users row, same verdict
            metric="converted_users",
            control_value=float(converted.get(CONTROL, 0)),
            treatment_value=float(converted.get(TREATMENT, 0)),
        )
        result = pd.concat([result.iloc[[0]], counts, result.iloc[1:]], ignore_index=True)
        result["assignment"], result["treatment_share"] = assignment, share
        frames.append(result)
    out = pd.concat(frames, ignore_index=True)
    out["simulated_uplift"] = float(simulated_uplift)
    return out[RESULT_COLUMNS]


def too_few_users(experiment: str, n_control: int, n_treatment: int) -> pd.DataFrame:
    """The users row alone, with a verdict that says why nothing else was computed."""
    row = dict(
        experiment=experiment,
        metric="users",
        control_value=float(n_control),
        treatment_value=float(n_treatment),
        verdict=(
            f"Too few users to analyze ({n_control:,} control, {n_treatment:,} treatment): "
            f"each arm needs at least {MIN_USERS_PER_ARM}."
        ),
    )
    out = pd.DataFrame([row]).reindex(columns=OUTPUT_COLUMNS)
    out["significant"] = out["significant"].astype("boolean")
    return out


def results_markdown(results: pd.DataFrame) -> str:
    """The metric rows of one experiment, formatted for people."""
    lines = [
        "| metric | control | treatment | lift | 95% CI | relative lift | test | statistic | p-value |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results.itertuples():
        if row.metric in ("users", "converted_users"):
            lines.append(f"| {row.metric} | {row.control_value:,.0f} | {row.treatment_value:,.0f} | | | | | | |")
            continue
        pct = row.metric in ("conversion_rate", "sample_ratio")
        value = (lambda v: f"{v:.2%}") if pct else (lambda v: f"{v:.2f}")
        lift = (lambda v: f"{v * 100:+.2f} pp") if pct else (lambda v: f"{v:+.2f}")
        ci = f"{lift(row.absolute_ci_low)} to {lift(row.absolute_ci_high)}" if pd.notna(row.absolute_ci_low) else ""
        rel = (
            f"{row.relative_lift:+.1%} ({row.relative_ci_low:+.1%} to {row.relative_ci_high:+.1%})"
            if pd.notna(row.relative_ci_low)
            else ""
        )
        lines.append(
            f"| {row.metric} | {value(row.control_value)} | {value(row.treatment_value)} | "
            f"{lift(row.absolute_lift)} | {ci} | {rel} | {row.test} | {row.statistic:.3f} | "
            f"{row.p_value:.3g} |"
        )
    return "\n".join(lines)
