"""Charts of the checkout experiment as PNG bytes: matplotlib's object API, no pyplot, no Dagster.

No pyplot means no global figure state and no GUI backend, so this is safe inside a Dagster run.
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure

from ecom_assets.experiment.assignment import CONTROL, TREATMENT
from ecom_assets.publishing import png_bytes

ARM_COLOURS = {CONTROL: "#8c8c8c", TREATMENT: "#1f77b4"}
FUNNEL_STAGES = (("viewed", "view"), ("carted", "cart"), ("converted", "purchase"))


def user_funnel_by_arm(users: pd.DataFrame, group_column: str = "experiment_group") -> pd.DataFrame:
    """Share of each arm's users who reached view, cart and purchase (one row per arm and stage)."""
    rows = []
    for arm in (CONTROL, TREATMENT):
        mine = users[users[group_column] == arm]
        for column, stage in FUNNEL_STAGES:
            reached = int(mine[column].sum())
            rows.append(
                dict(
                    experiment_group=arm,
                    stage=stage,
                    users=reached,
                    share=reached / len(mine) if len(mine) else math.nan,
                )
            )
    return pd.DataFrame(rows)


def funnel_chart(funnel: pd.DataFrame, title: str) -> bytes:
    """Grouped bars: share of users reaching view -> cart -> purchase, control next to treatment."""
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    stages = [stage for _, stage in FUNNEL_STAGES]
    width = 0.38
    for offset, arm in ((-width / 2, CONTROL), (width / 2, TREATMENT)):
        mine = funnel[funnel["experiment_group"] == arm].set_index("stage").reindex(stages)
        bars = ax.bar(
            [i + offset for i in range(len(stages))], mine["share"] * 100, width, label=arm, color=ARM_COLOURS[arm]
        )
        ax.bar_label(bars, labels=[f"{s:.1%}" for s in mine["share"]], fontsize=8, padding=2)
    ax.set_xticks(range(len(stages)), [f"reached {s}" for s in stages])
    ax.set_ylabel("% of users in the arm")
    ax.set_ylim(0, 115)
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, loc="upper right")
    ax.spines[["top", "right"]].set_visible(False)
    return png_bytes(fig)


def lift_chart(results: pd.DataFrame, title: str) -> bytes:
    """Relative lift of each metric with its 95% interval (delta method on the log ratio).

    Relative lifts put conversion and revenue on one axis; an interval crossing 0 is not significant.
    """
    rows = results[results["metric"].isin(["conversion_rate", "revenue_per_user"])].reset_index(drop=True)
    fig = Figure(figsize=(6.4, 0.9 + 0.9 * len(rows)))
    ax = fig.add_subplot()
    for i, row in rows.iterrows():
        y = len(rows) - 1 - i
        lift, low, high = (row["relative_lift"] * 100, row["relative_ci_low"] * 100, row["relative_ci_high"] * 100)
        colour = ARM_COLOURS[TREATMENT] if bool(row["significant"]) else ARM_COLOURS[CONTROL]
        if not math.isnan(low):
            ax.errorbar(lift, y, xerr=[[lift - low], [high - lift]], fmt="o", color=colour, capsize=5)
        absolute = (
            f"{row['absolute_lift'] * 100:+.1f} pp"
            if row["metric"] == "conversion_rate"
            else f"{row['absolute_lift']:+.2f} per user"
        )
        ax.annotate(
            f"{absolute}, {lift:+.1f}%  [{low:+.1f}%, {high:+.1f}%]  p={row['p_value']:.3g}",
            (lift, y),
            textcoords="offset points",
            xytext=(0, 9),
            ha="center",
            fontsize=8,
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [m.replace("_", " ") for m in rows["metric"]][::-1])
    ax.set_ylim(-0.6, len(rows) - 0.3)
    ax.set_xlabel("treatment vs control, relative lift (%) with 95% CI")
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return png_bytes(fig)
