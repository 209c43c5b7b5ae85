"""The purchase features' cutoffs on a fixed calendar, each complete one computed once and kept.

Cutoffs sit every `horizon_days` days from a fixed anchor (a Monday: with the default 7-day horizon,
every Monday 00:00 UTC), never counted back from the end of the data, so a new day moves no old
cutoff. A calendar cutoff c is *complete*, and labelled, once its label window has closed in the data:
c + horizon_days <= data_end (the day after the last busy day). Its inputs, the events in
[c - lookback_days, c + horizon_days), are then all there; its rows are computed once and kept. The
most recent complete cutoff is the test set, the one before validation, older ones train (at most
`max_cutoffs`, and none closer than `min_history_days` to the data's first day). The forward-looking
'score' cutoff is the newest calendar cutoff at or before data_end, the one whose label window is
still open: on the calendar too, because a decision point that moved with every day would change
every forward row every day (recency features, the sliding lookback, the items' popularity:
docs/models.md), so every row would be scored again. A new day inside the week leaves it as it is;
the day that closes its label window makes it the test set and the next calendar cutoff the forward
one (once a week, two cutoffs of rows).

A kept cutoff (the forward one too) is recomputed only when its inputs changed after it was built: a
silver load changed a day of its window (`silver.changed_days`; the forward cutoff's window is its
lookback alone, it has no label), its window's event count differs, its history (days from the
data's first day, capped by the lookback) differs, or the recipe (the SQL text and the windows)
changed. A recomputed cutoff keeps the rows that came out the same, their `features_built_at`
included, so a prediction of such a row stays current and is not scored again: a late file that
changes a few pairs rescores those pairs. So landing days one file per day, all at once or a day
late ends with the same rows.

`gold.user_item_feature_cutoffs` records each cutoff kept: its split, history, input events, recipe
and build time. No Dagster import.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from ecom_assets.lakehouse.warehouse import load_sql, run_sql_file, table_exists, transaction
from ecom_assets.ml import SQL
from ecom_assets.ml.feature_specs import FeatureWindows

USER_ITEM_SQL = SQL / "gold_user_item_features.sql"
TABLE, CUTOFFS_TABLE = "gold.user_item_features", "gold.user_item_feature_cutoffs"
FORWARD, HOLDOUT, VALIDATION, TRAIN = "score", "test", "validation", "train"


@dataclass(frozen=True)
class PlannedCutoff:
    cutoff: dt.date
    dataset: str
    history_days: int
    input_events: int = 0  # events in the cutoff's window: [cutoff - lookback, label window end)


@dataclass
class CutoffRefresh:
    """What one refresh did: the cutoffs it computed, kept as they were, and dropped."""

    built: list[dt.date] = field(default_factory=list)
    kept: list[dt.date] = field(default_factory=list)
    dropped: list[dt.date] = field(default_factory=list)
    rows_built: int = 0
    rows_changed: int = 0  # of the rows computed, those that differ from the rows they replace (or are new)
    everything: bool = False  # the table was rebuilt whole (first build, new recipe, or asked for)


def calendar_cutoffs(data_start: dt.date, data_end: dt.date, windows: FeatureWindows) -> list[PlannedCutoff]:
    """The cutoffs the data [data_start, data_end) supports: the forward one (the newest calendar cutoff
    at or before data_end: its label window is open), then the complete calendar cutoffs, newest first
    (test, validation, train...). Depends on the data's span only through its ends: a new day moves
    the cutoffs when it closes the forward one's label window (once a week), else it moves none."""
    step, anchor = windows.horizon_days, windows.anchor
    windows.sql_params()  # validates the windows

    def history(cutoff: dt.date) -> int:
        return min(windows.lookback_days, (cutoff - data_start).days)

    on_calendar = anchor + dt.timedelta(days=step * ((data_end - anchor).days // step))
    forward = on_calendar if windows.forward_on_calendar else data_end
    planned = [PlannedCutoff(forward, FORWARD, history(forward))] if forward > data_start else []
    # the newest calendar cutoff whose label window [c, c + step) ends by data_end
    cutoff = on_calendar - dt.timedelta(days=step)
    earliest = data_start + dt.timedelta(days=windows.min_history_days)
    labelled = 0
    while labelled < windows.max_cutoffs and cutoff >= earliest:
        split = (HOLDOUT, VALIDATION)[labelled] if labelled < 2 else TRAIN
        planned.append(PlannedCutoff(cutoff, split, history(cutoff)))
        labelled += 1
        cutoff -= dt.timedelta(days=step)
    return planned


def recipe(sql_text: str, windows: FeatureWindows) -> str:
    """What a cutoff's rows are computed by: a new one recomputes every cutoff."""
    settings = json.dumps(asdict(windows), sort_keys=True, default=str)
    return hashlib.sha256(f"{sql_text}\n{settings}".encode()).hexdigest()[:16]


_CUTOFFS_DDL = f"""CREATE TABLE IF NOT EXISTS {CUTOFFS_TABLE} (
    cutoff       TIMESTAMP NOT NULL,
    dataset      VARCHAR   NOT NULL,
    history_days INTEGER   NOT NULL,
    input_events BIGINT    NOT NULL,
    rows         BIGINT    NOT NULL,
    recipe       VARCHAR   NOT NULL,
    built_at     TIMESTAMP NOT NULL
)"""


def _span(con: duckdb.DuckDBPyConnection) -> tuple[dict[dt.date, int], dt.date | None, dt.date | None]:
    """Silver's events per day, and its busy span [data_start, data_end) (`busy_span`)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE uif_daily AS SELECT CAST(date_trunc('day', event_time) AS TIMESTAMP) AS day, "
        "count(*) AS n FROM silver.events WHERE event_time IS NOT NULL GROUP BY 1"
    )
    daily = {day.date(): n for day, n in con.execute("SELECT day, n FROM uif_daily").fetchall()}
    start, end = con.execute("SELECT data_start, data_end FROM busy_span('uif_daily')").fetchone()
    con.execute("DROP TABLE uif_daily")
    return daily, (start.date() if start else None), (end.date() if end else None)


def _with_inputs(planned: list[PlannedCutoff], daily: dict[dt.date, int], windows: FeatureWindows):
    def events(cutoff: dt.date, dataset: str) -> int:
        first = cutoff - dt.timedelta(days=windows.lookback_days)
        end = cutoff + dt.timedelta(days=0 if dataset == FORWARD else windows.horizon_days)
        return sum(n for day, n in daily.items() if first <= day < end)

    return [PlannedCutoff(p.cutoff, p.dataset, p.history_days, events(p.cutoff, p.dataset)) for p in planned]


def _last_changes(con: duckdb.DuckDBPyConnection) -> tuple[list[dt.date], list[dt.datetime]]:
    """Silver's changed days (sorted) and, per day, the latest change."""
    if not table_exists(con, "silver.changed_days"):
        return [], []
    rows = con.execute("SELECT event_date, max(changed_at) FROM silver.changed_days GROUP BY 1 ORDER BY 1").fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


def forget_built_cutoffs(con: duckdb.DuckDBPyConnection) -> None:
    """Every cutoff becomes stale: the next refresh computes them all (`ecom-assets run --full-refresh`)."""
    if table_exists(con, CUTOFFS_TABLE):
        con.execute(f"DELETE FROM {CUTOFFS_TABLE}")


def refresh_user_item_features(
    con: duckdb.DuckDBPyConnection, windows: FeatureWindows, sql: Path = USER_ITEM_SQL, everything: bool = False
) -> CutoffRefresh:
    """Bring gold.user_item_features to the cutoffs the data supports: compute the forward cutoff and
    every complete cutoff that is new or whose inputs changed, keep the others' rows, drop the cutoffs
    that fell out. `everything`: recompute every cutoff (and replace the table)."""
    built_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # before reading: a later silver change is newer
    sql_text = load_sql(sql)
    current = recipe(sql_text, windows)
    con.execute(_CUTOFFS_DDL)
    daily, data_start, data_end = _span(con)
    planned = [] if data_end is None else _with_inputs(calendar_cutoffs(data_start, data_end, windows), daily, windows)
    columns = ["dataset", "history_days", "input_events", "rows", "recipe", "built_at"]
    records = {
        r[0].date(): dict(zip(columns, r[1:], strict=True))
        for r in con.execute(f"SELECT cutoff, {', '.join(columns)} FROM {CUTOFFS_TABLE}").fetchall()
    }
    everything = (
        everything
        or not records
        or not table_exists(con, TABLE)
        or any(r["recipe"] != current for r in records.values())
    )
    days, changes = _last_changes(con)

    def changed_since(p: PlannedCutoff, when: dt.datetime) -> bool:
        first = p.cutoff - dt.timedelta(days=windows.lookback_days)
        end = p.cutoff + dt.timedelta(days=0 if p.dataset == FORWARD else windows.horizon_days)
        lo, hi = bisect.bisect_left(days, first), bisect.bisect_left(days, end)
        return any(changed > when for changed in changes[lo:hi])

    def fresh(p: PlannedCutoff) -> bool:
        record = records.get(p.cutoff)
        # a forward cutoff whose label window closed is computed again, with its labels
        if everything or record is None or (record["dataset"] == FORWARD) != (p.dataset == FORWARD):
            return False
        return (
            record["history_days"] == p.history_days
            and record["input_events"] == p.input_events
            and not changed_since(p, record["built_at"])
        )

    kept = [p for p in planned if fresh(p)]
    build = [p for p in planned if not fresh(p)]
    result = CutoffRefresh(
        built=[p.cutoff for p in build],
        kept=[p.cutoff for p in kept],
        dropped=sorted(set(records) - {p.cutoff for p in planned}),
        everything=everything,
    )
    con.execute("CREATE OR REPLACE TEMP TABLE uif_cutoffs (cutoff TIMESTAMP, dataset VARCHAR, history_days INTEGER)")
    if build:
        con.executemany(
            "INSERT INTO uif_cutoffs VALUES (?, ?, ?)", [[p.cutoff, p.dataset, p.history_days] for p in build]
        )
    if build or everything:
        run_sql_file(con, sql, {**windows.sql_params(), "built_at": built_at})
    else:  # nothing to compute (a new day inside the forward cutoff's week): no scan of silver
        con.execute(f"CREATE OR REPLACE TEMP TABLE uif_rows AS SELECT * FROM {TABLE} LIMIT 0")
    rows = dict(con.execute("SELECT cutoff, count(*) FROM uif_rows GROUP BY 1").fetchall())
    result.rows_built = result.rows_changed = sum(rows.values())
    keep = [p.cutoff for p in kept]
    with transaction(con):
        if everything:
            con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * FROM uif_rows")
        elif build or result.dropped:
            result.rows_changed = _replace_changed_rows(con, keep)
        for p in kept:  # a new complete cutoff moves the older ones down a split (test -> validation ...)
            if not everything and records[p.cutoff]["dataset"] != p.dataset:
                con.execute(f"UPDATE {TABLE} SET dataset = ? WHERE cutoff = ?", [p.dataset, p.cutoff])
        con.execute(f"DELETE FROM {CUTOFFS_TABLE}")
        cutoffs = [
            [
                p.cutoff,
                p.dataset,
                p.history_days,
                p.input_events,
                rows.get(dt.datetime.combine(p.cutoff, dt.time()), 0) if p in build else records[p.cutoff]["rows"],
                current,
                built_at if p in build else records[p.cutoff]["built_at"],
            ]
            for p in planned
        ]
        if cutoffs:  # none: data that starts after this week's Monday (a home holding a day or two)
            con.executemany(f"INSERT INTO {CUTOFFS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)", cutoffs)
    con.execute("DROP TABLE IF EXISTS uif_rows")
    con.execute("DROP TABLE uif_cutoffs")
    return result


_KEYS = ("cutoff", "user_id", "item_id")
_STAMP = "features_built_at"


def _replace_changed_rows(con: duckdb.DuckDBPyConnection, keep: list[dt.date]) -> int:
    """Bring the table to the kept cutoffs plus the rows computed now (temp `uif_rows`), touching only
    rows that differ: a computed row equal to the one it replaces (every column but the build time)
    is left as it was, its `features_built_at` with it, so its prediction stays current. Returns the
    rows written."""
    columns = [row[0] for row in con.execute("DESCRIBE uif_rows").fetchall()]
    same_key = " AND ".join(f"t.{k} = r.{k}" for k in _KEYS)
    same_values = " AND ".join(f"t.{c} IS NOT DISTINCT FROM r.{c}" for c in columns if c not in (*_KEYS, _STAMP))
    # Rows of the dropped cutoffs, and of the recomputed ones unless computed the same, go ...
    con.execute(
        f"""DELETE FROM {TABLE} AS t WHERE t.cutoff NOT IN (SELECT unnest(?::TIMESTAMP[]))
            AND NOT EXISTS (SELECT 1 FROM uif_rows AS r WHERE {same_key} AND {same_values})""",
        [[dt.datetime.combine(c, dt.time()) for c in keep]],
    )
    # ... and the computed rows the table does not hold (after the delete: those that differ) come in.
    return con.execute(
        f"INSERT INTO {TABLE} BY NAME SELECT * FROM uif_rows AS r "
        f"WHERE NOT EXISTS (SELECT 1 FROM {TABLE} AS t WHERE {same_key})"
    ).fetchone()[0]
