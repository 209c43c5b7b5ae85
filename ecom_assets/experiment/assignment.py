"""Deterministic experiment assignment, identical in Python (the generator) and SQL (the pipeline).

A user's bucket is the first 32 bits of md5("<experiment_key>:<user_id>") modulo 10,000; buckets
below ``treatment_share * 10_000`` are treatment. Salting with the experiment key keeps different
experiments independent; md5 is stable across processes, machines and DuckDB versions (unlike
Python's ``hash`` or DuckDB's ``hash``). The legacy scheme of the system we replaced,
``int(md5(str(user_id)), 16) % 2``, is kept so its results can be reproduced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

DEFAULT_EXPERIMENT_KEY = "checkout_redesign"
DEFAULT_TREATMENT_SHARE = 0.5
BUCKETS = 10_000
CONTROL, TREATMENT = "control", "treatment"


def _threshold(treatment_share: float) -> int:
    if not 0.0 < treatment_share < 1.0:
        raise ValueError(f"treatment_share must be strictly between 0 and 1, got {treatment_share}")
    return round(treatment_share * BUCKETS)


def bucket(user_id: int | str, experiment_key: str = DEFAULT_EXPERIMENT_KEY) -> int:
    digest = hashlib.md5(f"{experiment_key}:{user_id}".encode()).hexdigest()
    return int(digest[:8], 16) % BUCKETS


def assign_group(
    user_id: int | str, experiment_key: str = DEFAULT_EXPERIMENT_KEY, treatment_share: float = DEFAULT_TREATMENT_SHARE
) -> str:
    return TREATMENT if bucket(user_id, experiment_key) < _threshold(treatment_share) else CONTROL


def is_treated(
    user_ids: Iterable[int],
    experiment_key: str = DEFAULT_EXPERIMENT_KEY,
    treatment_share: float = DEFAULT_TREATMENT_SHARE,
) -> np.ndarray:
    """Vectorised-enough for the generator: one md5 per user (about 1 s per million users)."""
    threshold = _threshold(treatment_share)
    return np.fromiter((bucket(int(u), experiment_key) < threshold for u in user_ids), dtype=bool)


def legacy_group(user_id: int | str) -> str:
    """The seed project's parity scheme: odd md5 -> treatment."""
    return TREATMENT if int(hashlib.md5(str(user_id).encode()).hexdigest(), 16) % 2 else CONTROL


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def group_sql(
    user_expr: str, experiment_key: str = DEFAULT_EXPERIMENT_KEY, treatment_share: float = DEFAULT_TREATMENT_SHARE
) -> str:
    """The same assignment as a DuckDB SQL expression over ``user_expr``."""
    digest = f"md5({_sql_str(experiment_key + ':')} || CAST({user_expr} AS VARCHAR))"
    bucket_sql = f"(CAST('0x' || substr({digest}, 1, 8) AS UBIGINT) % {BUCKETS})"
    return f"CASE WHEN {bucket_sql} < {_threshold(treatment_share)} THEN '{TREATMENT}' ELSE '{CONTROL}' END"


def legacy_group_sql(user_expr: str) -> str:
    """The legacy parity scheme in SQL: the parity of a hex number is the parity of its last digit."""
    last_digit = f"CAST('0x' || right(md5(CAST({user_expr} AS VARCHAR)), 1) AS INTEGER)"
    return f"CASE WHEN {last_digit} % 2 = 1 THEN '{TREATMENT}' ELSE '{CONTROL}' END"
