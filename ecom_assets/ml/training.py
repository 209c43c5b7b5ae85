"""Training and evaluation: gradient boosting against two baselines on a time-based split.

The feature tables carry a `dataset` column (train / validation / test, by time). Every family
is fitted on train; its decision threshold is the F1-maximising one on validation; the test set
is touched once, for the reported metrics. No Dagster import: the assets, the bench and the tests
call these functions directly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder, StandardScaler

from ecom_assets.ml.feature_specs import FeatureSpec, ModelTask, coerce

GRADIENT_BOOSTING, LOGISTIC_REGRESSION, RANDOM_FOREST = "gradient_boosting", "logistic_regression", "random_forest"
FAMILIES = (GRADIENT_BOOSTING, LOGISTIC_REGRESSION, RANDOM_FOREST)
SPLITS = ("train", "validation", "test")
PRIMARY_METRIC = "pr_auc"  # what promotion and the model-quality check compare
LEAKAGE_AUC = 0.98  # a single feature this predictive reads the label off its input


@dataclass(frozen=True)
class TrainingConfig:
    # Shallow, regularised trees: the labelled sets are small at demo scale (a few hundred
    # positives) and deep trees overfit them; at scale the same settings still win.
    gb_max_iter: int = 300
    gb_learning_rate: float = 0.05
    gb_max_depth: int = 3
    gb_min_samples_leaf: int = 50
    gb_l2_regularization: float = 10.0
    rf_trees: int = 100
    rf_max_depth: int = 12
    max_train_rows: int = 300_000  # a bounded sample of train at scale (DESIGN decision 1)
    max_eval_rows: int = 1_000_000
    top_k: int = 100
    seed: int = 0
    # The least labelled data worth training on, per split.
    min_train_rows: int = 200
    min_eval_rows: int = 50
    min_positives: int = 5
    min_negatives: int = 5

    def params(self) -> dict[str, object]:
        return dict(self.__dict__)


class InsufficientData(ValueError):
    """Too little labelled data to train and evaluate honestly; the message names the counts."""


def encoded_feature_names(specs: Sequence[FeatureSpec]) -> list[str]:
    """Column order after the pipeline's first step: categorical features first, then numeric."""
    return [s.name for s in specs if s.categorical] + [s.name for s in specs if not s.categorical]


def _encoder(specs: Sequence[FeatureSpec]) -> ColumnTransformer:
    categorical = [s for s in specs if s.categorical]
    numeric = [s.name for s in specs if not s.categorical]
    steps = []
    if categorical:
        # Ordinal codes, not native categorical splits: SHAP's TreeExplainer stays exact.
        steps.append(
            (
                "categorical",
                OrdinalEncoder(
                    categories=[list(s.categories) for s in categorical],
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    dtype=np.float64,
                ),
                [s.name for s in categorical],
            )
        )
    steps.append(("numeric", "passthrough", numeric))
    return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=False)


def build_pipeline(family: str, specs: Sequence[FeatureSpec], config: TrainingConfig) -> Pipeline:
    if family == GRADIENT_BOOSTING:
        model = HistGradientBoostingClassifier(
            max_iter=config.gb_max_iter,
            learning_rate=config.gb_learning_rate,
            max_depth=config.gb_max_depth,
            min_samples_leaf=config.gb_min_samples_leaf,
            l2_regularization=config.gb_l2_regularization,
            early_stopping=False,
            random_state=config.seed,
        )
        return Pipeline([("encode", _encoder(specs)), ("model", model)])
    if family == LOGISTIC_REGRESSION:
        return Pipeline(
            [
                ("encode", _encoder(specs)),
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
                ("model", LogisticRegression(max_iter=2000)),
            ]
        )
    if family == RANDOM_FOREST:
        model = RandomForestClassifier(
            n_estimators=config.rf_trees,
            max_depth=config.rf_max_depth,
            min_samples_leaf=5,
            n_jobs=2,
            random_state=config.seed,
        )
        return Pipeline([("encode", _encoder(specs)), ("impute", SimpleImputer(strategy="median")), ("model", model)])
    raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")


def predict_proba(model: Pipeline, features: pd.DataFrame, batch_rows: int = 500_000) -> np.ndarray:
    """P(label = 1) for every row, in batches so a large table never doubles in memory."""
    if features.empty:
        return np.empty(0, dtype=np.float64)
    parts = [model.predict_proba(features.iloc[i : i + batch_rows])[:, 1] for i in range(0, len(features), batch_rows)]
    return np.concatenate(parts).astype(np.float64)


def choose_threshold(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """The probability threshold that maximises F1 (call it on validation data only)."""
    precision, recall, thresholds = precision_recall_curve(y_true, probabilities)
    f1 = 2 * precision * recall / np.clip(precision + recall, 1e-12, None)
    best = int(np.nanargmax(f1[:-1])) if len(thresholds) else 0
    return float(thresholds[best]) if len(thresholds) else 0.5


def evaluate(y_true: np.ndarray, probabilities: np.ndarray, threshold: float, top_k: int) -> dict[str, float]:
    y_true = np.asarray(y_true).astype(int)
    predicted = (probabilities >= threshold).astype(int)
    k = min(top_k, len(y_true))
    top = np.argsort(-probabilities, kind="stable")[:k]
    return {
        "roc_auc": float(roc_auc_score(y_true, probabilities)),
        "pr_auc": float(average_precision_score(y_true, probabilities)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "precision_at_k": float(y_true[top].mean()) if k else 0.0,
        "brier": float(brier_score_loss(y_true, probabilities)),
        "positive_rate": float(y_true.mean()),
    }


def split_counts(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Rows, positives and negatives per split (splits absent from the frame count zero)."""
    labelled = frame[frame[label].notna()]
    rows = []
    for split in SPLITS:
        y = labelled.loc[labelled["dataset"] == split, label].astype(int)
        rows.append({"split": split, "rows": len(y), "positives": int(y.sum()), "negatives": int((1 - y).sum())})
    return pd.DataFrame(rows).set_index("split")


def require_enough_data(counts: pd.DataFrame, config: TrainingConfig, what: str) -> None:
    problems = []
    for split, row in counts.iterrows():
        least = config.min_train_rows if split == "train" else config.min_eval_rows
        if row.rows < least or row.positives < config.min_positives or row.negatives < config.min_negatives:
            problems.append(f"{split}: {row.rows} rows, {row.positives} positive, {row.negatives} negative")
    if problems:
        raise InsufficientData(
            f"Not enough labelled data to train the {what} model: " + "; ".join(problems) + ". "
            f"Each split needs at least {config.min_train_rows} rows (train) or {config.min_eval_rows} "
            f"(validation, test) with at least {config.min_positives} positive and "
            f"{config.min_negatives} negative labels. Land more days of events (the split is by time)."
        )


@dataclass
class FamilyResult:
    family: str
    model: Pipeline
    threshold: float
    fit_seconds: float
    validation: dict[str, float]
    test: dict[str, float]
    test_probabilities: np.ndarray


@dataclass
class TrainingResult:
    specs: tuple[FeatureSpec, ...]
    label: str
    counts: pd.DataFrame
    trained_rows: int
    families: dict[str, FamilyResult]
    X_train: pd.DataFrame  # the (sampled) training features: the drift reference
    X_test: pd.DataFrame
    y_test: np.ndarray
    leakage: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def champion(self) -> FamilyResult:
        return self.families[GRADIENT_BOOSTING]

    def comparison(self) -> pd.DataFrame:
        """One row per family: holdout (test) metrics, threshold, training time."""
        rows = []
        for result in self.families.values():
            rows.append(
                {
                    "model": result.family,
                    **{k: round(v, 4) for k, v in result.test.items()},
                    "threshold": round(result.threshold, 4),
                    "fit_seconds": round(result.fit_seconds, 2),
                }
            )
        return pd.DataFrame(rows).set_index("model")


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= max_rows else frame.sample(n=max_rows, random_state=seed).sort_index()


def single_feature_auc(X: pd.DataFrame, y: np.ndarray, specs: Sequence[FeatureSpec]) -> pd.DataFrame:
    """How well each feature alone ranks the label: max(AUC, 1 - AUC), NaN as the lowest value."""
    rows = []
    for spec in specs:
        values = X[spec.name]
        if spec.categorical:
            values = values.map({c: i for i, c in enumerate(spec.categories)})
        values = pd.to_numeric(values, errors="coerce").astype(float)
        values = values.fillna(values.min() - 1 if values.notna().any() else 0.0)
        auc = roc_auc_score(y, values) if len(np.unique(y)) == 2 else 0.5
        rows.append({"feature": spec.name, "roc_auc": round(max(auc, 1 - auc), 4)})
    return pd.DataFrame(rows).sort_values("roc_auc", ascending=False, ignore_index=True)


def train_and_compare(
    frame: pd.DataFrame,
    specs: Sequence[FeatureSpec],
    label: str,
    config: TrainingConfig = TrainingConfig(),
    what: str = "",
    families: Sequence[str] = FAMILIES,
    log=lambda message: None,
) -> TrainingResult:
    """Fit every family on train, pick thresholds on validation, report on test."""
    specs = tuple(specs)
    counts = split_counts(frame, label)
    require_enough_data(counts, config, what or label)
    labelled = frame[frame[label].notna()]
    parts = {split: labelled[labelled["dataset"] == split] for split in SPLITS}
    train = _sample(parts["train"], config.max_train_rows, config.seed)
    validation = _sample(parts["validation"], config.max_eval_rows, config.seed)
    test = _sample(parts["test"], config.max_eval_rows, config.seed)
    X_train, y_train = coerce(train, specs), train[label].astype(int).to_numpy()
    X_val, y_val = coerce(validation, specs), validation[label].astype(int).to_numpy()
    X_test, y_test = coerce(test, specs), test[label].astype(int).to_numpy()
    results = {}
    for family in families:
        started = time.perf_counter()
        model = build_pipeline(family, specs, config).fit(X_train, y_train)
        fit_seconds = time.perf_counter() - started
        p_val = predict_proba(model, X_val)
        threshold = choose_threshold(y_val, p_val)
        p_test = predict_proba(model, X_test)
        results[family] = FamilyResult(
            family,
            model,
            threshold,
            fit_seconds,
            evaluate(y_val, p_val, threshold, config.top_k),
            evaluate(y_test, p_test, threshold, config.top_k),
            p_test,
        )
        log(
            f"{what or label}: {family} fitted on {len(X_train):,} rows in {fit_seconds:.1f}s, "
            f"test PR-AUC {results[family].test['pr_auc']:.4f}"
        )
    X_all = pd.concat([X_train, X_val, X_test], ignore_index=True)
    y_all = np.concatenate([y_train, y_val, y_test])
    return TrainingResult(
        specs,
        label,
        counts,
        len(X_train),
        results,
        X_train,
        X_test,
        y_test,
        leakage=single_feature_auc(X_all, y_all, specs),
    )


def paired_bootstrap(
    y_true: np.ndarray,
    candidate: np.ndarray,
    baseline: np.ndarray,
    resamples: int = 300,
    seed: int = 0,
    level: float = 0.90,
) -> tuple[float, float, float]:
    """PR-AUC(candidate) - PR-AUC(baseline) on the same rows: point estimate and a bootstrap interval.

    Rows are resampled within each class so every resample has the holdout's positives.
    """
    y_true = np.asarray(y_true).astype(int)
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(y_true == 1), np.flatnonzero(y_true == 0)
    diffs = np.empty(resamples)
    for i in range(resamples):
        rows = np.concatenate([rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))])
        diffs[i] = average_precision_score(y_true[rows], candidate[rows]) - average_precision_score(
            y_true[rows], baseline[rows]
        )
    point = average_precision_score(y_true, candidate) - average_precision_score(y_true, baseline)
    tail = (1 - level) / 2
    return float(point), float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail))


def quality_verdicts(result: TrainingResult, resamples: int = 300) -> pd.DataFrame:
    """Gradient boosting against each baseline on the holdout PR-AUC.

    `beats`: higher point estimate. `worse`: the baseline is better beyond bootstrap noise (the
    whole 90% interval of the difference is below zero). Otherwise a `tie`: on a small holdout
    (a few dozen positives) the ranking of near-equal models is noise, and we say so.
    """
    gb = result.champion
    rows = []
    for family, other in result.families.items():
        if family == GRADIENT_BOOSTING:
            continue
        point, low, high = paired_bootstrap(
            result.y_test, gb.test_probabilities, other.test_probabilities, resamples=resamples
        )
        verdict = "beats" if point > 0 else ("worse" if high < 0 else "tie")
        rows.append(
            {
                "baseline": family,
                "gb_pr_auc": round(gb.test["pr_auc"], 4),
                "baseline_pr_auc": round(other.test["pr_auc"], 4),
                "difference": round(point, 4),
                "ci90_low": round(low, 4),
                "ci90_high": round(high, 4),
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


def leaking_features(
    frame: pd.DataFrame, task: ModelTask, limit: float = LEAKAGE_AUC
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every feature's single-feature AUC, the ones at or above `limit`)."""
    labelled = frame[frame[task.label].notna()]
    if labelled.empty or labelled[task.label].nunique() < 2:
        empty = pd.DataFrame(columns=["feature", "roc_auc"])
        return empty, empty
    scores = single_feature_auc(labelled, labelled[task.label].astype(int).to_numpy(), task.specs)
    return scores, scores[scores["roc_auc"] >= limit]
