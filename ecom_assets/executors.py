"""Where a run's steps execute, chosen by ECOM_EXECUTOR (docs/cluster.md): Dagster's own executors only.

- `in_process` (the default, both profiles): every step in the run's process, one after the other.
  The steps take turns at the warehouse anyway (its write lock); in `local` this is the cheapest.
- `celery`: each step is a Celery task on a queue (`dagster_celery`); workers started with
  `ecom-assets worker` on any machine that reaches the broker and the cluster profile's services take
  them. A worker shares nothing else with the run: the step reads and writes the lake, MLflow and
  the files' bucket.
- `k8s`: each step is a Kubernetes Job from the code location's image (`dagster_k8s.k8s_job_executor`),
  launched by the run's pod under the Helm chart's `K8sRunLauncher` (docs/kubernetes.md). Step pods
  get the cluster profile's variables from a ConfigMap and a Secret; they too share nothing but the
  services, so this executor needs `ECOM_PROFILE=cluster`.

The choice is read when the definitions are built, like the profile: a missing broker fails then.
"""

from __future__ import annotations

import dagster as dg

from ecom_assets.ecom_home import env_str
from ecom_assets.profile import CLUSTER, ProfileError, active_profile

IN_PROCESS, CELERY, K8S = "in_process", "celery", "k8s"
EXECUTORS = (IN_PROCESS, CELERY, K8S)

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

# The Kubernetes objects that hold the cluster profile's variables (deploy/k8s/ecom-assets-env.example.yaml):
# the ConfigMap the addresses, the Secret the keys and the Postgres URLs with their passwords.
K8S_ENV_CONFIG_MAP, K8S_ENV_SECRET = "ecom-assets-env", "ecom-assets-secrets"
# Per step pod. A DuckDB step stays under ECOM_DUCKDB_MEMORY_LIMIT (2GB) plus Python; the steps that fit or
# refit a model hold a training sample and its scores beside it (3.7 GB peak at 20M events,
# docs/benchmarks.md), so they ask for more. Keyed by op name, as the executor's per_step_k8s_config is.
K8S_STEP_RESOURCES = {"requests": {"cpu": "1", "memory": "3Gi"}, "limits": {"memory": "4Gi"}}
K8S_TRAINING_STEPS = ("ml__purchase_model", "ml__cart_abandonment_model", "gold__ecommerce_predictions")
K8S_TRAINING_RESOURCES = {"requests": {"cpu": "2", "memory": "6Gi"}, "limits": {"memory": "10Gi"}}
# Step pods of one run at a time. Writers take turns anyway (the `warehouse` pool, limit 1, enforced on
# the instance across runs and pods); the rest (the day-partitioned sessions, checks, reports) overlap.
K8S_MAX_CONCURRENT_STEPS = 4
K8S_SETTINGS = {
    "env_config_maps": [K8S_ENV_CONFIG_MAP],
    "env_secrets": [K8S_ENV_SECRET],
    "max_concurrent": K8S_MAX_CONCURRENT_STEPS,
    "retries": {"enabled": {}},  # a step with a RetryPolicy is retried in a new pod
    "step_k8s_config": {"container_config": {"resources": K8S_STEP_RESOURCES}},
    "per_step_k8s_config": {
        step: {"container_config": {"resources": K8S_TRAINING_RESOURCES}} for step in K8S_TRAINING_STEPS
    },
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


def runs_on_workers(executor: dg.ExecutorDefinition) -> bool:
    """Whether `executor` hands steps to other processes that load the code location themselves (so a
    run must be launched from the reconstructable job, never from one in memory)."""
    return executor.name in (CELERY, K8S)


def step_executor() -> dg.ExecutorDefinition:
    """The executor every job of the code location runs its steps with."""
    kind = executor_kind()
    if kind == IN_PROCESS:
        return dg.in_process_executor
    if active_profile() != CLUSTER:
        raise ProfileError(
            f"ECOM_EXECUTOR={kind} needs ECOM_PROFILE=cluster: its workers share nothing with the run but the"
            " cluster profile's services (docs/cluster.md)"
        )
    if kind == K8S:
        return k8s_step_executor()
    from dagster_celery import celery_executor

    celery_urls()  # fail now, naming the variable, rather than at the first run
    backend = BACKEND_VARIABLE if env_str(BACKEND_VARIABLE, "") else BROKER_VARIABLE
    return celery_executor.configured(
        {"broker": {"env": BROKER_VARIABLE}, "backend": {"env": backend}, "config_source": CELERY_SETTINGS},
        name="celery",
    )


def k8s_step_executor() -> dg.ExecutorDefinition:
    """Each step a Kubernetes Job from the run's image, with the cluster profile's variables (K8S_SETTINGS)."""
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor.configured(K8S_SETTINGS, name="k8s")
