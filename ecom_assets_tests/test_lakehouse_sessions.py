"""Sessionization (lakehouse/sql/gold_fact_user_sessions.sql): events with the same time for one user
(ties) belong to one session whatever order their files and lines give them, also when the tie is
the first moment of a session; the gap rule (more than the gap starts a session, exactly the gap
does not) and the funnel counts per session."""

from __future__ import annotations

import datetime as dt
import random

from ecom_assets.lakehouse import event_days
from ecom_assets.resources import build_resources, open_warehouse
from ecom_assets_tests.conftest import load_silver_events

DAY = dt.datetime(2019, 10, 1)
USERS = 200


def _user_events(user_id: int) -> list[dict]:
    at = lambda h, m, s=0: DAY + dt.timedelta(hours=h, minutes=m, seconds=s)  # noqa: E731
    event = lambda t, kind, item, price=1.0: dict(  # noqa: E731
        event_time=t, event_type=kind, user_id=user_id, item_id=item, price=price
    )
    return [
        # session 1: two events at the same second
        event(at(10, 0), "view", 1),
        event(at(10, 0), "view", 2),
        # session 2 starts 45 min later with three tied events, then one exactly 30 min on (no new session)
        event(at(10, 45), "cart", 1),
        event(at(10, 45), "view", 3),
        event(at(10, 45), "purchase", 1, 12.34),
        event(at(11, 15), "remove_from_cart", 4),
        # session 3: 30 min 1 s after, two tied events
        event(at(11, 45, 1), "view", 5),
        event(at(11, 45, 1), "purchase", 5, 0.1),
    ]


EXPECTED = [
    # start, end, events, distinct_items, views, carts, removes, purchases, revenue
    (DAY + dt.timedelta(hours=10), DAY + dt.timedelta(hours=10), 2, 2, 2, 0, 0, 0, 0.0),
    (DAY + dt.timedelta(hours=10, minutes=45), DAY + dt.timedelta(hours=11, minutes=15), 4, 3, 1, 1, 1, 1, 12.34),
    (DAY + dt.timedelta(hours=11, minutes=45, seconds=1),) * 2 + (2, 1, 1, 0, 0, 1, 0.1),
]


def _shuffled_lines(seed: int) -> list[dict]:
    """Every user's events, in a random line order over two files: ties come in every order."""
    rng = random.Random(seed)
    events = [e | {"source_file": rng.choice(["a.csv", "b.csv"])} for u in range(1, USERS + 1) for e in _user_events(u)]
    rng.shuffle(events)
    return events


def _sessions(con, start: dt.datetime, end: dt.datetime) -> list[tuple]:
    event_days.stage_sessions(con, start, end, 30)
    return con.execute(
        """SELECT user_id, session_id, session_start, session_end, events, distinct_items, views, carts, removes,
                  purchases, revenue, session_date
           FROM staged_sessions ORDER BY user_id, session_start"""
    ).fetchall()


def test_tied_events_share_one_session_whatever_their_line_order(paths):
    resources = build_resources(paths)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        results = []
        for seed in range(3):
            load_silver_events(con, _shuffled_lines(seed))
            results.append(_sessions(con, DAY, DAY + dt.timedelta(days=1)))
        # a range that starts later (the day after) and one that ends before: no session of this day
        assert _sessions(con, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)) == []
        assert _sessions(con, DAY - dt.timedelta(days=1), DAY) == []
    first = results[0]
    assert all(r == first for r in results[1:])
    assert len(first) == USERS * len(EXPECTED)
    for row, expected in zip(first, EXPECTED * USERS, strict=True):
        user_id, session_id, *counts, session_date = row
        assert tuple(counts) == expected
        assert session_id == f"{user_id}-{expected[0]:%Y%m%dT%H%M%S}"
        assert session_date == DAY.date()
