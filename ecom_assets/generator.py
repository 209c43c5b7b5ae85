"""The synthetic world: REES46-format clickstream files shaped like a real shop's export.

Each user arrives once at a random time, then returns at a rate set by a lasting taste and a
changing intent (a mood that drifts over days, an Ornstein-Uhlenbeck process). A visit is a run of
item interactions a minute or so apart: views, add-to-carts, removes of what was carted (never more
than that item's carts), and at most one checkout, which buys the basket. Intent, taste and a few
favourite items (replaced over weeks) drive carts and checkout; dearer items are carted and bought
less (a price sensitivity per user). Most users never buy: user-level conversion is a few percent.
Treated users (the same md5 assignment the pipeline uses) get the checkout effect: each cart event
of a visit saves an abandoned basket with probability ``treatment_effect``.

The hidden variables can be written beside the files (``truth_dir``) so that a benchmark can score
an oracle: `purchase_oracle` re-simulates the future from every user's state at a cutoff.

Everything is simulated in numpy, a block of users at a time (bounded memory), staged in a
temporary DuckDB file and written per month (or day) sorted by time, to a temp name first.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ecom_assets.experiment.assignment import DEFAULT_EXPERIMENT_KEY, DEFAULT_TREATMENT_SHARE, is_treated
from ecom_assets.publishing import replaced_atomically, sql_literal

REES46_HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
VIEW, CART, REMOVE, PURCHASE = range(4)
USERS_PER_BLOCK = 100_000
EVENTS_PER_USER_GUESS = 11.0  # only sizes the item catalogue; the run stops on the real count
BRANDS = (
    "runail",
    "irisk",
    "masura",
    "grattol",
    "estel",
    "ingarden",
    "kapous",
    "jessnail",
    "uno",
    "cnd",
    "freedecor",
    "bpw.style",
    "lovely",
    "italwax",
    "concept",
    "domix",
    "staleks",
    "haruyama",
    "yoko",
    "severina",
    "zinger",
    "smart",
    "milv",
    "beautix",
    "bluesky",
    "metzger",
    "kiss",
    "shik",
    "entity",
    "nagaraku",
    "polarus",
    "marathon",
    "artex",
    "levrana",
    "f.o.x",
)
CATEGORY_CODES = (
    "appliances.environment.vacuum",
    "furniture.bathroom.bath",
    "apparel.glove",
    "stationery.cartrige",
    "furniture.living_room.cabinet",
    "accessories.bag",
    "appliances.personal.hair_cutter",
    "furniture.living_room.chair",
)


@dataclass(frozen=True)
class GeneratorConfig:
    events: int = 400_000
    days: int = 61
    start: dt.date = dt.date(2019, 10, 1)
    seed: int = 42
    file_per: str = "month"  # or "day"
    treatment_effect: float = 0.05
    experiment_key: str = DEFAULT_EXPERIMENT_KEY
    treatment_share: float = DEFAULT_TREATMENT_SHARE
    duplicate_share: float = 0.05
    drift_from_day: int | None = None
    gzip: bool = False

    def __post_init__(self) -> None:
        if self.events < 1 or self.days < 1:
            raise ValueError(f"events and days must be positive, got {self.events} and {self.days}")
        if self.file_per not in ("month", "day"):
            raise ValueError(f"file_per must be 'month' or 'day', got {self.file_per!r}")
        if not 0 <= self.treatment_effect <= 1 or not 0 <= self.duplicate_share < 1:
            raise ValueError("treatment_effect must be in [0, 1] and duplicate_share in [0, 1)")


@dataclass(frozen=True)
class Catalogue:
    product_id: np.ndarray
    category_id: np.ndarray
    category_code: np.ndarray  # index into CATEGORY_CODES, -1 for empty
    brand: np.ndarray  # index into BRANDS, -1 for empty
    price_cents: np.ndarray
    popularity: np.ndarray  # probabilities, power law


def build_catalogue(rng: np.random.Generator, n_items: int) -> Catalogue:
    rank = rng.permutation(n_items)
    popularity = 1.0 / (rank + 10.0) ** 1.1
    popularity /= popularity.sum()
    n_categories = max(20, n_items // 40)
    category_ids = 1_487_580_005_000_000_000 + np.sort(rng.choice(10**15, n_categories, replace=False))
    # Codes and brands are per product; the most popular products get none, so the row shares
    # (about 2% with a code, 58% with a brand) do not swing with a handful of best-sellers.
    top = rank < 50
    code = np.where((rng.random(n_items) < 0.02) & ~top, rng.integers(0, len(CATEGORY_CODES), n_items), -1)
    brand = np.where(rng.random(n_items) < 0.58, rng.integers(0, len(BRANDS), n_items), -1)
    brand[top] = np.where(np.arange(top.sum()) % 5 < 3, rng.integers(0, len(BRANDS), top.sum()), -1)
    price = np.round(rng.lognormal(np.log(6.0), 0.9, n_items) * 100).astype(np.int64)
    price[rng.random(n_items) < 0.002] = 0  # free samples exist in the real export
    return Catalogue(
        product_id=1_000_000 + np.arange(n_items, dtype=np.int64) * 97 + rng.integers(0, 97, n_items),
        category_id=category_ids[rng.integers(0, n_categories, n_items)],
        category_code=code.astype(np.int16),
        brand=brand.astype(np.int16),
        price_cents=price,
        popularity=popularity,
    )


def _within_group_cumsum(values: np.ndarray, group_starts: np.ndarray, group_sizes: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group (groups are contiguous runs)."""
    total = np.cumsum(values)
    offsets = np.repeat(total[group_starts] - values[group_starts], group_sizes)
    return total - offsets


def _starts(sizes: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)


# The world's knobs. Intent is an Ornstein-Uhlenbeck process in time (stationary N(0, 1)): a
# shopper's mood that drifts over days, so recent behaviour predicts the near future and old
# behaviour fades. Favourite items are replaced at random over weeks.
INTENT_DAYS = 7.0  # intent's correlation time
FAVOURITE_DAYS = 21.0  # mean life of a favourite item
VISITS_PER_DAY = 0.025  # return rate at neutral intent and taste
MIN_VISIT_GAP = 3_600  # seconds between a visit's start and the next (keeps 30-minute sessions apart)
FAVOURITE_SHARE = 0.4  # share of a visit's items that come from the user's favourites
REMOVE_SHARE = 0.55  # share of carted items with removes
REFERENCE_PRICE = 600  # cents: price effects are relative to the catalogue's median price


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _log_price(catalogue: Catalogue, item: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(catalogue.price_cents[item], 50) / REFERENCE_PRICE)


def _popular_items(rng: np.random.Generator, catalogue: Catalogue, shape) -> np.ndarray:
    return rng.choice(len(catalogue.product_id), shape, p=catalogue.popularity)


@dataclass
class Visits:
    """Sessions as arrays: the user (row of the block), start second, intent and favourites then."""

    user: np.ndarray
    start: np.ndarray
    intent: np.ndarray
    favourites: np.ndarray  # (n, 3) item indices

    @staticmethod
    def concat(parts: list[Visits]) -> Visits:
        return Visits(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("user", "start", "intent", "favourites"))
        )


def next_visits(
    rng: np.random.Generator,
    catalogue: Catalogue,
    taste: np.ndarray,
    user: np.ndarray,
    start: np.ndarray,
    intent: np.ndarray,
    favourites: np.ndarray,
    end: int,
    not_before: int | None = None,
) -> Visits:
    """Every later visit of each user, from the state of their last visit, up to second ``end``.

    The return rate depends on intent and taste at the last visit and is memoryless, so a
    re-simulation from any later time (``not_before``, as the oracle does from a cutoff) draws
    from the same law as the original run.
    """
    parts = []
    user, start, intent, favourites = user.copy(), start.astype(np.float64), intent.copy(), favourites.copy()
    while len(user):
        rate = VISITS_PER_DAY * np.exp(0.5 * taste[user] + 0.8 * intent)
        earliest = start + MIN_VISIT_GAP
        if not_before is not None:
            earliest = np.maximum(earliest, not_before)
            not_before = None
        nxt = earliest + rng.exponential(1.0 / rate) * 86_400
        elapsed = (nxt - start) / 86_400
        rho = np.exp(-elapsed / INTENT_DAYS)
        intent = rho * intent + np.sqrt(1 - rho**2) * rng.standard_normal(len(user))
        replaced = rng.random(favourites.shape) >= np.exp(-elapsed / FAVOURITE_DAYS)[:, None]
        favourites = np.where(replaced, _popular_items(rng, catalogue, favourites.shape), favourites)
        alive = nxt < end
        user, start, intent, favourites = user[alive], nxt[alive], intent[alive], favourites[alive]
        parts.append(Visits(user, start.astype(np.int64), intent, favourites))
    return Visits.concat(parts) if parts else Visits(user, start.astype(np.int64), intent, favourites)


@dataclass
class Shopping:
    """What happened in each visit: its item interactions and whether it checked out."""

    inter_visit: np.ndarray
    item: np.ndarray
    n_views: np.ndarray
    n_carts: np.ndarray
    n_removes: np.ndarray
    in_basket: np.ndarray  # bought at checkout
    p_checkout: np.ndarray  # per visit, NaN without a cart
    checkout: np.ndarray  # per visit


def shop(
    rng: np.random.Generator,
    config: GeneratorConfig,
    catalogue: Catalogue,
    taste: np.ndarray,
    price_sensitivity: np.ndarray,
    treated: np.ndarray,
    visits: Visits,
) -> Shopping:
    """Item interactions of each visit: views, carts, removes (never more than that item's carts)
    and one checkout decision per visit with a cart, which buys the basket.

    Intent, taste and favourites drive carts; price lowers both the chance to cart an item and to
    check out (per-user sensitivity). Every random draw here comes before any outcome-dependent
    count, so a change of ``treatment_effect`` changes treated users' checkouts and nothing else.
    """
    n_s = len(visits.user)
    x, a = visits.intent, taste[visits.user]
    day = visits.start // 86_400
    drifted = np.zeros(n_s, bool) if config.drift_from_day is None else day >= config.drift_from_day
    cart_boost = np.where(drifted, rng.uniform(1.0, 2.5, n_s), 1.0)

    n_inter = 1 + rng.poisson(np.clip(0.8 * np.exp(0.35 * x + 0.15 * a), 0, 8))
    i_vis = np.repeat(np.arange(n_s), n_inter)
    n_i = len(i_vis)
    is_fav = rng.random(n_i) < FAVOURITE_SHARE
    item = np.where(is_fav, visits.favourites[i_vis, rng.integers(0, 3, n_i)], _popular_items(rng, catalogue, n_i))
    log_price = _log_price(catalogue, item)
    beta = price_sensitivity[visits.user][i_vis]
    n_views = 1 + rng.poisson(0.5, n_i)
    cart_logit = -3.2 + 0.7 * x[i_vis] + 0.3 * a[i_vis] + 0.9 * is_fav - beta * log_price
    carted = rng.random(n_i) < _sigmoid(cart_logit)
    n_carts = np.where(carted, np.rint((1 + rng.poisson(2.2, n_i)) * cart_boost[i_vis]).astype(np.int64), 0)
    remove_draw, remove_depth = rng.random(n_i), rng.random(n_i)
    checkout_draw = rng.random(n_s)

    # The checkout decision reads the visit's intent, the user's taste and the first carted item's
    # price; treated users' checkout also gets `treatment_effect` per cart event of the visit.
    carted_at = np.flatnonzero(carted)
    has_cart_visit, first = np.unique(i_vis[carted_at], return_index=True)
    first_cart = carted_at[first]
    p_checkout = np.full(n_s, np.nan)
    p_checkout[has_cart_visit] = _sigmoid(
        -2.8 + 1.0 * x[has_cart_visit] + 0.4 * a[has_cart_visit] - beta[first_cart] * log_price[first_cart]
    )
    cart_events = np.bincount(i_vis, weights=n_carts, minlength=n_s)
    rescued = (1 - config.treatment_effect) ** (cart_events * treated[visits.user])
    p_checkout = 1 - (1 - p_checkout) * rescued
    checkout = ~np.isnan(p_checkout) & (checkout_draw < np.nan_to_num(p_checkout))

    # Removes follow carts of the same item: 1..n_carts of them; a checkout keeps its first item.
    n_removes = np.where(
        carted & (remove_draw < REMOVE_SHARE), np.minimum(1 + (remove_depth * n_carts).astype(np.int64), n_carts), 0
    )
    keep_first = checkout[i_vis[first_cart]]
    n_removes[first_cart[keep_first]] = np.minimum(
        n_removes[first_cart[keep_first]], n_carts[first_cart[keep_first]] - 1
    )
    in_basket = carted & (n_removes < n_carts) & checkout[i_vis]
    return Shopping(i_vis, item, n_views, n_carts, n_removes, in_basket, p_checkout, checkout)


def draw_users(rng: np.random.Generator, config: GeneratorConfig, first_user_id: int, n_users: int) -> pd.DataFrame:
    """The block's users and their hidden traits."""
    user_ids = first_user_id + np.arange(n_users, dtype=np.int64) * 3 + rng.integers(0, 3, n_users)
    return pd.DataFrame(
        {
            "user_id": user_ids,
            "taste": rng.normal(0.0, 1.0, n_users),  # how much of a shopper: a lasting trait
            "price_sensitivity": rng.lognormal(np.log(0.6), 0.5, n_users),
            "treated": is_treated(user_ids, config.experiment_key, config.treatment_share),
            "arrival": rng.uniform(0, config.days * 86_400, n_users).astype(np.int64),
        }
    )


def simulate_block(
    rng: np.random.Generator,
    config: GeneratorConfig,
    catalogue: Catalogue,
    first_user_id: int,
    n_users: int,
    first_session_key: int,
    truth: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Events of ``n_users`` consecutive users, as integer columns (formatting happens in SQL).

    With ``truth`` (a dict), also puts the hidden variables there: ``users`` (traits) and
    ``sessions`` (intent, favourites and checkout probability of every visit).
    """
    users = draw_users(rng, config, first_user_id, n_users)
    taste = users["taste"].to_numpy()
    # Each user arrives once (uniform over the period) in a random mood, then returns.
    arrival = users["arrival"].to_numpy()
    first = Visits(
        np.arange(n_users), arrival, rng.standard_normal(n_users), _popular_items(rng, catalogue, (n_users, 3))
    )
    later = next_visits(
        rng, catalogue, taste, first.user, first.start, first.intent, first.favourites, config.days * 86_400
    )
    # Evening peak: a visit keeps its day and takes a drawn hour (the process sets the days).
    visits = Visits.concat([first, later])
    hour = (rng.normal(18.0, 4.0, len(visits.user)) % 24.0) * 3600
    visits.start = (visits.start // 86_400) * 86_400 + hour.astype(np.int64)
    order = np.lexsort((visits.start, visits.user))
    visits = Visits(visits.user[order], visits.start[order], visits.intent[order], visits.favourites[order])
    n_s = len(visits.user)
    drifted = np.zeros(n_s, bool) if config.drift_from_day is None else visits.start // 86_400 >= config.drift_from_day
    pace = np.where(drifted, rng.uniform(0.5, 3.0, n_s), 1.0)

    s = shop(rng, config, catalogue, taste, users["price_sensitivity"].to_numpy(), users["treated"].to_numpy(), visits)
    # Events: each interaction as views, carts, removes; the checkout's purchases end the visit.
    per_inter = s.n_views + s.n_carts + s.n_removes
    e_inter = np.concatenate([np.repeat(np.arange(len(per_inter)), per_inter), np.flatnonzero(s.in_basket)])
    is_purchase = np.arange(len(e_inter)) >= per_inter.sum()
    pos = np.zeros(len(e_inter), np.int64)
    pos[~is_purchase] = np.arange(per_inter.sum()) - np.repeat(_starts(per_inter), per_inter)
    e_vis = s.inter_visit[e_inter]
    order = np.argsort(e_vis * 2 + is_purchase, kind="stable")
    e_inter, is_purchase, pos, e_vis = e_inter[order], is_purchase[order], pos[order], e_vis[order]
    nv, nc, nr = s.n_views[e_inter], s.n_carts[e_inter], s.n_removes[e_inter]
    etype = np.select(
        [is_purchase, pos < nv, pos < nv + nc, pos < nv + nc + nr], [PURCHASE, VIEW, CART, REMOVE], PURCHASE
    )
    # Seconds since the previous event of the session: browsing is quick, paying takes longer.
    gap = rng.exponential(np.where(etype == PURCHASE, 150.0, 50.0)) * pace[e_vis]
    gap[np.r_[True, is_purchase[1:] & is_purchase[:-1]] & is_purchase] = 20.0  # basket lines together
    events_per_visit = np.bincount(e_vis, minlength=n_s)
    visit_first = _starts(events_per_visit)
    gap[visit_first[events_per_visit > 0]] = 0.0
    offset = _within_group_cumsum(gap, visit_first, events_per_visit).astype(np.int64)
    n_e = len(e_inter)
    user_ids = users["user_id"].to_numpy()
    frame = pd.DataFrame(
        {
            "ts": visits.start[e_vis] + offset,
            "event_type": etype.astype(np.int8),
            "item": s.item[e_inter].astype(np.int32),
            "user_id": user_ids[visits.user[e_vis]],
            "session_key": first_session_key + e_vis,
            "negative_price": rng.random(n_e) < 0.0002,
            "no_session": rng.random(n_e) < 0.0001,
        }
    )
    if truth is not None:
        truth["users"] = users
        truth["sessions"] = pd.DataFrame(
            {
                "session_key": first_session_key + np.arange(n_s),
                "user_id": user_ids[visits.user],
                "ts": visits.start,
                "intent": visits.intent,
                **{f"favourite_{k}": visits.favourites[:, k].astype(np.int32) for k in range(3)},
                "p_checkout": s.p_checkout,
                "checkout": s.checkout,
            }
        )
    # Exact duplicates, as the real export has them (same line twice).
    copies = 1 + (rng.random(n_e) < config.duplicate_share / (1 - config.duplicate_share))
    return frame.loc[frame.index.repeat(copies)].reset_index(drop=True)


def _file_periods(config: GeneratorConfig) -> list[tuple[str, int, int]]:
    """(file stem, first second, end second) of each output file."""
    start = dt.datetime.combine(config.start, dt.time())
    end = start + dt.timedelta(days=config.days)
    periods, cursor = [], start
    while cursor < end:
        if config.file_per == "day":
            stem, nxt = cursor.strftime("%Y-%m-%d"), cursor + dt.timedelta(days=1)
        else:
            stem = f"{cursor.year}-{calendar.month_abbr[cursor.month]}"
            nxt = dt.datetime(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
        nxt = min(nxt, end)
        periods.append((stem, int((cursor - start).total_seconds()), int((nxt - start).total_seconds())))
        cursor = nxt
    return periods


def _stage_catalogue(con: duckdb.DuckDBPyConnection, catalogue: Catalogue) -> None:
    items = pd.DataFrame(
        {
            "item": np.arange(len(catalogue.product_id), dtype=np.int32),
            "product_id": catalogue.product_id,
            "category_id": catalogue.category_id.astype(np.uint64),
            "category_code": pd.Series(np.array(CATEGORY_CODES + ("",))[catalogue.category_code]).replace("", None),
            "brand": pd.Series(np.array(BRANDS + ("",))[catalogue.brand]).replace("", None),
            "price_cents": catalogue.price_cents,
        }
    )
    con.register("items_df", items)
    con.execute("CREATE TABLE items AS SELECT * FROM items_df")
    con.unregister("items_df")


SESSION_UUID_SQL = (  # the session key as a UUID-looking string, like the real export's
    "regexp_replace(md5($salt || {key}), '^(.{{8}})(.{{4}})(.{{4}})(.{{4}})(.{{12}})$', '\\1-\\2-\\3-\\4-\\5')"
)
EXPORT_SQL = """
SELECT strftime($start + to_seconds(e.ts), '%Y-%m-%d %H:%M:%S') || ' UTC' AS event_time,
       ['view', 'cart', 'remove_from_cart', 'purchase'][e.event_type + 1] AS event_type,
       i.product_id, i.category_id, i.category_code, i.brand,
       printf('%.2f', CASE WHEN e.negative_price THEN -1 ELSE 1 END * i.price_cents / 100.0) AS price,
       e.user_id,
       CASE WHEN NOT e.no_session THEN {session_uuid} END AS user_session
FROM events e JOIN items i USING (item)
WHERE e.ts >= $lo AND e.ts < $hi
ORDER BY e.ts, e.seq
""".format(session_uuid=SESSION_UUID_SQL.format(key="e.session_key"))


TRUTH_FILES = ("truth_users.parquet", "truth_sessions.parquet", "truth_config.json")


def _catalogue_for(config: GeneratorConfig) -> Catalogue:
    catalogue_seed, *_ = np.random.SeedSequence(config.seed).spawn(1)
    n_items = int(np.clip(config.events / 40, 200, 400_000))
    return build_catalogue(np.random.default_rng(catalogue_seed), n_items)


def generate(
    out_dir: Path,
    config: GeneratorConfig = GeneratorConfig(),
    log: Callable[[str], None] | None = None,
    truth_dir: Path | None = None,
) -> list[Path]:
    """Write the files into ``out_dir`` and return their paths. Same config, same bytes.

    With ``truth_dir``, also write the world's hidden variables there (``TRUTH_FILES``: Parquet
    and JSON, which the landing folder never picks up): every user's traits and every session's
    intent, favourites and checkout probability, for an oracle (see `purchase_oracle`).
    """
    log = log or logging.getLogger(__name__).info
    out_dir.mkdir(parents=True, exist_ok=True)
    catalogue = _catalogue_for(config)
    staging = Path(tempfile.mkdtemp(prefix="ecom_generate_"))
    try:
        con = duckdb.connect(
            str(staging / "staging.duckdb"), config={"memory_limit": "1GB", "temp_directory": str(staging / "spill")}
        )
        con.execute("SET enable_progress_bar = false")  # a library writing files should not draw on the terminal
        _stage_catalogue(con, catalogue)
        written, block, session_key = 0, 0, 0
        while written < config.events:
            rng = np.random.default_rng([config.seed, 1, block])  # one stream per block: deterministic
            truth: dict[str, pd.DataFrame] | None = {} if truth_dir is not None else None
            frame = simulate_block(
                rng, config, catalogue, 400_000_000 + block * USERS_PER_BLOCK * 3, USERS_PER_BLOCK, session_key, truth
            )
            frame = frame.iloc[: config.events - written]
            last_key = int(frame["session_key"].max()) if len(frame) else session_key - 1
            if truth is not None:
                sessions = truth["sessions"][truth["sessions"]["session_key"].between(session_key, last_key)]
                users = truth["users"][truth["users"]["user_id"].isin(sessions["user_id"])]
                _append(con, "truth_sessions", sessions)
                _append(con, "truth_users", users)
            session_key = last_key + 1
            frame.insert(0, "seq", np.arange(written, written + len(frame), dtype=np.int64))
            _append(con, "events", frame)
            written += len(frame)
            block += 1
            log(f"simulated {written:,} / {config.events:,} events")
        files = []
        params = {"start": dt.datetime.combine(config.start, dt.time()), "salt": f"{config.seed}:"}
        for stem, lo, hi in _file_periods(config):
            target = out_dir / f"{stem}.csv{'.gz' if config.gzip else ''}"
            with replaced_atomically(target) as tmp:  # the landing sensor never sees a half-written file
                con.execute(
                    f"COPY ({EXPORT_SQL}) TO {sql_literal(tmp)} "
                    f"(FORMAT csv, HEADER, COMPRESSION {'gzip' if config.gzip else 'none'})",
                    {**params, "lo": lo, "hi": hi},
                )
            files.append(target)
            log(f"wrote {target}")
        if truth_dir is not None:
            _write_truth(con, Path(truth_dir), config, params)
            log(f"wrote the hidden truth to {truth_dir}")
        con.close()
        return files
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _append(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    con.register("block_df", frame)
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM block_df LIMIT 0")
    con.execute(f"INSERT INTO {table} SELECT * FROM block_df")
    con.unregister("block_df")


def _write_truth(con: duckdb.DuckDBPyConnection, truth_dir: Path, config: GeneratorConfig, params: dict) -> None:
    truth_dir.mkdir(parents=True, exist_ok=True)
    users, sessions, config_file = (truth_dir / name for name in TRUTH_FILES)
    con.execute(
        f"""COPY (SELECT user_id, taste, price_sensitivity, treated, $start + to_seconds(arrival) AS arrival
                  FROM truth_users ORDER BY user_id) TO {sql_literal(users)} (FORMAT parquet)""",
        {"start": params["start"]},
    )
    session_uuid = SESSION_UUID_SQL.format(key="s.session_key")
    con.execute(
        f"""COPY (SELECT s.session_key, {session_uuid} AS user_session, s.user_id,
                         $start + to_seconds(s.ts) AS session_start, s.intent,
                         f0.product_id AS favourite_0, f1.product_id AS favourite_1, f2.product_id AS favourite_2,
                         s.p_checkout, s.checkout
                  FROM truth_sessions s
                  JOIN items f0 ON f0.item = s.favourite_0
                  JOIN items f1 ON f1.item = s.favourite_1
                  JOIN items f2 ON f2.item = s.favourite_2
                  ORDER BY s.user_id, s.ts) TO {sql_literal(sessions)} (FORMAT parquet)""",
        params,
    )
    fields = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(config).items()}
    config_file.write_text(json.dumps(fields, indent=2) + "\n")


def load_truth_config(truth_dir: Path) -> GeneratorConfig:
    fields = json.loads((Path(truth_dir) / TRUTH_FILES[2]).read_text())
    return GeneratorConfig(**{**fields, "start": dt.date.fromisoformat(fields["start"])})


def purchase_oracle(
    truth_dir: Path, cutoffs: list[dt.datetime], horizon_days: int = 7, reps: int = 200, seed: int = 0
) -> pd.DataFrame:
    """The world's own purchase probability: for each cutoff, re-simulate the next ``horizon_days``
    ``reps`` times from every user's hidden state at the cutoff (intent, favourites, taste, price
    sensitivity, arm) and count how often each (user, item) is bought. Returns the pairs bought at
    least once: cutoff, user_id, item_id (product id), p_oracle (a Monte-Carlo share; 1/reps steps).
    """
    truth_dir = Path(truth_dir)
    config = load_truth_config(truth_dir)
    catalogue = _catalogue_for(config)
    users = pd.read_parquet(truth_dir / TRUTH_FILES[0]).set_index("user_id")
    sessions = pd.read_parquet(truth_dir / TRUTH_FILES[1])
    origin = dt.datetime.combine(config.start, dt.time())
    seconds = ((sessions["session_start"] - origin).dt.total_seconds()).to_numpy().astype(np.int64)
    favourites = np.searchsorted(catalogue.product_id, sessions[[f"favourite_{k}" for k in range(3)]].to_numpy())
    frames = []
    for cutoff in cutoffs:
        at = int((pd.Timestamp(cutoff) - origin).total_seconds())
        before = np.flatnonzero(seconds < at)
        last = before[
            ~np.r_[sessions["user_id"].to_numpy()[before][1:] == sessions["user_id"].to_numpy()[before][:-1], False]
        ]
        user_ids = sessions["user_id"].to_numpy()[last]
        traits = users.loc[user_ids]
        taste, beta = traits["taste"].to_numpy(), traits["price_sensitivity"].to_numpy()
        treated = traits["treated"].to_numpy()
        rng = np.random.default_rng([seed, at])
        bought = []
        for _ in range(reps):
            visits = next_visits(
                rng,
                catalogue,
                taste,
                np.arange(len(last)),
                seconds[last],
                sessions["intent"].to_numpy()[last],
                favourites[last],
                at + horizon_days * 86_400,
                not_before=at,
            )
            s = shop(rng, config, catalogue, taste, beta, treated, visits)
            basket = np.flatnonzero(s.in_basket)
            bought.append(np.unique(visits.user[s.inter_visit[basket]] * len(catalogue.product_id) + s.item[basket]))
        keys, counts = np.unique(np.concatenate(bought), return_counts=True)
        frames.append(
            pd.DataFrame(
                {
                    "cutoff": pd.Timestamp(cutoff),
                    "user_id": user_ids[keys // len(catalogue.product_id)],
                    "item_id": catalogue.product_id[keys % len(catalogue.product_id)],
                    "p_oracle": counts / reps,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
