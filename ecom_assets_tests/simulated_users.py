"""Simulated users straight from the generator's model (no files, no pipeline), for the experiment tests.

The true lift is the generator's own: the same simulated users with and without the checkout
effect (identical random draws up to the effect), averaged over the treated users.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ecom_assets.experiment.assignment import DEFAULT_EXPERIMENT_KEY, is_treated
from ecom_assets.generator import PURCHASE, GeneratorConfig, build_catalogue, simulate_block


def simulate_users(seed: int, treatment_effect: float, n_users: int) -> pd.DataFrame:
    """One row per user of one generator block: arm, converted, revenue (no duplicates, no noise)."""
    config = GeneratorConfig(seed=seed, treatment_effect=treatment_effect, duplicate_share=0.0)
    catalogue = build_catalogue(np.random.default_rng([seed, 0]), 2_000)
    events = simulate_block(
        np.random.default_rng([seed, 1]), config, catalogue, 400_000_000 + seed * 10_000_000, n_users, 0
    )
    buys = events[events["event_type"] == PURCHASE]
    revenue = (
        pd.Series(catalogue.price_cents[buys["item"].to_numpy()] / 100.0, index=buys["user_id"].to_numpy())
        .groupby(level=0)
        .sum()
    )
    users = pd.DataFrame({"user_id": np.unique(events["user_id"].to_numpy())})
    users["experiment_group"] = np.where(is_treated(users["user_id"]), "treatment", "control")
    users["converted"] = users["user_id"].isin(buys["user_id"])
    users["revenue"] = users["user_id"].map(revenue).fillna(0.0)
    return users


@functools.cache
def true_conversion_lift(treatment_effect: float, n_users: int = 100_000, seed: int = 3) -> float:
    """The generator's causal effect on user conversion: the same users with and without the
    effect (identical draws), averaged over the treated ones. SE about 0.1 pp at 100k users."""
    with_effect = simulate_users(seed, treatment_effect, n_users)
    without = simulate_users(seed, 0.0, n_users)
    assert (with_effect["user_id"] == without["user_id"]).all()
    control = with_effect["experiment_group"] == "control"
    assert (with_effect.loc[control, "converted"] == without.loc[control, "converted"]).all()
    treated = ~control
    return float(
        (with_effect.loc[treated, "converted"].astype(int) - without.loc[treated, "converted"].astype(int)).mean()
    )


def conversion_row(results: pd.DataFrame, experiment: str = DEFAULT_EXPERIMENT_KEY) -> pd.Series:
    """The one conversion-rate row of an experiment in a results table."""
    rows = results[(results["experiment"] == experiment) & (results["metric"] == "conversion_rate")]
    assert len(rows) == 1
    return rows.iloc[0]


def users_with_funnel(seed: int = 5, treatment_effect: float = 0.05, n_users: int = 3_000) -> pd.DataFrame:
    """Simulated users with the columns the results and charts read: a legacy arm, viewed, carted."""
    users = simulate_users(seed=seed, treatment_effect=treatment_effect, n_users=n_users)
    users["legacy_group"] = np.where(users["user_id"] % 2 == 0, "control", "treatment")
    users["viewed"], users["carted"] = True, users["converted"] | (users["user_id"] % 3 == 0)
    return users
