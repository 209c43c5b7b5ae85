"""What the scoring service checks and computes around the models. No web framework, no Dagster.

- `FeatureRule`s say what a valid value of each request feature is; the API's Pydantic schemas
  and the vectorised validation of bulk input (JSON lists, CSV files) both come from them, so a
  single session and a 100k-row file are held to the same rules.
- `check_csv_width` and `check_row_keys` refuse a request too wide to score before it is
  parsed into a table, so a row of a million columns costs milliseconds, not gigabytes.
- `RiskBands` turns a probability into the word the growth team acts on, with edges taken from
  the model (its decision threshold and high-risk edge), so a band never contradicts the decision.
- `waterfall_png` draws one prediction's explanation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ecom_assets.ml.feature_specs import CART_FEATURES, FeatureSpec
from ecom_assets.publishing import png_bytes


@dataclass(frozen=True)
class FeatureRule:
    kind: str = "float"  # "int" (whole numbers), "float" or "category"
    minimum: float | None = 0
    maximum: float | None = None


# Bounds no real session reaches: a count above a million or a session longer than a week is a
# bot or a bug upstream, and the model never saw anything like it.
MAX_COUNT = 1_000_000
MAX_SESSION_MINUTES = 7 * 24 * 60

# Counts are whole, non-negative and bounded; times of day and week have their calendar ranges.
CART_RULES: dict[str, FeatureRule] = {
    "views_before_cart": FeatureRule("int", 0, MAX_COUNT),
    "other_items_viewed": FeatureRule("int", 0, MAX_COUNT),
    "cart_item_views": FeatureRule("int", 0, MAX_COUNT),
    "minutes_to_first_cart": FeatureRule("float", 0, MAX_SESSION_MINUTES),
    "cart_item_price": FeatureRule("float"),
    "experiment_group": FeatureRule("category"),
    "previous_sessions": FeatureRule("int", 0, MAX_COUNT),
    "previous_purchases": FeatureRule("int", 0, MAX_COUNT),
    "previous_cart_sessions": FeatureRule("int", 0, MAX_COUNT),
    "hour_of_day": FeatureRule("int", 0, 23),
    "day_of_week": FeatureRule("int", 1, 7),
}


def rule_for(spec: FeatureSpec, rules: dict[str, FeatureRule] | None = None) -> FeatureRule:
    """The rule of a feature; a feature without one is a non-negative number (or its categories)."""
    if spec.categorical:
        return FeatureRule("category", None, None)
    return (rules or {}).get(spec.name, FeatureRule("float"))


# Risk bands on the abandonment probability, derived from the model (`RiskBands.of`): "low" is
# below its decision threshold (`will_abandon` false), "medium" from the threshold to its high
# edge, "high" from the edge on. A band never contradicts the decision.
RISK_BANDS = ("low", "medium", "high")
# The bands of a model that carries no threshold tag (ProductionModel's default threshold 0.5):
# kept under their old names; a served model's own bands replace them.
LOW_RISK_BELOW = 0.5
HIGH_RISK_FROM = 0.75


@dataclass(frozen=True)
class RiskBands:
    low_below: float  # the model's decision threshold
    high_from: float  # > low_below

    def __post_init__(self) -> None:
        if not self.low_below <= self.high_from:
            raise ValueError(f"the high-risk edge {self.high_from} is below the threshold {self.low_below}")

    @classmethod
    def of(cls, model) -> RiskBands:
        """The bands of a `ml.tracking.ProductionModel`: its threshold and its high-risk edge."""
        return cls(float(model.threshold), float(model.risk_high_from))

    def will_abandon(self, probability: float) -> bool:
        return bool(probability >= self.low_below)

    def band(self, probability: float) -> str:
        if probability >= self.high_from:
            return "high"
        return "medium" if probability >= self.low_below else "low"

    def bands(self, probabilities: np.ndarray) -> np.ndarray:
        p = np.asarray(probabilities, dtype=np.float64)
        return np.where(p >= self.high_from, "high", np.where(p >= self.low_below, "medium", "low"))

    def describe(self) -> str:
        return (
            f"low below {self.low_below:.3f} (the decision threshold: will_abandon is false), "
            f"medium from {self.low_below:.3f}, high from {self.high_from:.3f}"
        )


DEFAULT_RISK_BANDS = RiskBands(LOW_RISK_BELOW, HIGH_RISK_FROM)


def risk_band(probability: float, bands: RiskBands | None = None) -> str:
    return (bands or DEFAULT_RISK_BANDS).band(probability)


def risk_bands(probabilities: np.ndarray, bands: RiskBands | None = None) -> np.ndarray:
    return (bands or DEFAULT_RISK_BANDS).bands(probabilities)


class InvalidInput(ValueError):
    """Input the service refuses, with a message for the caller and the HTTP status to answer."""

    def __init__(self, message: str, status_code: int = 422, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message, self.status_code, self.errors = message, status_code, list(errors)


def shorten(text: str, limit: int = 60) -> str:
    """A caller's text as it may appear in a message: cut to `limit` characters, always encodable."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate from JSON becomes "?"


# One CSV token: a quoted field (commas and line breaks inside do not count), a comma or a line break.
_CSV_TOKEN = re.compile(rb'"[^"]*(?:""[^"]*)*"|,|\r\n?|\n')


def check_csv_width(data: bytes, max_columns: int) -> None:
    """Refuse (413) a CSV whose header has more than `max_columns` columns, reading only the header.

    Counting stops at the first line break outside quotes or one column past the limit, whichever
    comes first, so a header of millions of columns is refused without being split into names.
    """
    columns = 1
    for token in _CSV_TOKEN.finditer(data):
        kind = token.group()
        if kind == b",":
            columns += 1
            if columns > max_columns:
                raise InvalidInput(
                    f"the CSV header has more than {max_columns:,} columns: one request may have at most "
                    f"{max_columns:,} (the {len(CART_FEATURES)} features and any ids to pass through)",
                    status_code=413,
                )
        elif kind[:1] != b'"':
            return  # the end of the header line


def check_row_keys(rows: Sequence[dict], max_columns: int) -> None:
    """Refuse (413) JSON rows that together have more than `max_columns` distinct keys."""
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        if len(row) > max_columns:
            where = f"row {number:,} has {len(row):,} keys"
        else:
            seen.update(row)
            if len(seen) <= max_columns:
                continue
            where = f"rows 1-{number:,} have more than {max_columns:,} distinct keys"
        raise InvalidInput(
            f"too many fields: {where}; one request may have at most {max_columns:,} "
            f"(the {len(CART_FEATURES)} features and any ids to pass through)",
            status_code=413,
        )


def _number(value: float) -> str:
    """1000000 as "1,000,000", 1.5 as "1.5", 1e+40 as "1e+40"."""
    value = float(value)
    return f"{int(value):,}" if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def _rows(mask: np.ndarray, shown: int = 5) -> str:
    """1-based data-row numbers of a mask, the first few and how many more."""
    where = np.flatnonzero(mask) + 1
    text = ", ".join(str(i) for i in where[:shown])
    return f"row{'s' if len(where) > 1 else ''} {text}" + (
        f" (+{len(where) - shown} more)" if len(where) > shown else ""
    )


def _empty(raw: pd.Series) -> np.ndarray:
    """Cells that carry no value: missing, null or an empty CSV field."""
    empty = raw.isna().to_numpy()
    if raw.dtype == object:
        empty |= raw.eq("").to_numpy()
    return empty


def defaulted_fields(frame: pd.DataFrame, specs: Sequence[FeatureSpec] = CART_FEATURES) -> pd.Series:
    """Per row, the optional features it leaves out (scored at their default), joined by ";".

    Read from the caller's table before validation, the same way `validate_frame` decides to
    fill a default: an absent column, a null or an empty cell.
    """
    columns = {str(c).strip(): c for c in frame.columns}
    out = pd.Series("", index=frame.index, dtype=object)
    for spec in specs:
        if spec.required:
            continue
        empty = _empty(frame[columns[spec.name]]) if spec.name in columns else np.ones(len(frame), dtype=bool)
        out = out.where(~empty, out + spec.name + ";")
    return out.str.rstrip(";")


def validate_frame(
    frame: pd.DataFrame,
    specs: Sequence[FeatureSpec] = CART_FEATURES,
    rules: dict[str, FeatureRule] | None = None,
    max_rows: int = 100_000,
    max_columns: int | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Check a table of feature rows column by column; return the model input and the extra columns.

    Missing optional columns and empty optional cells take the feature's documented default.
    Raises `InvalidInput` naming every offending column with its first offending rows (1 = the
    first data row), or 413 when there are more than `max_rows` rows or `max_columns` columns.
    """
    rules = CART_RULES if rules is None and specs is CART_FEATURES else rules
    if len(frame) == 0:
        raise InvalidInput("no rows to score: send at least one row")
    if len(frame) > max_rows:
        raise InvalidInput(
            f"{len(frame):,} rows is more than the {max_rows:,} rows one request may score: split the file",
            status_code=413,
        )
    if max_columns is not None and len(frame.columns) > max_columns:
        raise InvalidInput(
            f"{len(frame.columns):,} columns is more than the {max_columns:,} one request may have", status_code=413
        )
    frame = frame.rename(columns=lambda c: str(c).strip())
    if frame.columns.duplicated().any():
        duplicated = sorted({shorten(c) for c in frame.columns[frame.columns.duplicated()]})
        raise InvalidInput(f"duplicate column(s) {duplicated}")
    required = [s.name for s in specs if s.required]
    optional = [s.name for s in specs if not s.required]
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise InvalidInput(
            f"missing required column(s) {missing}. Required: {required}"
            + (f"; optional (defaults used when absent): {optional}" if optional else "")
            + f". Got: {[shorten(str(c)) for c in frame.columns[:20]]}"
        )
    errors: list[str] = []
    out = {}
    for spec in specs:
        rule = rule_for(spec, rules)
        present = spec.name in frame.columns
        raw = frame[spec.name] if present else pd.Series(spec.default, index=frame.index)
        empty = _empty(raw)
        if spec.required and empty.any():
            errors.append(f"{spec.name}: missing value in {_rows(empty)}")
        if rule.kind == "category":
            values = raw.astype(str)
            unmatched = ~values.isin(spec.categories).to_numpy()
            if unmatched.any():  # strip only what does not match already (cheap on big files)
                values = values.where(~unmatched, values.str.strip())
            values[empty] = str(spec.default) if spec.default is not None else ""
            bad = ~values.isin(spec.categories).to_numpy() & ~empty
            if bad.any():
                sample = shorten(values[bad].iloc[0])
                errors.append(f"{spec.name}: must be one of {list(spec.categories)}, got {sample!r} in {_rows(bad)}")
            out[spec.name] = values
            continue
        if raw.dtype == bool or (raw.dtype == object and raw.map(type).eq(bool).any()):  # JSON true/false
            errors.append(f"{spec.name}: must be a number, got true/false")
        numbers = pd.to_numeric(raw, errors="coerce").astype(np.float64)
        not_number = numbers.isna().to_numpy() & ~empty
        if not_number.any():
            sample = raw[not_number].iloc[0]
            sample = shorten(sample) if isinstance(sample, str) else shorten(repr(sample))
            errors.append(f"{spec.name}: must be a number, got {sample!r} in {_rows(not_number)}")
        values = numbers.to_numpy()
        if not spec.required and spec.default is not None:
            values = np.where(empty, float(spec.default), values)
        finite = np.isfinite(values)
        if (~finite & ~np.isnan(values)).any():
            errors.append(f"{spec.name}: must be finite, got infinity in {_rows(~finite & ~np.isnan(values))}")
        with np.errstate(invalid="ignore"):
            if rule.kind == "int":
                fractional = finite & (np.floor(values) != values)
                if fractional.any():
                    errors.append(
                        f"{spec.name}: must be a whole number, got {_number(values[fractional][0])} "
                        f"in {_rows(fractional)}"
                    )
            if rule.minimum is not None and (finite & (values < rule.minimum)).any():
                low = finite & (values < rule.minimum)
                errors.append(
                    f"{spec.name}: must be >= {_number(rule.minimum)}, got {_number(values[low][0])} in {_rows(low)}"
                )
            if rule.maximum is not None and (finite & (values > rule.maximum)).any():
                high = finite & (values > rule.maximum)
                errors.append(
                    f"{spec.name}: must be <= {_number(rule.maximum)}, got {_number(values[high][0])} in {_rows(high)}"
                )
        out[spec.name] = values
    if errors:
        raise InvalidInput("invalid input: " + "; ".join(errors), errors=errors)
    # Already the model's dtype contract (`ml.feature_specs.coerce`): float64 numbers, str categories.
    features = pd.DataFrame(
        {name: (values.astype(str) if isinstance(values, pd.Series) else values) for name, values in out.items()},
        index=frame.index,
    )
    known = {s.name for s in specs}
    return features, [str(c) for c in frame.columns if c not in known]


def waterfall_png(
    base_value: float,
    contributions: Sequence[tuple[str, float, float]],
    probability: float,
    top: int = 8,
    units: str = "log-odds",
) -> bytes:
    """A horizontal waterfall from the model's base value to this prediction.

    `contributions` holds (feature, its value, its contribution in `units`); the `top` largest
    by size get a bar each, the rest share one. Matplotlib's object API: no pyplot, no global state.
    """
    ordered = sorted(contributions, key=lambda c: -abs(c[2]))
    bars = [(f"{name} = {_fmt(value)}", contribution) for name, value, contribution in ordered[:top]]
    rest = ordered[top:]
    if rest:
        bars.append((f"{len(rest)} other features", float(sum(c[2] for c in rest))))
    fig = Figure(figsize=(6.4, 0.9 + 0.38 * (len(bars) + 2)))
    ax = fig.add_subplot()
    running = base_value
    labels = ["base value"]
    ax.barh(0, base_value, color="#c7c7c7")
    for i, (label, contribution) in enumerate(bars, start=1):
        colour = "#d62728" if contribution > 0 else "#2ca02c"
        ax.barh(i, contribution, left=running, color=colour)
        ax.annotate(
            f"{contribution:+.3f}",
            (max(running, running + contribution), i),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            ha="left",
            fontsize=7,
        )  # right of the bar
        running += contribution
        labels.append(label)
    ax.barh(len(bars) + 1, running, color="#1f77b4")
    labels.append(f"prediction (p = {probability:.1%})")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel(f"contribution to the abandonment score ({units}); red raises the risk")
    ax.spines[["top", "right"]].set_visible(False)
    return png_bytes(fig, dpi=80)


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:g}" if math.isfinite(value) else str(value)
    return str(value)
