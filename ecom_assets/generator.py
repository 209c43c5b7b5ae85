"""The synthetic world: REES46-format clickstream files shaped like the real cosmetics-shop export.

Users have a latent engagement; engaged users come back more often, look at more items and buy
more. A session is a run of item interactions (views, carts, removes, a purchase last) a minute or
two apart; sessions of a user are days apart, so 30-minute sessionization recovers them. Each user
keeps a few favourite items they return to, which is what makes "will this user buy this item"
learnable from earlier interactions. Treated users (the same md5 assignment the pipeline uses) get
the checkout effect: each of their cart events turns into a purchase with probability
``treatment_effect``.

Everything is simulated in numpy, a block of users at a time (bounded memory), staged in a
temporary DuckDB file and written per month (or day) sorted by time, to a temp name first.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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


def simulate_block(
    rng: np.random.Generator,
    config: GeneratorConfig,
    catalogue: Catalogue,
    first_user_id: int,
    n_users: int,
    first_session_key: int,
) -> pd.DataFrame:
    """Events of ``n_users`` consecutive users, as integer columns (formatting happens in SQL)."""
    days = config.days
    user_ids = first_user_id + np.arange(n_users, dtype=np.int64) * 3 + rng.integers(0, 3, n_users)
    engagement = rng.normal(0.0, 1.0, n_users)  # latent; drives everything a model can learn from
    treated = is_treated(user_ids, config.experiment_key, config.treatment_share)
    favourites = rng.choice(len(catalogue.product_id), (n_users, 3), p=catalogue.popularity)

    # Sessions: returning users come back after exponential gaps, more often when engaged.
    n_sessions = 1 + rng.poisson(1.6 * np.exp(0.6 * engagement))
    s_user = np.repeat(np.arange(n_users), n_sessions)
    first = _starts(n_sessions)
    gap_days = rng.exponential(4.0 / np.exp(0.3 * engagement[s_user]))
    gap_days[first] = rng.uniform(0, days, n_users)
    s_day = np.floor(_within_group_cumsum(gap_days, first, n_sessions)).astype(np.int64)
    keep = s_day < days
    s_user, s_day = s_user[keep], s_day[keep]
    n_s = len(s_user)
    hour = rng.normal(18.0, 4.0, n_s) % 24.0  # evening peak
    s_start = s_day * 86_400 + (hour * 3600).astype(np.int64)
    drifted = np.zeros(n_s, bool) if config.drift_from_day is None else s_day >= config.drift_from_day
    cart_boost = np.where(drifted, rng.uniform(1.0, 2.5, n_s), 1.0)
    pace = np.where(drifted, rng.uniform(0.5, 3.0, n_s), 1.0)

    # Item interactions within a session: view(s), maybe cart(s) and removes, maybe a purchase.
    n_inter = 1 + rng.poisson(np.clip(0.9 * np.exp(0.35 * engagement[s_user]), 0, 8))
    i_sess = np.repeat(np.arange(n_s), n_inter)
    i_user = s_user[i_sess]
    n_i = len(i_sess)
    is_fav = rng.random(n_i) < 0.45
    item = np.where(
        is_fav,
        favourites[i_user, rng.integers(0, 3, n_i)],
        rng.choice(len(catalogue.product_id), n_i, p=catalogue.popularity),
    )
    z = engagement[i_user]
    n_views = 1 + rng.poisson(0.5, n_i)
    carted = rng.random(n_i) < 1 / (1 + np.exp(-(-0.1 + 0.5 * z + 0.6 * is_fav)))
    n_carts = np.where(carted, np.rint((1 + rng.poisson(0.45, n_i)) * cart_boost[i_sess]).astype(np.int64), 0)
    n_removes = np.where(carted, rng.poisson(1.0, n_i), 0)
    buy_logit = -2.3 + 0.9 * z + 0.35 * (n_views - 1) + 1.0 * is_fav
    bought = carted & (rng.random(n_i) < 1 / (1 + np.exp(-buy_logit)))
    checkout_effect = 1 - (1 - config.treatment_effect) ** n_carts
    bought |= carted & treated[i_user] & (rng.random(n_i) < checkout_effect)

    # Events: flatten each interaction as views, carts, removes, purchase.
    per_inter = n_views + n_carts + n_removes + bought
    e_inter = np.repeat(np.arange(n_i), per_inter)
    pos = np.arange(len(e_inter)) - np.repeat(_starts(per_inter), per_inter)
    nv, nc, nr = n_views[e_inter], n_carts[e_inter], n_removes[e_inter]
    etype = np.select([pos < nv, pos < nv + nc, pos < nv + nc + nr], [VIEW, CART, REMOVE], PURCHASE)
    e_sess = i_sess[e_inter]
    # Seconds since the previous event of the session: browsing is quick, paying takes longer.
    gap = rng.exponential(np.where(etype == PURCHASE, 150.0, 50.0)) * pace[e_sess]
    events_per_session = np.bincount(e_sess, minlength=n_s)
    session_first = _starts(events_per_session)
    gap[session_first] = 0.0
    offset = _within_group_cumsum(gap, session_first, events_per_session).astype(np.int64)
    n_e = len(e_inter)
    frame = pd.DataFrame(
        {
            "ts": s_start[e_sess] + offset,
            "event_type": etype.astype(np.int8),
            "item": item[e_inter].astype(np.int32),
            "user_id": user_ids[s_user[e_sess]],
            "session_key": first_session_key + e_sess,
            "negative_price": rng.random(n_e) < 0.0002,
            "no_session": rng.random(n_e) < 0.0001,
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


EXPORT_SQL = """
SELECT strftime($start + to_seconds(e.ts), '%Y-%m-%d %H:%M:%S') || ' UTC' AS event_time,
       ['view', 'cart', 'remove_from_cart', 'purchase'][e.event_type + 1] AS event_type,
       i.product_id, i.category_id, i.category_code, i.brand,
       printf('%.2f', CASE WHEN e.negative_price THEN -1 ELSE 1 END * i.price_cents / 100.0) AS price,
       e.user_id,
       CASE WHEN NOT e.no_session THEN
         regexp_replace(md5($salt || e.session_key), '^(.{8})(.{4})(.{4})(.{4})(.{12})$', '\\1-\\2-\\3-\\4-\\5')
       END AS user_session
FROM events e JOIN items i USING (item)
WHERE e.ts >= $lo AND e.ts < $hi
ORDER BY e.ts, e.seq
"""


def generate(
    out_dir: Path, config: GeneratorConfig = GeneratorConfig(), log: Callable[[str], None] | None = None
) -> list[Path]:
    """Write the files into ``out_dir`` and return their paths. Same config, same bytes."""
    log = log or logging.getLogger(__name__).info
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(config.seed)
    catalogue_seed, *_ = seeds.spawn(1)
    n_items = int(np.clip(config.events / 40, 200, 400_000))
    catalogue = build_catalogue(np.random.default_rng(catalogue_seed), n_items)
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
            frame = simulate_block(
                rng, config, catalogue, 400_000_000 + block * USERS_PER_BLOCK * 3, USERS_PER_BLOCK, session_key
            )
            frame = frame.iloc[: config.events - written]
            session_key = int(frame["session_key"].max()) + 1 if len(frame) else session_key
            frame.insert(0, "seq", np.arange(written, written + len(frame), dtype=np.int64))
            con.register("block_df", frame)
            con.execute("CREATE TABLE IF NOT EXISTS events AS SELECT * FROM block_df LIMIT 0")
            con.execute("INSERT INTO events SELECT * FROM block_df")
            con.unregister("block_df")
            written += len(frame)
            block += 1
            log(f"simulated {written:,} / {config.events:,} events")
        files = []
        for stem, lo, hi in _file_periods(config):
            target = out_dir / f"{stem}.csv{'.gz' if config.gzip else ''}"
            with replaced_atomically(target) as tmp:  # the landing sensor never sees a half-written file
                con.execute(
                    f"COPY ({EXPORT_SQL}) TO {sql_literal(tmp)} "
                    f"(FORMAT csv, HEADER, COMPRESSION {'gzip' if config.gzip else 'none'})",
                    {
                        "start": dt.datetime.combine(config.start, dt.time()),
                        "lo": lo,
                        "hi": hi,
                        "salt": f"{config.seed}:",
                    },
                )
            files.append(target)
            log(f"wrote {target}")
        con.close()
        return files
    finally:
        shutil.rmtree(staging, ignore_errors=True)
