"""Where a run's steps execute, chosen by ECOM_EXECUTOR (docs/cluster.md): Dagster's own executors only.

- `in_process` (the default, both profiles): every step in the run's process, one after the other.
  The steps take turns at the warehouse anyway (its write lock); in `local` this is the cheapest.
- `celery`: each step is a Celery task on a queue (`dagster_celery`); workers started with
  `ecom-assets worker` on any machine that reaches the broker and the cluster profile's services take
  them. A worker shares nothing else with the run: the step reads and writes the lake, MLflow and
  the files' bucket.

The choice is read when the definitions are built, like the profile: a missing broker fails then.
"""

from __future__ import annotations

import dagster as dg

from ecom_assets.ecom_home import env_str
from ecom_assets.profile import ProfileError

IN_PROCESS, CELERY = "in_process", "celery"
EXECUTORS = (IN_PROCESS, CELERY)

BROKER_VARIABLE, BACKEND_VARIABLE = "ECOM_CELERY_BROKER_URL", "ECOM_CELERY_BACKEND_URL"

# Celery settings that make a step survive the loss of the worker running it: the task is acknowledged
# only when it ends (acks_late), and a worker whose process died hands it back to the queue
# (reject_on_worker_lost), where another worker takes it. One task per worker process at a time
# (prefetch 1): a long training must not hold a queued step hostage.
CELERY_SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
}


def executor_kind() -> str:
    """ECOM_EXECUTOR, checked: `in_process` when unset."""
    kind = env_str("ECOM_EXECUTOR", IN_PROCESS).lower()
    if kind not in EXECUTORS:
        raise ProfileError(f"ECOM_EXECUTOR={kind!r}: expected one of {', '.join(EXECUTORS)}")
    return kind


def celery_urls() -> tuple[str, str]:
    """(broker, result backend): ECOM_CELERY_BROKER_URL, and ECOM_CELERY_BACKEND_URL or the broker."""
    broker = env_str(BROKER_VARIABLE, "")
    if not broker:
        raise ProfileError(
            f"ECOM_EXECUTOR=celery needs {BROKER_VARIABLE} (unset): the Celery broker, e.g. redis://host:6379/0"
        )
    return broker, env_str(BACKEND_VARIABLE, broker)


def step_executor() -> dg.ExecutorDefinition:
    """The executor every job of the code location runs its steps with."""
    if executor_kind() == IN_PROCESS:
        return dg.in_process_executor
    from dagster_celery import celery_executor

    celery_urls()  # fail now, naming the variable, rather than at the first run
    backend = BACKEND_VARIABLE if env_str(BACKEND_VARIABLE, "") else BROKER_VARIABLE
    return celery_executor.configured(
        {"broker": {"env": BROKER_VARIABLE}, "backend": {"env": backend}, "config_source": CELERY_SETTINGS},
        name="celery",
    )
