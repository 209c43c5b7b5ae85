"""MLflow: where runs go, how a model is logged and registered, champion/challenger, loading.

Tracking and registry live in ECOM_HOME (`sqlite:///…/mlflow.db`, artifacts in `mlartifacts/`)
unless MLFLOW_TRACKING_URI says otherwise; in the cluster profile (ecom_assets/profile.py) they
are ECOM_MLFLOW_TRACKING_URI's Postgres database, artifacts under ECOM_MLFLOW_ARTIFACTS_URL in the
object store. `tracking_uri` is that rule, for the assets, the API
and the tests alike. Every training run registers its champion as a new version with the alias
`challenger`; the alias `production` moves to it only when it beats the current production
version on the same holdout by more than a margin and beyond bootstrap noise (DESIGN decision 7),
and `challenger` is then removed. A registry that cannot be read is an error (`RegistryError`),
never "no production yet". Scoring always loads `models:/<name>@production`.

Every experiment carries `mlflow.experimentKind = custom_model_development`, so the MLflow UI
opens it on the classic-ML view (runs, metrics, models), not the GenAI one (traces, token cost);
experiments, runs, registered models and versions carry descriptions (what is predicted from which
table and label, the holdout metrics).

Artifact locations are absolute `file://` URIs into ECOM_HOME/mlartifacts: MLflow resolves a
relative artifact location against the working directory when the experiment is created, and
`mlflow-artifacts:` URIs are served only through an `mlflow server` (the assets log straight to
sqlite). A copied or moved ECOM_HOME therefore still reads its artifacts from the old folder until
its mlflow.db is rewritten (`rehome_registry`, used by the tests' and the benchmarks' copies);
MLflow has no API to move an experiment's artifact location.

A training run is tagged with the process that logs it; one whose process was killed stays
RUNNING in MLflow, so `close_orphan_runs` marks it KILLED, with a note, before the next training.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from ecom_assets import processes
from ecom_assets.ecom_home import EcomPaths, env_str
from ecom_assets.ml.feature_specs import FeatureSpec, ModelTask, coerce, names
from ecom_assets.ml.training import (
    PRIMARY_METRIC,
    GateOutcome,
    TrainingResult,
    positive_class,
    predict_proba,
    promotion_gate,
)
from ecom_assets.profile import cluster_config

PRODUCTION, CHALLENGER = "production", "challenger"
NOTE_TAG = "mlflow.note.content"  # an experiment's or a run's description in the MLflow UI
RISK_HIGH_TAG = "risk_high_from"  # a version's high-risk edge (see `risk_high_edge`)
HIGH_RISK_QUANTILE = 0.9
REFERENCE_ARTIFACT = "reference/training_features.parquet"  # drift monitoring's reference data
REFERENCE_ROWS = 5_000


def tracking_uri(paths: EcomPaths | None = None, configured: str | None = None) -> str:
    """Where MLflow tracks and registers: the one rule the assets, the API and the tests call.

    `configured` is MLFLOW_TRACKING_URI's value (in a run, `MLSettings.tracking_uri`); None reads
    the variable now. Blank means the local default, `sqlite:///<ECOM_HOME>/mlflow.db`.
    """
    if configured is None:
        configured = env_str("MLFLOW_TRACKING_URI", "")
    if configured.strip():
        return configured.strip()
    cluster = cluster_config()
    if cluster is not None:
        _point_s3_client(cluster.s3_endpoint_url)
        return cluster.mlflow_tracking_uri
    return f"sqlite:///{(paths or EcomPaths.from_env()).mlflow_db}"


def _point_s3_client(endpoint: str) -> None:
    if endpoint:  # an S3-compatible server rather than AWS
        os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", endpoint)


def artifact_location(artifact_root: Path, experiment_name: str) -> str:
    """A new experiment's artifact location: under ECOM_HOME's `mlartifacts/`, or in the cluster
    profile under ECOM_MLFLOW_ARTIFACTS_URL. MLflow's S3 client (boto3) reads the keys from AWS_* and
    the server from MLFLOW_S3_ENDPOINT_URL, set here from ECOM_S3_ENDPOINT_URL unless already set."""
    cluster = cluster_config()
    if cluster is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        return (artifact_root / experiment_name).as_uri()
    _point_s3_client(cluster.s3_endpoint_url)
    return f"{cluster.mlflow_artifacts_url.rstrip('/')}/{experiment_name}"


def client(uri: str):
    """A client bound to `uri` for tracking and registry; it changes no process-wide setting."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextmanager
def using_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (start_run, log_model, load_model) at `uri`, then put it back.

    `mlflow.set_tracking_uri` / `set_registry_uri` also write MLFLOW_TRACKING_URI and
    MLFLOW_REGISTRY_URI into os.environ; left behind, they would redirect every later MLflow
    client in the process (the API, the monitoring code, other tests) to this registry.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_globals = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    saved_env = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved_globals
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# The MLflow UI reads this experiment tag to choose its view; unset, MLflow 3 opens the GenAI one.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CLASSIC_ML_KIND = "custom_model_development"  # shown as "Machine learning" in the UI


def ensure_experiment(uri: str, name: str, artifact_root: Path, description: str | None = None) -> str:
    """The experiment's id, creating it with its artifacts under ECOM_HOME (not ./mlruns), or in the
    cluster profile's bucket.

    New and existing experiments get the classic-ML kind and, when given, the description.
    """
    mlflow_client = client(uri)
    tags = {EXPERIMENT_KIND_TAG: CLASSIC_ML_KIND}
    if description:
        tags[NOTE_TAG] = description
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is None:
        location = artifact_location(artifact_root, name)
        return mlflow_client.create_experiment(name, artifact_location=location, tags=tags)
    for key, value in tags.items():
        if experiment.tags.get(key) != value:  # an experiment made by an older version
            mlflow_client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def rehome_registry(db: Path, old: str, new: str) -> None:
    """Point a copied or moved local MLflow store (`mlflow.db`) at its new home: the home's path `old`
    becomes `new` in every text column (experiments' artifact locations, runs' artifact URIs, model
    versions' sources), as a plain path and as in a `file://` URI (where a space is `%20`)."""
    pairs = dict.fromkeys([(old, new), (Path(old).as_uri(), Path(new).as_uri())])
    with closing(sqlite3.connect(db)) as con, con:  # `with con`: one transaction, committed at the end
        tables = [row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in con.execute(f'PRAGMA table_info("{table}")').fetchall():
                name, kind = column[1], (column[2] or "").upper()
                if "CHAR" in kind or "TEXT" in kind:
                    for before, after in pairs:
                        con.execute(
                            f'UPDATE "{table}" SET "{name}" = replace("{name}", ?, ?) WHERE "{name}" LIKE ?',
                            [before, after, f"%{before}%"],
                        )


HOST_TAG, PID_TAG = "ecom.host", "ecom.pid"  # the process that logs a run


def process_tags() -> dict[str, str]:
    return {HOST_TAG: processes.HOST, PID_TAG: str(os.getpid())}


def _orphaned(run, uri: str) -> bool:
    """Whether a RUNNING run's process is gone. Only this machine's processes can be checked: a
    run logged elsewhere is judged only with a local (sqlite) store, whose runs all ran here (or in
    an earlier container on the same volume). A run without process tags (logged by an older
    version) is orphaned if it began before this process started."""
    tags = run.data.tags
    started = run.info.start_time / 1000
    if PID_TAG not in tags:
        return started < (processes.started_at(os.getpid()) or 0.0)
    if tags.get(HOST_TAG) != processes.HOST and not uri.startswith("sqlite:"):
        return False
    return not processes.is_running(int(tags[PID_TAG]), seen_at=started)


def close_orphan_runs(uri: str, experiment_id: str) -> list[str]:
    """Mark KILLED, with a note, the experiment's RUNNING runs whose process is gone; their ids."""
    from mlflow.entities import ViewType

    mlflow_client = client(uri)
    closed = []
    running = mlflow_client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", run_view_type=ViewType.ACTIVE_ONLY
    )
    for run in running:
        if not _orphaned(run, uri):
            continue
        pid = run.data.tags.get(PID_TAG, "unknown")
        mlflow_client.set_tag(
            run.info.run_id,
            NOTE_TAG,
            f"Marked KILLED by ecom-assets: the process that logged this run (pid {pid}) ended without "
            "closing it (killed, out of memory or a reboot). Nothing was registered from it.",
        )
        mlflow_client.set_terminated(run.info.run_id, status="KILLED")
        closed.append(run.info.run_id)
    return closed


def pip_requirements() -> list[str]:
    # Named explicitly: inferring them starts a subprocess that loads the model (slow, offline).
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("scikit-learn", "pandas", "numpy", "scipy", "skops")]


def trusted_types(model: Any) -> list[str]:
    """Types skops must be told to trust (HistGradientBoosting's TreePredictor, ...): we built the model."""
    import skops.io as sio

    return sio.get_untrusted_types(data=sio.dumps(model))


def risk_high_edge(threshold: float, training_scores: np.ndarray | None = None) -> float:
    """Where the "high" risk band starts: the training scores' 90th percentile when it lies above
    the decision threshold, else (threshold + 1) / 2. Always strictly between threshold and 1
    (for a threshold below 1), so the three bands exist and "low" is exactly "not above threshold"."""
    fallback = (threshold + 1) / 2
    if training_scores is None or len(training_scores) == 0:
        return fallback
    edge = float(np.quantile(np.asarray(training_scores, dtype=np.float64), HIGH_RISK_QUANTILE))
    return edge if threshold < edge < 1 else fallback


def _metrics_table(metrics: dict[str, float]) -> str:
    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in metrics.items())
    return "| holdout metric | value |\n|---|---|\n" + rows


def task_description(task: ModelTask) -> str:
    """What a model predicts and from what: the registered model's and the experiment's description."""
    return (
        f"**{task.what.capitalize()}**: the probability that `{task.label}` is 1 for a row of "
        f"`{task.feature_table}` (one row per {', '.join(task.keys)}). Positive class: "
        f"{positive_class(task.label)}.\n\n"
        f"Features ({len(task.specs)}): {', '.join(f'`{s.name}`' for s in task.specs)}.\n\n"
        "Every training registers its champion family (best validation PR-AUC among gradient boosting, "
        "logistic regression and random forest) as a new version with the alias `challenger`. "
        "`production` moves to it only when its holdout PR-AUC beats production's on the same rows by "
        "more than the promotion margin with the 90% paired-bootstrap interval above zero, and its "
        "PR-AUC is above the no-skill one (the base rate); `challenger` is then removed. The scoring "
        "service and batch scoring load "
        f"`models:/{task.registered_model}@production`."
    )


def baseline_lines(label: str, metrics: dict[str, float]) -> list[str]:
    """The holdout metrics read against their baselines, in words (run and version descriptions)."""
    lines = [
        f"Positive class: {positive_class(label)}; holdout base rate {metrics['base_rate']:.4f}.",
        f"PR-AUC {metrics['pr_auc']:.4f} against a no-skill {metrics['no_skill_pr_auc']:.4f}: "
        f"lift {metrics['pr_auc_lift']:.2f}x.",
        f"Brier {metrics['brier']:.4f} against {metrics['brier_base_rate']:.4f} for the base-rate forecast: "
        f"skill score {metrics['brier_skill']:.3f}.",
    ]
    if "candidate_coverage" in metrics:
        lines.append(
            f"Candidate coverage {metrics['candidate_coverage']:.4f}: the share of the "
            f"{metrics['purchased_pairs']:,.0f} (user, item) pairs bought in the test window that have a "
            f"candidate row at all; recall over all purchases {metrics['recall_over_all_purchases']:.4f} "
            f"(recall {metrics['recall']:.4f} on the candidates x coverage)."
        )
    return lines


def version_description(
    task: ModelTask,
    result: TrainingResult,
    risk_high_from: float,
    trained_at: str,
    run_id: str | None = None,
    holdout: dict[str, float] | None = None,
) -> str:
    """A version's (and its run's) description: the task, the data, the decision rule, the holdout."""
    champion = result.champion
    holdout = holdout or champion.test
    lines = [
        f"{champion.family.replace('_', ' ').capitalize()} (champion on validation PR-AUC) for "
        f"**{task.what}**: P(`{task.label}` = 1) from `{task.feature_table}`, "
        f"trained {trained_at} on {result.trained_rows:,} rows.",
        "",
        f"Decision threshold {champion.threshold:.4f} (F1-maximising on validation). Risk bands: low below the "
        f"threshold, high from {risk_high_from:.4f} (`{RISK_HIGH_TAG}`: the training scores' 90th "
        "percentile, or midway from the threshold to 1 when that is not above it), medium between.",
        "",
        *baseline_lines(task.label, holdout),
        "",
        _metrics_table(holdout),
        "",
        "Every family on the holdout (the recency baseline is a reference, never a champion):",
        "",
        result.comparison()[["role", "validation_pr_auc", "pr_auc", "pr_auc_lift", "roc_auc", "brier_skill"]]
        .reset_index()
        .to_markdown(index=False),
    ]
    if run_id:
        lines += ["", f"MLflow run `{run_id}`."]
    return "\n".join(lines)


@dataclass
class LoggedModel:
    run_id: str
    version: str
    model_uri: str
    trained_at: str


def champion_holdout_metrics(result: TrainingResult, extra: dict[str, float] | None = None) -> dict[str, float]:
    """The champion's holdout metrics plus metrics measured outside the training core (the purchase
    model's candidate coverage): recall over all purchases = recall on candidates x coverage."""
    metrics = dict(result.champion.test)
    if extra:
        metrics.update(extra)
        if "candidate_coverage" in extra:
            metrics["recall_over_all_purchases"] = metrics["recall"] * extra["candidate_coverage"]
    return metrics


def log_training_run(
    uri: str,
    experiment_id: str,
    model_name: str,
    result: TrainingResult,
    params: dict[str, Any],
    figures: Sequence[Path] = (),
    tables: dict[str, pd.DataFrame] | None = None,
    importance: pd.DataFrame | None = None,
    task: ModelTask | None = None,
    holdout_extra: dict[str, float] | None = None,
) -> LoggedModel:
    """One MLflow run: params, every family's metrics with baselines, plots, tables, the champion
    registered (alias `challenger`: the newest version, not promoted yet).

    With `task`, the run, the registered model and the version get descriptions."""
    import mlflow
    from mlflow.models import infer_signature

    os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")  # log_model: no slow pip probe offline
    champion = result.champion
    holdout = champion_holdout_metrics(result, holdout_extra)
    trained_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    risk_high_from = risk_high_edge(champion.threshold, predict_proba(champion.model, result.X_train))
    with (
        using_tracking_uri(uri),
        mlflow.start_run(
            experiment_id=experiment_id, run_name=f"{model_name} {trained_at}", tags=process_tags()
        ) as run,
    ):
        mlflow.log_params(
            {k: (v if not isinstance(v, (list, tuple, dict)) else json.dumps(v)) for k, v in params.items()}
        )
        mlflow.log_params(
            {
                "champion_family": champion.family,
                "positive_class": positive_class(result.label),
                "threshold": round(champion.threshold, 6),
                RISK_HIGH_TAG: round(risk_high_from, 6),
                "trained_rows": result.trained_rows,
                "features": ",".join(names(result.specs)),
            }
        )
        for split, row in result.counts.iterrows():
            mlflow.log_metrics({f"{split}_rows": float(row.rows), f"{split}_positives": float(row.positives)})
        mlflow.log_metrics({f"test_{k}": v for k, v in holdout.items()})
        mlflow.log_metrics({f"validation_{k}": v for k, v in champion.validation.items()})
        for family, other in result.families.items():
            mlflow.log_metrics({f"{family}/test_{k}": v for k, v in other.test.items()})
            mlflow.log_metric(f"{family}/validation_pr_auc", other.validation["pr_auc"])
            mlflow.log_metric(f"{family}/fit_seconds", other.fit_seconds)
        for figure in figures:
            mlflow.log_artifact(str(figure), artifact_path="plots")
        for name, table in (tables or {}).items():
            mlflow.log_text(table.to_markdown(), f"tables/{name}.md")
        if importance is not None:
            mlflow.log_text(importance.to_csv(index=False), "explanations/global_importance.csv")
        with tempfile.TemporaryDirectory() as tmp:
            reference = result.X_train.sample(n=min(REFERENCE_ROWS, len(result.X_train)), random_state=0)
            target = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            reference.to_parquet(target, index=False)
            mlflow.log_artifact(str(target), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
        example = result.X_test.head(5)
        info = mlflow.sklearn.log_model(
            champion.model,
            name="model",
            signature=infer_signature(example, predict_proba(champion.model, example)),
            input_example=example,
            skops_trusted_types=trusted_types(champion.model),
            pip_requirements=pip_requirements(),
            registered_model_name=model_name,
            pyfunc_predict_fn="predict_proba",
        )
    version = str(info.registered_model_version)
    registry = client(uri)
    tags = {
        "threshold": f"{champion.threshold:.6f}",
        RISK_HIGH_TAG: f"{risk_high_from:.6f}",
        "trained_at": trained_at,
        "family": champion.family,
        "positive_class": positive_class(result.label),
        "features": json.dumps(names(result.specs)),
        "holdout_metrics": json.dumps({k: round(v, 6) for k, v in holdout.items()}),
    }
    for key, value in tags.items():
        registry.set_model_version_tag(model_name, version, key, value)
    if task is not None:
        described = version_description(task, result, risk_high_from, trained_at, run.info.run_id, holdout)
        registry.update_model_version(model_name, version, description=described)
        registry.set_tag(run.info.run_id, NOTE_TAG, described + f"\n\nRegistered as version {version}.")
        describe_registered_model(uri, task)
    registry.set_registered_model_alias(model_name, CHALLENGER, version)
    return LoggedModel(run.info.run_id, version, f"models:/{model_name}/{version}", trained_at)


def describe_registered_model(uri: str, task: ModelTask) -> None:
    """The registered model's description: the task, and the production version's holdout metrics."""
    text = task_description(task)
    entry = production_model_version(uri, task.registered_model)
    if entry is not None:
        tags = dict(entry.tags or {})
        threshold = tags.get("threshold")
        text += (
            f"\n\n**Production: version {entry.version}** ({tags.get('family', 'gradient_boosting')}), trained "
            f"{tags.get('trained_at', '?')}, decision threshold "
            f"{f'{float(threshold):.4f}' if threshold else 'MISSING (the version cannot be served)'}.\n\n"
            + _metrics_table(json.loads(tags.get("holdout_metrics", "{}")))
        )
    client(uri).update_registered_model(task.registered_model, description=text)


class RegistryError(RuntimeError):
    """The MLflow registry could not be read or written (not "there is no such model or alias"):
    training stops rather than take it for "no production version yet"."""


def _is_missing(exc: Exception) -> bool:
    """MLflow's "no such registered model" or "no such alias" (other errors are registry failures)."""
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException):
        return False
    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    # A missing alias is INVALID_PARAMETER_VALUE "Registered model alias <alias> not found."
    return exc.error_code == "INVALID_PARAMETER_VALUE" and "alias" in str(exc) and "not found" in str(exc)


def production_model_version(uri: str, model_name: str):
    """The registry entry behind the production alias (version, tags), or None before the first promotion.

    Raises RegistryError for anything else (an unreadable or corrupt tracking database, a server down)."""
    try:
        return client(uri).get_model_version_by_alias(model_name, PRODUCTION)
    except Exception as exc:
        if _is_missing(exc):
            return None
        raise RegistryError(
            f"Cannot read the '{PRODUCTION}' alias of {model_name} from the MLflow registry at {uri}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. Nothing was promoted: "
            "a registry that cannot be read is not a registry without a production version. Fix the "
            "tracking database (or MLFLOW_TRACKING_URI) and rerun."
        ) from exc


def production_version(uri: str, model_name: str) -> str | None:
    entry = production_model_version(uri, model_name)
    return str(entry.version) if entry is not None else None


@dataclass
class PromotionDecision:
    promoted: bool
    reason: str
    challenger_version: str
    production_version: str | None  # after the decision
    previous_production_version: str | None
    challenger_score: float
    production_score: float | None
    metric: str = PRIMARY_METRIC
    family: str = ""
    quality_problems: list[str] = field(default_factory=list)  # a champion unfit to serve: never promoted
    quality_warnings: list[str] = field(default_factory=list)  # reported, not blocking (see training)
    gate: GateOutcome | None = None  # the comparison with production (None: no production or unfit)

    @property
    def quality_passed(self) -> bool:
        return not self.quality_problems

    def as_markdown(self) -> str:
        verdict = "**promoted** to `production`" if self.promoted else "**not promoted**"
        lines = [
            f"Challenger v{self.challenger_version} ({self.family or 'champion'}): {verdict}. {self.reason}",
            "",
            f"| version | alias | holdout {self.metric} |",
            "|---|---|---|",
            f"| v{self.challenger_version} | {'production' if self.promoted else 'challenger'} | "
            f"{self.challenger_score:.4f} |",
        ]
        if self.previous_production_version is not None:
            score = "n/a" if self.production_score is None else f"{self.production_score:.4f}"
            before = "production (before)" if self.promoted else "production"
            lines.append(f"| v{self.previous_production_version} | {before} | {score} |")
        if self.gate is not None:
            g = self.gate
            lines += [
                "",
                f"Gate: difference {g.difference:+.4f}, 90% paired-bootstrap interval "
                f"[{g.ci90_low:+.4f}, {g.ci90_high:+.4f}], margin {g.margin:.4f}: promote only when the "
                "difference exceeds the margin and the interval lies above zero.",
            ]
        if self.quality_problems:
            lines += ["", "Quality gate failed:", *(f"- {p}" for p in self.quality_problems)]
        if self.quality_warnings:
            lines += ["", "Warnings:", *(f"- {w}" for w in self.quality_warnings)]
        return "\n".join(lines)


def _contract_change(production, features: list[str]) -> str:
    """Why production cannot be compared with a challenger, when it was trained on another feature
    contract (its `features` tag), else "". A changed contract (a feature added, dropped or redefined
    by a release) retires production in the open instead of failing every training after the upgrade."""
    if production is None:
        return ""
    tagged = (production.tags or {}).get("features")
    if tagged is None or json.loads(tagged) == features:
        return ""
    return (
        f"Production v{production.version} was trained on another feature contract "
        f"({', '.join(json.loads(tagged))}) than today's ({', '.join(features)}): it is retired, not compared."
    )


def outdated_contract(uri: str, model_name: str, features: Sequence[str]) -> str:
    """Why the production version cannot score today's features (trained on another contract),
    else "" (also when there is no production version). Raises RegistryError like its reader."""
    return _contract_change(production_model_version(uri, model_name), list(features)).replace(
        "it is retired, not compared.", "retrain it (`ecom-assets run --retrain`, or the retrain_models job)."
    )


def decide_promotion(
    uri: str,
    model_name: str,
    challenger_version: str,
    X_holdout: pd.DataFrame,
    y_holdout: np.ndarray,
    challenger_probabilities: np.ndarray,
    margin: float,
    quality_problems: Sequence[str] = (),
    resamples: int = 300,
    family: str = "",
) -> PromotionDecision:
    """Whether the challenger should replace production, decided before any alias moves.

    Production is scored on the same holdout rows as the challenger. Raises RegistryError when the
    registry cannot be read or production cannot score the holdout (no silent replacement)."""
    current = production_model_version(uri, model_name)
    current_version = str(current.version) if current is not None else None
    challenger_score = float(average_precision_score(y_holdout, challenger_probabilities))
    production_score, gate, production_p = None, None, None
    retired = _contract_change(current, list(X_holdout.columns))
    if retired:
        current_version = None  # another feature contract: not comparable, retired in the open
    if current_version is not None:
        try:
            model = load_model(uri, model_name, version=current_version)
            production_p = predict_proba(model, X_holdout)
        except Exception as exc:
            raise RegistryError(
                f"Production v{current_version} of {model_name} cannot score today's holdout "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}), so challenger "
                f"v{challenger_version} cannot be compared with it and was not promoted. Its feature contract (the "
                "'features' tag) is today's, so its files or its environment are broken: restore them, or "
                "retire it (delete the 'production' alias in the MLflow UI) and rerun: the next version is "
                "then promoted as the first."
            ) from exc
        production_score = float(average_precision_score(y_holdout, production_p))
    if quality_problems:
        promoted, reason = False, "Not fit to serve: " + "; ".join(quality_problems) + "."
        if current_version is not None:
            reason += f" Production v{current_version} kept."
    elif current_version is None:
        promoted, reason = True, "No production version yet: the first version fit to serve is promoted."
        if retired:
            reason = f"{retired} The first version of the new contract fit to serve is promoted."
    else:
        gate = promotion_gate(y_holdout, challenger_probabilities, production_p, margin, resamples)
        promoted = gate.promote
        reason = (
            f"Holdout {PRIMARY_METRIC} {challenger_score:.4f} vs production v{current_version} "
            f"{production_score:.4f}: {gate.reason}"
        )
    previous = str(current.version) if current is not None else None
    return PromotionDecision(
        promoted,
        reason,
        challenger_version,
        challenger_version if promoted else previous,
        previous,
        challenger_score,
        production_score,
        family=family,
        quality_problems=list(quality_problems),
        gate=gate,
    )


def apply_promotion(uri: str, model_name: str, decision: PromotionDecision) -> None:
    """Move the aliases so they tell the truth: `production` on the version serving, `challenger`
    on the newest version not promoted (removed when that version is promoted)."""
    registry = client(uri)
    version = decision.challenger_version
    try:
        if decision.promoted:
            registry.set_registered_model_alias(model_name, PRODUCTION, version)
            registry.delete_registered_model_alias(model_name, CHALLENGER)
        else:
            registry.set_registered_model_alias(model_name, CHALLENGER, version)
        registry.set_model_version_tag(model_name, version, "promotion", "promoted" if decision.promoted else "refused")
        registry.set_model_version_tag(model_name, version, "promotion_reason", decision.reason[:5000])
    except Exception as exc:
        raise RegistryError(
            f"Could not move the aliases of {model_name} v{version} in the MLflow registry at {uri}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def load_model(uri: str, model_name: str, alias: str | None = None, version: str | None = None):
    """The sklearn pipeline of a registered version (its `predict_proba` gives probabilities)."""
    import mlflow

    ref = f"models:/{model_name}@{alias}" if alias else f"models:/{model_name}/{version}"
    with using_tracking_uri(uri):
        return mlflow.sklearn.load_model(ref)


@dataclass
class ProductionModel:
    """What the scoring service holds: the model, its version and how it was judged."""

    name: str
    version: str
    model: Any
    threshold: float
    trained_at: str
    features: list[str]
    holdout_metrics: dict[str, float]
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def risk_high_from(self) -> float:
        """The version's logged high-risk edge; for a version logged without one, (threshold + 1) / 2."""
        try:
            edge = float(self.tags[RISK_HIGH_TAG])
        except (KeyError, ValueError):
            return risk_high_edge(self.threshold)
        return edge if self.threshold < edge <= 1 else risk_high_edge(self.threshold)

    def predict_proba(self, frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> np.ndarray:
        return predict_proba(self.model, coerce(frame, specs))


def version_threshold(model_name: str, version: str, tags: dict[str, str]) -> float:
    """A version's decision threshold tag; a version without one cannot be served (never 0.5)."""
    raw = tags.get("threshold")
    try:
        threshold = float(raw)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not 0 < threshold < 1:
        raise ValueError(
            f"{model_name} v{version} has no usable 'threshold' tag ({raw!r}): its decision threshold is "
            "unknown, and guessing 0.5 would mislabel every prediction. Retrain (training tags every "
            "version), or set the tag in the MLflow UI."
        )
    return threshold


def load_production_model(model_name: str, uri: str | None = None) -> ProductionModel:
    """`models:/<name>@production` with its version, threshold, training time and holdout metrics.

    Raises LookupError when the model has no production version yet, RegistryError when the registry
    cannot be read, ValueError when the version has no threshold tag.
    """
    uri = uri or tracking_uri()
    version = production_model_version(uri, model_name)
    if version is None:
        raise LookupError(f"{model_name} has no '{PRODUCTION}' version in {uri}: train it first")
    tags = dict(version.tags or {})
    threshold = version_threshold(model_name, str(version.version), tags)
    model = load_model(uri, model_name, version=str(version.version))
    return ProductionModel(
        name=model_name,
        version=str(version.version),
        model=model,
        threshold=threshold,
        trained_at=tags.get("trained_at", ""),
        features=json.loads(tags.get("features", "[]")),
        holdout_metrics=json.loads(tags.get("holdout_metrics", "{}")),
        run_id=version.run_id,
        tags=tags,
    )


def load_reference_features(model_name: str, uri: str | None = None, alias: str = PRODUCTION) -> pd.DataFrame:
    """The training-feature sample logged with a version: the reference for drift reports."""
    import mlflow

    uri = uri or tracking_uri()
    version = client(uri).get_model_version_by_alias(model_name, alias)
    with tempfile.TemporaryDirectory() as tmp, using_tracking_uri(uri):
        local = mlflow.artifacts.download_artifacts(
            run_id=version.run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp, tracking_uri=uri
        )
        return pd.read_parquet(local)
