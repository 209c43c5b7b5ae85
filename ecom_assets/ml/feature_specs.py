"""What each model reads: feature names, types, defaults for optional inputs, labels and knobs.

The SQL that computes the features lives in `ml/sql/gold_*_features.sql`; this module is the
contract between that SQL, training, batch scoring and the scoring service (which builds the
same frame from a request with `cart_feature_frame`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

CONTROL, TREATMENT = "control", "treatment"
EXPERIMENT_GROUPS = (CONTROL, TREATMENT)  # ordinal order inside the model pipelines

PURCHASE_MODEL_NAME = "ecommerce_purchase_prediction_gb"
CART_MODEL_NAME = "cart_abandonment_gb"


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    description: str
    required: bool = True
    default: Any = None  # used for optional features a caller leaves out
    categories: tuple[str, ...] = ()  # set for string features: ordinal-encoded inside the model

    @property
    def categorical(self) -> bool:
        return bool(self.categories)


PURCHASE_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("views", "views of the item by the user in the lookback window before the cutoff"),
    FeatureSpec("carts", "add-to-carts of the item by the user before the cutoff"),
    FeatureSpec("removes", "removals of the item from the cart before the cutoff"),
    FeatureSpec("purchases", "earlier purchases of the item by the user before the cutoff"),
    FeatureSpec("interaction_score", "views + 3 x carts"),
    FeatureSpec("funnel_depth", "deepest stage before the cutoff: 1 view, 2 cart, 3 purchased"),
    FeatureSpec("engagement_score", "interaction_score banded: 1 (<2), 2 (2-4), 3 (5-9), 4 (10+)"),
    FeatureSpec("sessions_with_item", "distinct sessions in which the user touched the item"),
    FeatureSpec("days_since_last_interaction", "days from the user's last event on the item to the cutoff"),
    FeatureSpec("days_since_first_interaction", "days from the user's first event on the item to the cutoff"),
    FeatureSpec("price", "the item's latest price seen before the cutoff"),
    FeatureSpec("item_views", "views of the item by everybody before the cutoff (popularity)"),
    FeatureSpec("item_carts", "add-to-carts of the item by everybody before the cutoff"),
    FeatureSpec("item_purchases", "purchases of the item by everybody before the cutoff"),
    FeatureSpec("item_visitors", "distinct users who touched the item before the cutoff"),
    FeatureSpec("item_buyer_rate", "item purchases per visitor before the cutoff"),
    FeatureSpec("user_events", "all events of the user before the cutoff"),
    FeatureSpec("user_sessions", "sessions of the user before the cutoff"),
    FeatureSpec("user_distinct_items", "distinct items the user touched before the cutoff"),
    FeatureSpec("user_carts", "add-to-carts of the user (any item) before the cutoff"),
    FeatureSpec("user_purchases", "purchases of the user (any item) before the cutoff"),
    FeatureSpec("user_days_since_last_event", "days from the user's last event to the cutoff"),
    FeatureSpec("user_item_share", "share of the user's events that were on this item"),
    FeatureSpec("user_events_per_session", "the user's events per session before the cutoff"),
    FeatureSpec("user_cart_rate", "the user's add-to-carts per event before the cutoff"),
    FeatureSpec("user_purchases_per_session", "the user's purchases per session before the cutoff"),
    FeatureSpec("user_purchases_per_cart", "the user's purchases per add-to-cart before the cutoff"),
    FeatureSpec("user_sessions_per_week", "the user's sessions per week of visible history"),
    FeatureSpec("item_session_share", "share of the user's sessions that touched this item"),
)

# The scoring service's request schema: what a live session knows at its first add-to-cart (the
# decision point, gold_cart_session_features.sql), and the user's earlier sessions. Required: every
# feature the model leans on (the user's earlier purchases above all: defaulting them to 0 costs
# most of the model's skill, docs/serving.md). The optional ones barely move a score; they fall back
# to the defaults below and every response names the ones it filled (`defaulted_fields`).
CART_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("views_before_cart", "product views in the session before its first add-to-cart"),
    FeatureSpec("other_items_viewed", "distinct items other than the carted one touched before the first cart"),
    FeatureSpec("cart_item_views", "views of the carted item in the session before it was carted"),
    FeatureSpec("minutes_to_first_cart", "minutes from the session's first event to its first add-to-cart"),
    FeatureSpec("cart_item_price", "price of the item of the first add-to-cart"),
    FeatureSpec(
        "experiment_group", "'control' or 'treatment' (the checkout experiment arm)", categories=EXPERIMENT_GROUPS
    ),
    FeatureSpec("previous_sessions", "the user's earlier sessions (0 for a first visit)"),
    FeatureSpec("previous_purchases", "the user's purchases in earlier sessions"),
    FeatureSpec("previous_cart_sessions", "the user's earlier sessions with an add-to-cart", False, 0),
    FeatureSpec("hour_of_day", "hour (0-23, UTC) the session started", False, 18),
    FeatureSpec("day_of_week", "ISO day of week the session started (1 Monday - 7 Sunday)", False, 3),
)

PURCHASE_LABEL = "converted"
CART_LABEL = "abandoned_cart"


def names(specs: Iterable[FeatureSpec]) -> list[str]:
    return [s.name for s in specs]


def required_cart_features() -> list[str]:
    return [s.name for s in CART_FEATURES if s.required]


def cart_feature_defaults() -> dict[str, Any]:
    return {s.name: s.default for s in CART_FEATURES if not s.required}


def defaulted_cart_features(row: Mapping[str, Any]) -> list[str]:
    """The optional cart features a request-like row leaves out (they are scored at their default)."""
    return [s.name for s in CART_FEATURES if not s.required and row.get(s.name) is None]


def with_cart_defaults(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every cart feature of a request-like row, in model order, the missing optional ones defaulted."""
    return {s.name: row[s.name] if row.get(s.name) is not None else s.default for s in CART_FEATURES}


def cart_feature_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Model input for the cart model from request-like dicts: defaults filled, order fixed.

    Raises ValueError naming the missing required features or an unknown experiment group.
    """
    rows = list(rows)
    required = required_cart_features()
    for index, row in enumerate(rows):
        missing = [name for name in required if row.get(name) is None]
        if missing:
            raise ValueError(f"row {index}: missing required feature(s) {missing}")
        if row["experiment_group"] not in EXPERIMENT_GROUPS:
            raise ValueError(
                f"row {index}: experiment_group must be one of {EXPERIMENT_GROUPS}, got {row['experiment_group']!r}"
            )
    records = [with_cart_defaults(row) for row in rows]
    return coerce(pd.DataFrame.from_records(records, columns=names(CART_FEATURES)), CART_FEATURES)


def coerce(frame: pd.DataFrame, specs: Iterable[FeatureSpec]) -> pd.DataFrame:
    """Numeric features as float64, categorical ones as str: one dtype contract for every caller."""
    specs = list(specs)
    out = frame[names(specs)].copy()
    for spec in specs:
        if spec.categorical:
            out[spec.name] = out[spec.name].astype(str)
        else:
            out[spec.name] = pd.to_numeric(out[spec.name], errors="coerce").astype(np.float64)
    return out


@dataclass(frozen=True)
class FeatureWindows:
    """Cutoff maths for the purchase features (days)."""

    horizon_days: int = 7
    lookback_days: int = 28
    min_history_days: int = 14
    max_cutoffs: int = 8  # labelled cutoffs at most (bounds the table at scale)
    # Cutoffs sit every horizon_days from this day (ml/feature_cutoffs.py): a Monday, so with the
    # 7-day horizon every Monday 00:00 UTC. A fixed calendar: a new day never moves an old cutoff.
    cutoff_anchor: str = "2015-01-05"
    # The forward (scored, unlabelled) cutoff: `calendar`, the newest calendar cutoff at or before the
    # data's end (rescored once a week: a day costs a day's work; predictions see the events up to this
    # week's Monday), or `data_end`, the data's end itself (every forward row rescored every day: fresh
    # to the last event; docs/models.md).
    forward_cutoff: str = "calendar"

    @property
    def anchor(self) -> dt.date:
        return dt.date.fromisoformat(self.cutoff_anchor)

    @property
    def forward_on_calendar(self) -> bool:
        if self.forward_cutoff not in ("calendar", "data_end"):
            raise ValueError(f"forward_cutoff={self.forward_cutoff!r}: expected 'calendar' or 'data_end'")
        return self.forward_cutoff == "calendar"

    def sql_params(self) -> dict[str, int]:
        if self.horizon_days < 1 or self.lookback_days < 1:
            raise ValueError("horizon_days and lookback_days must be at least 1")
        self.anchor, self.forward_on_calendar  # noqa: B018  (a bad value fails here, before any SQL runs)
        return {
            "horizon_days": self.horizon_days,
            "lookback_days": self.lookback_days,
            "min_history_days": self.min_history_days,
            "max_cutoffs": self.max_cutoffs,
        }


@dataclass(frozen=True)
class ModelTask:
    """One prediction task: where its rows are, what it reads and predicts, where it is registered."""

    registered_model: str
    experiment: str
    feature_table: str
    label: str
    specs: tuple[FeatureSpec, ...]
    keys: tuple[str, ...]
    what: str

    @property
    def feature_names(self) -> list[str]:
        return names(self.specs)


PURCHASE_TASK = ModelTask(
    registered_model=PURCHASE_MODEL_NAME,
    experiment="purchase_prediction",
    feature_table="gold.user_item_features",
    label=PURCHASE_LABEL,
    specs=PURCHASE_FEATURES,
    keys=("cutoff", "user_id", "item_id"),
    what="purchase prediction",
)
CART_TASK = ModelTask(
    registered_model=CART_MODEL_NAME,
    experiment="cart_abandonment",
    feature_table="gold.cart_session_features",
    label=CART_LABEL,
    specs=CART_FEATURES,
    keys=("session_id",),
    what="cart abandonment",
)
