"""Training and evaluation: three model families and a recency-only reference on a time-based split.

The feature tables carry a `dataset` column (train / validation / test, by time). Every family
is fitted on train; its decision threshold is the F1-maximising one on validation, and the
champion (the family registered) is the one with the best validation PR-AUC; the test set is
touched once, for the reported metrics and the promotion gate. Every metric comes with its
baseline (the base rate of the named positive class, the no-skill PR-AUC, the Brier score of the
base-rate forecast). No Dagster import: the assets, the bench and the tests call these directly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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

from ecom_assets.ml.feature_specs import CART_LABEL, PURCHASE_LABEL, FeatureSpec, ModelTask, coerce, names

GRADIENT_BOOSTING, LOGISTIC_REGRESSION, RANDOM_FOREST = "gradient_boosting", "logistic_regression", "random_forest"
FAMILIES = (GRADIENT_BOOSTING, LOGISTIC_REGRESSION, RANDOM_FOREST)  # the champion candidates
RECENCY_BASELINE = "recency_baseline"  # a reference beside them, never a champion
SPLITS = ("train", "validation", "test")
PRIMARY_METRIC = "pr_auc"  # what champion selection, promotion and the quality gate compare
LEAKAGE_WARN_AUC = 0.90  # a single feature this predictive deserves a look (the check warns)
LEAKAGE_AUC = 0.98  # a single feature this predictive reads the label off its input (the check fails)

# The recency-only reference: a logistic regression on "how long ago" alone. The purchase model's
# recency is the days since the user's last event on the item and on the shop; the cart model has
# no days-since feature, so its reference reads the time the session took to reach its first
# add-to-cart (`minutes_to_first_cart`, the decision point). Features absent from a task are skipped.
RECENCY_FEATURES: dict[str, tuple[str, ...]] = {
    PURCHASE_LABEL: ("days_since_last_interaction", "user_days_since_last_event"),
    CART_LABEL: ("minutes_to_first_cart",),
}
# What label = 1 means: PR-AUC, precision and recall are about this class, and its base rate is
# the no-skill PR-AUC (the cart model's positive class, abandonment, is the majority class).
POSITIVE_CLASS: dict[str, str] = {
    PURCHASE_LABEL: "the user buys the item within the horizon after the cutoff",
    CART_LABEL: "the cart is abandoned (no purchase later in the session)",
}


def positive_class(label: str) -> str:
    return f"`{label}` = 1: {POSITIVE_CLASS.get(label, 'the positive label')}"


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
    # The refit (ml/refit.py) fits a uniform fixed-seed sample of at most this many labelled rows of all
    # splits (as many as production trains on, the recent splits included): at 20M events every split
    # together is ~2.3M rows, minutes of refitting; 600k rows still took a random forest 218 s at 2M
    # events on a loaded machine.
    max_refit_rows: int = 300_000
    top_k: int = 100
    seed: int = 0
    # Promotion: the challenger's holdout PR-AUC must exceed production's by more than this, and
    # the 90% paired-bootstrap interval of the difference must lie above zero.
    promotion_margin: float = 0.005
    bootstrap_resamples: int = 300
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


def recency_specs(specs: Sequence[FeatureSpec], label: str) -> tuple[FeatureSpec, ...]:
    wanted = RECENCY_FEATURES.get(label, ())
    return tuple(s for s in specs if s.name in wanted)


def build_pipeline(family: str, specs: Sequence[FeatureSpec], config: TrainingConfig) -> Pipeline:
    """`specs` are the columns the pipeline reads (the recency baseline gets only its own)."""
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
    if family in (LOGISTIC_REGRESSION, RECENCY_BASELINE):
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
    raise ValueError(f"unknown model family {family!r}; expected one of {(*FAMILIES, RECENCY_BASELINE)}")


def predict_proba(model: Pipeline, features: pd.DataFrame, batch_rows: int = 500_000) -> np.ndarray:
    """P(label = 1) for every row, in batches so a large table never doubles in memory."""
    if features.empty:
        return np.empty(0, dtype=np.float64)
    parts = [model.predict_proba(features.iloc[i : i + batch_rows])[:, 1] for i in range(0, len(features), batch_rows)]
    return np.concatenate(parts).astype(np.float64)


def choose_threshold(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """The probability threshold that maximises F1 (call it on validation data only)."""
    precision, recall, thresholds = precision_recall_curve(y_true, probabilities)
    if not len(thresholds):
        raise ValueError("no decision threshold: the validation scores are empty")
    f1 = 2 * precision * recall / np.clip(precision + recall, 1e-12, None)
    return float(thresholds[int(np.nanargmax(f1[:-1]))])


def baseline_metrics(y_true: np.ndarray, pr_auc: float, brier: float) -> dict[str, float]:
    """What a model that knows only the base rate scores, and how far above it this one is.

    No-skill PR-AUC is the positive class's share; the reference Brier score is that of forecasting
    the holdout's own base rate for every row (p(1 - p)); the skill score is 1 - brier / reference:
    0 for the base-rate forecast, 1 for a perfect one, negative when worse than the base rate.
    """
    base_rate = float(np.mean(y_true))
    reference = base_rate * (1 - base_rate)
    return {
        "base_rate": base_rate,
        "no_skill_pr_auc": base_rate,
        "pr_auc_lift": pr_auc / base_rate if base_rate > 0 else float("nan"),
        "brier_base_rate": reference,
        "brier_skill": 1 - brier / reference if reference > 0 else float("nan"),
    }


def evaluate(y_true: np.ndarray, probabilities: np.ndarray, threshold: float, top_k: int) -> dict[str, float]:
    y_true = np.asarray(y_true).astype(int)
    predicted = (probabilities >= threshold).astype(int)
    k = min(top_k, len(y_true))
    top = np.argsort(-probabilities, kind="stable")[:k]
    pr_auc = float(average_precision_score(y_true, probabilities))
    brier = float(brier_score_loss(y_true, probabilities))
    return {
        "roc_auc": float(roc_auc_score(y_true, probabilities)),
        "pr_auc": pr_auc,
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "precision_at_k": float(y_true[top].mean()) if k else 0.0,
        "brier": brier,
        **baseline_metrics(y_true, pr_auc, brier),
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

    @property
    def candidate(self) -> bool:
        """Whether this family may become the champion (the recency baseline is a reference only)."""
        return self.family in FAMILIES


def pick_champion(families: dict[str, FamilyResult]) -> str:
    """The candidate family with the best validation PR-AUC (ties: the earlier in FAMILIES)."""
    candidates = [f for f in FAMILIES if f in families]
    if not candidates:
        raise ValueError(f"no champion candidate among {list(families)}; expected one of {FAMILIES}")
    return max(candidates, key=lambda f: (families[f].validation[PRIMARY_METRIC], -candidates.index(f)))


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
    champion_family: str = ""

    def __post_init__(self) -> None:
        self.champion_family = self.champion_family or pick_champion(self.families)

    @property
    def champion(self) -> FamilyResult:
        """The family registered: the best candidate on validation PR-AUC, never chosen on test."""
        return self.families[self.champion_family]

    @property
    def positive_class(self) -> str:
        return positive_class(self.label)

    def role(self, family: str) -> str:
        if family == self.champion_family:
            return "champion"
        return "candidate" if family in FAMILIES else "reference"

    def comparison(self) -> pd.DataFrame:
        """One row per family: its role, holdout (test) metrics with baselines, threshold, training time."""
        rows = []
        for result in self.families.values():
            rows.append(
                {
                    "model": result.family,
                    "role": self.role(result.family),
                    "validation_pr_auc": _significant(result.validation[PRIMARY_METRIC]),
                    **{k: _significant(v) for k, v in result.test.items()},
                    "threshold": _significant(result.threshold),
                    "fit_seconds": round(result.fit_seconds, 2),
                }
            )
        return pd.DataFrame(rows).set_index("model")


def _significant(value: float, digits: int = 4) -> float:
    """Four significant digits, not four decimals: a 0.12 % base rate keeps its precision."""
    return float(f"{value:.{digits}g}")


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= max_rows else frame.sample(n=max_rows, random_state=seed).sort_index()


def single_feature_auc(
    X: pd.DataFrame | Sequence[pd.DataFrame], y: np.ndarray, specs: Sequence[FeatureSpec]
) -> pd.DataFrame:
    """How well each feature alone ranks the label: max(AUC, 1 - AUC), NaN as the lowest value.

    `X`: the features, or their parts in `y`'s order (one column is put together at a time)."""
    parts = [X] if isinstance(X, pd.DataFrame) else list(X)
    if len(np.unique(y)) != 2:
        raise ValueError(f"single-feature AUC needs both labels; got {len(y)} rows with labels {np.unique(y)}")

    def auc(spec: FeatureSpec) -> dict:
        values = pd.concat([part[spec.name] for part in parts], ignore_index=True)
        if spec.categorical:
            values = values.map({c: i for i, c in enumerate(spec.categories)})
        values = pd.to_numeric(values, errors="coerce").astype(float)
        values = values.fillna(values.min() - 1 if values.notna().any() else 0.0)
        auc = roc_auc_score(y, values)
        return {"feature": spec.name, "roc_auc": round(max(auc, 1 - auc), 4)}

    # One feature per thread: the sorts inside run without the GIL, so both cores work (2.3M rows x 25
    # features: 10 s on one core at 20M events).
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        rows = list(pool.map(auc, specs))
    return pd.DataFrame(rows).sort_values("roc_auc", ascending=False, ignore_index=True)


def train_and_compare(
    frame: pd.DataFrame,
    specs: Sequence[FeatureSpec],
    label: str,
    config: TrainingConfig = TrainingConfig(),
    what: str = "",
    families: Sequence[str] = (*FAMILIES, RECENCY_BASELINE),
    log=lambda message: None,
) -> TrainingResult:
    """Fit every family on train, pick thresholds and the champion on validation, report on test.

    The recency baseline is skipped for a label without recency features among `specs`."""
    specs = tuple(specs)
    counts = split_counts(frame, label)
    require_enough_data(counts, config, what or label)
    # One split of the frame at a time, down to its features and label: copies of every column of a
    # 2.3M-row sample (20M events) would hold gigabytes beside the models.
    labelled = frame[label].notna()
    X, y = {}, {}
    for split in SPLITS:
        cap = config.max_train_rows if split == "train" else config.max_eval_rows
        part = _sample(frame.loc[labelled & (frame["dataset"] == split), [*names(specs), label]], cap, config.seed)
        X[split], y[split] = coerce(part, specs), part[label].astype(int).to_numpy()
    del part
    X_train, X_val, X_test = (X[split] for split in SPLITS)
    y_train, y_val, y_test = (y[split] for split in SPLITS)
    results = {}
    for family in families:
        reads = recency_specs(specs, label) if family == RECENCY_BASELINE else specs
        if not reads:
            log(f"{what or label}: no recency feature among the features, no {family}")
            continue
        started = time.perf_counter()
        model = build_pipeline(family, reads, config).fit(X_train, y_train)
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
            f"validation PR-AUC {results[family].validation['pr_auc']:.4f}, "
            f"test PR-AUC {results[family].test['pr_auc']:.4f}"
        )
    result = TrainingResult(
        specs,
        label,
        counts,
        len(X_train),
        results,
        X_train,
        X_test,
        y_test,
        leakage=single_feature_auc([X_train, X_val, X_test], np.concatenate([y_train, y_val, y_test]), specs),
    )
    log(f"{what or label}: champion on validation PR-AUC: {result.champion_family}")
    return result


class _RankedHoldout:
    """One model's scores on a holdout, sorted once: a weighted PR-AUC (average precision) in O(n).

    Bootstrap resamples are row counts (weights) over the same rows, so every resample reuses the
    sort; average precision is computed at each distinct score, as scikit-learn does. Recall moves only
    at a tied group that holds a positive, so precision is computed at those groups alone (positives are
    rare: a thousand of a million rows at 20M events)."""

    def __init__(self, y_true: np.ndarray, scores: np.ndarray) -> None:
        order = np.argsort(-scores, kind="stable")
        self.order = order
        ranked = scores[order]
        ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])  # last row of each tied score
        ranks = np.flatnonzero(np.asarray(y_true)[order] == 1)  # where the positives rank
        self.positive_rows = order[ranks]
        self.ends = ends[np.unique(np.searchsorted(ends, ranks))]  # the groups holding a positive
        self.positives_upto = np.searchsorted(ranks, self.ends, side="right")  # positives ranked up to each

    def average_precision(self, weights: np.ndarray) -> float:
        if not len(self.positive_rows):
            return float("nan")
        tp = np.cumsum(weights[self.positive_rows])[self.positives_upto - 1]
        predicted = np.cumsum(weights[self.order])[self.ends]
        recall = tp / tp[-1]
        precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def paired_bootstrap(
    y_true: np.ndarray,
    candidate: np.ndarray,
    baseline: np.ndarray,
    resamples: int = 300,
    seed: int = 0,
    level: float = 0.90,
) -> tuple[float, float, float]:
    """PR-AUC(candidate) - PR-AUC(baseline) on the same rows: point estimate and a bootstrap interval.

    Rows are resampled within each class so every resample has the holdout's positives; a resample
    is a count per row, shared by both models (paired), and each model's rows are sorted once (a
    million-row holdout takes seconds, not minutes).
    """
    return paired_bootstraps(y_true, candidate, {"baseline": baseline}, resamples, seed, level)["baseline"]


def paired_bootstraps(
    y_true: np.ndarray,
    candidate: np.ndarray,
    baselines: dict[str, np.ndarray],
    resamples: int = 300,
    seed: int = 0,
    level: float = 0.90,
) -> dict[str, tuple[float, float, float]]:
    """`paired_bootstrap` of `candidate` against each baseline, the same resamples for all (each result
    is the one `paired_bootstrap` gives alone): the weights are drawn and the candidate scored once."""
    y_true = np.asarray(y_true).astype(int)
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(y_true == 1), np.flatnonzero(y_true == 0)
    # Rows reordered positives first, so a resample's counts are two bincounts side by side (no scatter).
    grouped = np.r_[positives, negatives]
    y = y_true[grouped]

    def ranked(scores: np.ndarray) -> _RankedHoldout:
        return _RankedHoldout(y, np.asarray(scores, dtype=np.float64)[grouped])

    ranked_candidate = ranked(candidate)
    ranked_baselines = {name: ranked(scores) for name, scores in baselines.items()}
    diffs = {name: np.empty(resamples) for name in baselines}
    for i in range(resamples):
        weights = np.concatenate(  # draw len(rows) of each class with replacement, as counts
            [np.bincount(rng.integers(0, len(rows), len(rows)), minlength=len(rows)) for rows in (positives, negatives)]
        ).astype(np.float64)
        candidate_ap = ranked_candidate.average_precision(weights)
        for name, holdout in ranked_baselines.items():
            diffs[name][i] = candidate_ap - holdout.average_precision(weights)
    tail = (1 - level) / 2
    candidate_point = average_precision_score(y_true, candidate)
    return {
        name: (
            float(candidate_point - average_precision_score(y_true, baselines[name])),
            float(np.quantile(diffs[name], tail)),
            float(np.quantile(diffs[name], 1 - tail)),
        )
        for name in baselines
    }


def verdict(low: float, high: float) -> str:
    """`beats` / `worse` only beyond bootstrap noise (the whole 90% interval on one side of zero)."""
    return "beats" if low > 0 else ("worse" if high < 0 else "tie")


def quality_verdicts(result: TrainingResult, resamples: int = 300) -> pd.DataFrame:
    """The champion against every other family and the recency reference, on the holdout PR-AUC.

    On a small holdout (a few dozen positives) the ranking of near-equal models is noise: a `tie`
    says so instead of calling the higher point estimate a win.
    """
    champion = result.champion
    others = {family: other for family, other in result.families.items() if family != result.champion_family}
    intervals = paired_bootstraps(
        result.y_test,
        champion.test_probabilities,
        {family: other.test_probabilities for family, other in others.items()},
        resamples=resamples,
    )
    rows = []
    for family, other in others.items():
        point, low, high = intervals[family]
        rows.append(
            {
                "champion": champion.family,
                "baseline": family,
                "role": result.role(family),
                "champion_pr_auc": round(champion.test["pr_auc"], 4),
                "baseline_pr_auc": round(other.test["pr_auc"], 4),
                "difference": round(point, 4),
                "ci90_low": round(low, 4),
                "ci90_high": round(high, 4),
                "verdict": verdict(low, high),
            }
        )
    return pd.DataFrame(rows)


def quality_problems(result: TrainingResult) -> list[str]:
    """Why the champion is not fit to serve (empty when it is): its holdout PR-AUC is no better than
    the base rate, i.e. it ranks no better than chance. This blocks its promotion."""
    champion = result.champion
    if champion.test["pr_auc"] > champion.test["no_skill_pr_auc"]:
        return []
    return [
        f"{champion.family} holdout PR-AUC {champion.test['pr_auc']:.4f} is not above the no-skill "
        f"{champion.test['no_skill_pr_auc']:.4f} (the base rate of {result.positive_class})"
    ]


def quality_warnings(verdicts: pd.DataFrame) -> list[str]:
    """What a reader must know before trusting the champion: it loses to the recency-only reference
    beyond noise. Reported on the gate (WARN), not blocking: on small holdouts (a few dozen
    positives) a validation-picked champion can trail it, and production is judged separately."""
    if not len(verdicts):
        return []
    worse = verdicts[(verdicts["role"] == "reference") & (verdicts["verdict"] == "worse")]
    return [
        f"{row.champion} holdout PR-AUC {row.champion_pr_auc:.4f} is below the {row.baseline} "
        f"{row.baseline_pr_auc:.4f} beyond noise (90% interval of the difference "
        f"[{row.ci90_low:.4f}, {row.ci90_high:.4f}])"
        for row in worse.itertuples()
    ]


@dataclass(frozen=True)
class GateOutcome:
    """The challenger against production on the same holdout rows."""

    promote: bool
    difference: float  # PR-AUC(challenger) - PR-AUC(production)
    ci90_low: float
    ci90_high: float
    margin: float
    reason: str


def promotion_gate(
    y_holdout: np.ndarray, challenger: np.ndarray, production: np.ndarray, margin: float, resamples: int = 300
) -> GateOutcome:
    """Promote only when the challenger's PR-AUC beats production's by more than `margin` AND the
    90% paired-bootstrap interval of the difference lies above zero: a win within noise is no win
    (and every retraining that looks at the test week would otherwise select on it)."""
    point, low, high = paired_bootstrap(y_holdout, challenger, production, resamples=resamples)
    by_margin, beyond_noise = point > margin, low > 0
    promote = by_margin and beyond_noise
    detail = f"difference {point:+.4f} (90% interval [{low:+.4f}, {high:+.4f}]), margin {margin:.4f}"
    if promote:
        reason = f"better by more than the margin and beyond noise: {detail}."
    elif not by_margin:
        reason = f"not better by more than the margin: {detail}; production kept."
    else:
        reason = f"better only within noise (the interval reaches zero): {detail}; production kept."
    return GateOutcome(promote, point, low, high, margin, reason)


@dataclass
class LeakageReport:
    """Single-feature ROC-AUCs on the labelled rows and what they say."""

    scores: pd.DataFrame  # feature, roc_auc (most predictive first); empty when there is nothing to score
    rows: int
    problem: str | None = None  # no labelled rows or a single class: the check fails
    warn_at: float = LEAKAGE_WARN_AUC
    fail_at: float = LEAKAGE_AUC

    @property
    def leaking(self) -> list[str]:
        return [] if self.scores.empty else list(self.scores.loc[self.scores["roc_auc"] >= self.fail_at, "feature"])

    @property
    def suspicious(self) -> list[str]:
        """At or above the warning level but below the failing one."""
        if self.scores.empty:
            return []
        auc = self.scores["roc_auc"]
        return list(self.scores.loc[(auc >= self.warn_at) & (auc < self.fail_at), "feature"])

    @property
    def passed(self) -> bool:
        return self.problem is None and not self.leaking

    def summary(self) -> str:
        if self.problem:
            return self.problem
        if self.leaking:
            return f"{len(self.leaking)} feature(s) predict the label alone (ROC-AUC >= {self.fail_at}): " + ", ".join(
                self.leaking
            )
        if self.suspicious:
            return (
                f"{len(self.suspicious)} feature(s) reach ROC-AUC >= {self.warn_at} alone (a leak or a very "
                "strong signal: look at them): " + ", ".join(self.suspicious)
            )
        return f"no feature alone reaches ROC-AUC {self.warn_at} on {self.rows:,} labelled rows"


def leakage_report(
    frame: pd.DataFrame, task: ModelTask, warn_at: float = LEAKAGE_WARN_AUC, fail_at: float = LEAKAGE_AUC
) -> LeakageReport:
    """Each feature alone against the label. No labelled rows (or one class only) is a problem,
    not a pass: nothing was checked, and training would read the same empty set."""
    labelled = frame[frame[task.label].notna()] if task.label in frame else frame.iloc[0:0]
    empty = pd.DataFrame(columns=["feature", "roc_auc"])
    if labelled.empty:
        problem = f"no labelled rows in {task.feature_table} ({task.label} is NULL everywhere): nothing to check"
        return LeakageReport(empty, 0, problem, warn_at, fail_at)
    classes = labelled[task.label].nunique()
    if classes < 2:
        problem = (
            f"{len(labelled):,} labelled rows in {task.feature_table} all have {task.label} = "
            f"{labelled[task.label].iloc[0]}: nothing to check"
        )
        return LeakageReport(empty, len(labelled), problem, warn_at, fail_at)
    scores = single_feature_auc(labelled, labelled[task.label].astype(int).to_numpy(), task.specs)
    return LeakageReport(scores, len(labelled), None, warn_at, fail_at)
