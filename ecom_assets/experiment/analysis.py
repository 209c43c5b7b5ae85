"""Statistics for the checkout A/B experiment: pure functions, no Dagster.

Conventions: every lift is treatment minus control (or treatment / control - 1); confidence
intervals are two-sided at ``1 - alpha``; "pp" means percentage points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ecom_assets.experiment.assignment import CONTROL, DEFAULT_TREATMENT_SHARE, TREATMENT

SRM_THRESHOLD = 0.001  # SRM is a data-quality alarm, so it uses a much stricter level than alpha
REQUIRED_COLUMNS = ("user_id", "experiment_group", "converted", "revenue")
OUTPUT_COLUMNS = [
    "experiment",
    "metric",
    "control_value",
    "treatment_value",
    "absolute_lift",
    "absolute_ci_low",
    "absolute_ci_high",
    "relative_lift",
    "relative_ci_low",
    "relative_ci_high",
    "test",
    "statistic",
    "p_value",
    "significant",
    "mde_absolute",
    "srm_p_value",
    "verdict",
]


@dataclass(frozen=True)
class SampleRatioResult:
    n_control: int
    n_treatment: int
    expected_treatment_share: float
    observed_treatment_share: float
    statistic: float
    p_value: float
    mismatch: bool
    message: str


@dataclass(frozen=True)
class ConversionResult:
    users_control: int
    users_treatment: int
    converted_control: int
    converted_treatment: int
    rate_control: float
    rate_treatment: float
    absolute_lift: float  # pT - pC
    absolute_ci_low: float
    absolute_ci_high: float
    relative_lift: float  # pT / pC - 1
    relative_ci_low: float
    relative_ci_high: float
    test: str
    statistic: float  # chi-square; equals z**2 of the pooled two-proportion z-test
    p_value: float
    yates_correction: bool
    alpha: float
    significant: bool


@dataclass(frozen=True)
class RevenueResult:
    users_control: int
    users_treatment: int
    revenue_per_user_control: float
    revenue_per_user_treatment: float
    absolute_lift: float  # mean T - mean C
    absolute_ci_low: float
    absolute_ci_high: float
    relative_lift: float
    relative_ci_low: float
    relative_ci_high: float
    test: str
    statistic: float  # Welch t (positive when treatment is higher)
    df: float  # Welch–Satterthwaite degrees of freedom
    p_value: float
    alpha: float
    significant: bool


@dataclass(frozen=True)
class MinimumDetectableEffect:
    baseline_rate: float
    absolute: float  # smallest lift in pp/100 detected with probability `power`; NaN if none is
    relative: float  # absolute / baseline_rate
    users_control: int
    users_treatment: int
    alpha: float
    power: float


# ---------------------------------------------------------------------------------------------
# validation helpers


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or value < 0:
        raise ValueError(f"{name} must be a non-negative whole number, got {value!r}")
    return int(value)


def _check_level(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")


def _log_ratio_ci(mean_t: float, se_t: float, mean_c: float, se_c: float, z: float):
    """Relative lift mT/mC - 1 with a delta-method CI on log(mT/mC), back-transformed.

    The log scale is used (not the raw ratio) because the ratio's sampling distribution is
    right-skewed: the log interval is asymmetric like the truth and can never go below -100%.
    Var(log m) ~= se(m)**2 / m**2; the two arms are independent so the variances add.
    """
    if not (mean_t > 0 and mean_c > 0):
        return math.nan, math.nan, math.nan
    log_ratio = math.log(mean_t / mean_c)
    se = math.sqrt((se_t / mean_t) ** 2 + (se_c / mean_c) ** 2)
    return (mean_t / mean_c - 1, math.exp(log_ratio - z * se) - 1, math.exp(log_ratio + z * se) - 1)


# ---------------------------------------------------------------------------------------------
# the tests


def sample_ratio_mismatch(
    n_control: int, n_treatment: int, treatment_share: float = DEFAULT_TREATMENT_SHARE, threshold: float = SRM_THRESHOLD
) -> SampleRatioResult:
    """Chi-square goodness of fit of the observed split against the intended one.

    A mismatch means assignment or logging lost users unevenly, so no metric can be trusted.
    """
    n_c, n_t = _count("n_control", n_control), _count("n_treatment", n_treatment)
    _check_level("treatment_share", treatment_share)
    total = n_c + n_t
    if total == 0:
        raise ValueError("sample_ratio_mismatch needs at least one user")
    expected = [total * (1 - treatment_share), total * treatment_share]
    statistic, p_value = stats.chisquare([n_c, n_t], f_exp=expected)
    observed = n_t / total
    mismatch = bool(p_value < threshold)
    detail = (
        f"expected {treatment_share:.1%} treatment, observed {observed:.1%} "
        f"({n_c:,} control vs {n_t:,} treatment, chi-square {_fmt_p(p_value)})"
    )
    message = (
        f"Sample ratio mismatch, results are not to be trusted: {detail}."
        if mismatch
        else f"Sample ratio OK: {detail}."
    )
    return SampleRatioResult(n_c, n_t, treatment_share, observed, float(statistic), float(p_value), mismatch, message)


def conversion_test(
    converted_control: int,
    users_control: int,
    converted_treatment: int,
    users_treatment: int,
    alpha: float = 0.05,
    correction: bool = False,
) -> ConversionResult:
    """Chi-square test of independence on the 2x2 table (arm x converted/not).

    Yates' continuity correction is OFF by default: without it the chi-square equals the square
    of the pooled two-proportion z-test (same p-value), and so stays consistent with the Wald
    interval reported next to it; with it the test is conservative (p too large, power lost),
    which at A/B sample sizes buys nothing. Pass ``correction=True`` to reproduce a Yates result.

    Note the p-value (pooled SE under H0) and the Wald CI (unpooled SE) can disagree right at
    the boundary; ``significant`` follows the p-value.
    """
    n_c, n_t = _count("users_control", users_control), _count("users_treatment", users_treatment)
    x_c = _count("converted_control", converted_control)
    x_t = _count("converted_treatment", converted_treatment)
    _check_level("alpha", alpha)
    if n_c == 0 or n_t == 0:
        raise ValueError(f"both arms need users, got control={n_c}, treatment={n_t}")
    if x_c > n_c or x_t > n_t:
        raise ValueError("converted users cannot exceed users in an arm")

    p_c, p_t = x_c / n_c, x_t / n_t
    if 0 < x_c + x_t < n_c + n_t:
        table = np.array([[x_c, n_c - x_c], [x_t, n_t - x_t]])
        statistic, p_value, _, _ = stats.chi2_contingency(table, correction=correction)
    else:  # nobody (or everybody) converted: a zero expected cell, the test is undefined
        statistic, p_value = math.nan, math.nan

    z = stats.norm.ppf(1 - alpha / 2)
    se_c, se_t = math.sqrt(p_c * (1 - p_c) / n_c), math.sqrt(p_t * (1 - p_t) / n_t)
    diff = p_t - p_c
    half = float(z * math.hypot(se_c, se_t))  # unpooled (Wald) SE of the difference
    rel, rel_low, rel_high = _log_ratio_ci(p_t, se_t, p_c, se_c, z)
    return ConversionResult(
        n_c,
        n_t,
        x_c,
        x_t,
        p_c,
        p_t,
        diff,
        diff - half,
        diff + half,
        rel,
        rel_low,
        rel_high,
        "chi-square test of independence" + (" (Yates)" if correction else ""),
        float(statistic),
        float(p_value),
        correction,
        alpha,
        bool(p_value < alpha),
    )


def revenue_test(revenue_control, revenue_treatment, alpha: float = 0.05) -> RevenueResult:
    """Revenue per user: Welch's t-test (no equal-variance assumption; revenue is very skewed
    and the arms may differ in spread) and a Welch–Satterthwaite CI for the difference."""
    _check_level("alpha", alpha)
    c = np.asarray(revenue_control, dtype=float).ravel()
    t = np.asarray(revenue_treatment, dtype=float).ravel()
    if c.size < 2 or t.size < 2:
        raise ValueError(f"each arm needs at least 2 users, got control={c.size}, treatment={t.size}")
    if not (np.isfinite(c).all() and np.isfinite(t).all()):
        raise ValueError("revenue contains NaN or infinite values; use 0 for users who did not buy")

    res = stats.ttest_ind(t, c, equal_var=False)
    var_c, var_t = c.var(ddof=1) / c.size, t.var(ddof=1) / t.size  # squared standard errors
    se = math.sqrt(var_c + var_t)
    diff = t.mean() - c.mean()
    if se > 0:
        df = (var_c + var_t) ** 2 / (var_c**2 / (c.size - 1) + var_t**2 / (t.size - 1))
        half = float(stats.t.ppf(1 - alpha / 2, df) * se)
    else:
        df, half = math.nan, math.nan
    rel, rel_low, rel_high = _log_ratio_ci(
        t.mean(), math.sqrt(var_t), c.mean(), math.sqrt(var_c), stats.norm.ppf(1 - alpha / 2)
    )
    p_value = float(res.pvalue)
    return RevenueResult(
        c.size,
        t.size,
        float(c.mean()),
        float(t.mean()),
        float(diff),
        float(diff - half),
        float(diff + half),
        rel,
        rel_low,
        rel_high,
        "Welch's t-test",
        float(res.statistic),
        float(df),
        p_value,
        alpha,
        bool(p_value < alpha),
    )


def minimum_detectable_effect(
    users_control: int, users_treatment: int, baseline_rate: float, alpha: float = 0.05, power: float = 0.8
) -> MinimumDetectableEffect:
    """Smallest absolute lift over ``baseline_rate`` that the two-sided two-proportion test
    (pooled SE under H0, as in ``conversion_test``) detects with probability ``power`` at these
    sample sizes. Solved exactly under the normal approximation, with the variance under the
    alternative at the lifted rate; the (negligible) opposite rejection tail is ignored.
    A drop of the same size is about equally detectable. NaN if no lift up to 100% is detectable.
    """
    n_c, n_t = _count("users_control", users_control), _count("users_treatment", users_treatment)
    if n_c == 0 or n_t == 0:
        raise ValueError(f"both arms need users, got control={n_c}, treatment={n_t}")
    _check_level("baseline_rate", baseline_rate)
    _check_level("alpha", alpha)
    _check_level("power", power)
    p = baseline_rate
    z_alpha = stats.norm.ppf(1 - alpha / 2)

    def power_at(d: float) -> float:
        q = p + d
        pooled = (n_c * p + n_t * q) / (n_c + n_t)
        se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
        se1 = math.sqrt(p * (1 - p) / n_c + q * (1 - q) / n_t)
        return stats.norm.cdf((d - z_alpha * se0) / se1)

    top = (1 - p) * (1 - 1e-12)
    if power_at(top) < power:
        absolute = math.nan
    else:
        absolute = optimize.brentq(lambda d: power_at(d) - power, 1e-12, top, xtol=1e-12)
    return MinimumDetectableEffect(p, absolute, absolute / p, n_c, n_t, alpha, power)


# ---------------------------------------------------------------------------------------------
# plain language


def _fmt_p(p: float) -> str:
    if math.isnan(p):
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"


def _pp(x: float, unit: bool = True) -> str:
    v = x * 100
    digits = 1 if abs(v) >= 0.1 or v == 0 else 2  # keep tiny lifts from printing as +0.0
    return f"{v:+.{digits}f}" + (" pp" if unit else "")


def verdict(
    srm: SampleRatioResult,
    conversion: ConversionResult,
    mde: MinimumDetectableEffect | None = None,
    revenue: RevenueResult | None = None,
) -> str:
    """One or two sentences for the growth team. A sample ratio mismatch overrides everything."""
    if srm.mismatch:
        return srm.message + " Fix assignment/logging before reading any metric."
    c = conversion
    level = f"{1 - c.alpha:.0%}"
    rates = f"{c.rate_control:.1%} to {c.rate_treatment:.1%}"
    if c.significant:
        direction = "lifts" if c.absolute_lift > 0 else "lowers"
        text = (
            f"Treatment {direction} conversion from {rates} ({_pp(c.absolute_lift)}, {level} CI "
            f"{_pp(c.absolute_ci_low, unit=False)} to {_pp(c.absolute_ci_high)}, {_fmt_p(c.p_value)}): "
            "significant."
        )
    else:
        text = (
            f"No significant difference in conversion ({c.rate_control:.1%} vs "
            f"{c.rate_treatment:.1%}, {_fmt_p(c.p_value)})"
        )
        if mde is not None and not math.isnan(mde.absolute):
            text += (
                f"; with these samples the test could only detect lifts of "
                f"{_pp(mde.absolute)} or more, so a smaller effect may have been missed."
            )
        else:
            text += "."
    if revenue is not None:
        r = revenue
        text += (
            f" Revenue per user {r.revenue_per_user_control:.2f} vs "
            f"{r.revenue_per_user_treatment:.2f} ({r.absolute_lift:+.2f}, {level} CI "
            f"{r.absolute_ci_low:+.2f} to {r.absolute_ci_high:+.2f}, {_fmt_p(r.p_value)}): "
            f"{'significant' if r.significant else 'not significant'}."
        )
    return text


# ---------------------------------------------------------------------------------------------
# the whole experiment


# What a conversion or revenue test reports, named alike in both result types and in OUTPUT_COLUMNS.
_LIFT_FIELDS = OUTPUT_COLUMNS[OUTPUT_COLUMNS.index("absolute_lift") : OUTPUT_COLUMNS.index("significant") + 1]


def _lift_row(metric: str, control: float, treatment: float, result, **extra) -> dict:
    return dict(
        metric=metric,
        control_value=control,
        treatment_value=treatment,
        **{name: getattr(result, name) for name in _LIFT_FIELDS},
        **extra,
    )


def analyze_experiment(
    users: pd.DataFrame,
    experiment: str,
    treatment_share: float = DEFAULT_TREATMENT_SHARE,
    alpha: float = 0.05,
    power: float = 0.8,
) -> pd.DataFrame:
    """One row per metric (users, sample_ratio, conversion_rate, revenue_per_user).

    ``users``: one row per user with ``user_id``, ``experiment_group`` ('control'/'treatment'),
    ``converted`` (bool or 0/1) and ``revenue`` (float, 0 for non-buyers). ``significant`` on the
    sample_ratio row means a mismatch; ``srm_p_value`` and ``verdict`` repeat on every row.
    """
    missing = [col for col in REQUIRED_COLUMNS if col not in users.columns]
    if missing:
        raise ValueError(f"users is missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)}")
    if users["user_id"].duplicated().any():
        raise ValueError("users must have one row per user_id (duplicates would be double-counted)")
    groups = users["experiment_group"]
    unknown = sorted(map(str, set(groups.dropna().unique()) - {CONTROL, TREATMENT}))
    unknown += ["<null>"] if groups.isna().any() else []
    if unknown:
        raise ValueError(f"experiment_group must be {CONTROL!r} or {TREATMENT!r}, found {unknown}")
    converted = users["converted"]
    if converted.isna().any() or not converted.isin([0, 1]).all():
        raise ValueError("converted must be boolean or 0/1 with no missing values")
    is_c, is_t = (groups == CONTROL).to_numpy(), (groups == TREATMENT).to_numpy()
    if not is_c.any() or not is_t.any():
        raise ValueError(f"both arms need users, got control={is_c.sum()}, treatment={is_t.sum()}")
    revenue = pd.to_numeric(users["revenue"], errors="raise").to_numpy(dtype=float)
    conv = converted.to_numpy(dtype=float)

    n_c, n_t = int(is_c.sum()), int(is_t.sum())
    srm = sample_ratio_mismatch(n_c, n_t, treatment_share)
    conv_res = conversion_test(int(conv[is_c].sum()), n_c, int(conv[is_t].sum()), n_t, alpha)
    rev = revenue_test(revenue[is_c], revenue[is_t], alpha)
    mde = (
        minimum_detectable_effect(n_c, n_t, conv_res.rate_control, alpha, power)
        if 0 < conv_res.rate_control < 1
        else None
    )
    text = verdict(srm, conv_res, mde, rev)

    rows = [
        dict(metric="users", control_value=n_c, treatment_value=n_t),
        dict(
            metric="sample_ratio",
            control_value=n_c / (n_c + n_t),
            treatment_value=srm.observed_treatment_share,
            absolute_lift=srm.observed_treatment_share - treatment_share,
            relative_lift=srm.observed_treatment_share / treatment_share - 1,
            test="chi-square goodness of fit",
            statistic=srm.statistic,
            p_value=srm.p_value,
            significant=srm.mismatch,
        ),
        _lift_row(
            "conversion_rate",
            conv_res.rate_control,
            conv_res.rate_treatment,
            conv_res,
            mde_absolute=mde.absolute if mde else math.nan,
        ),
        _lift_row("revenue_per_user", rev.revenue_per_user_control, rev.revenue_per_user_treatment, rev),
    ]
    out = pd.DataFrame(rows).reindex(columns=OUTPUT_COLUMNS)
    out["experiment"] = experiment
    out["srm_p_value"] = srm.p_value
    out["verdict"] = text
    out["significant"] = out["significant"].astype("boolean")  # <NA> where no test applies
    float_cols = [c for c in OUTPUT_COLUMNS if c not in ("experiment", "metric", "test", "significant", "verdict")]
    out[float_cols] = out[float_cols].astype(float)
    return out
