"""experiment.analysis: the statistics, checked against statsmodels, textbook numbers, simulation and the
generator's own users."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from ecom_assets.experiment.analysis import (
    OUTPUT_COLUMNS,
    analyze_experiment,
    conversion_test,
    minimum_detectable_effect,
    revenue_test,
    sample_ratio_mismatch,
    verdict,
)
from ecom_assets.experiment.assignment import DEFAULT_EXPERIMENT_KEY, is_treated
from ecom_assets_tests.simulated_users import conversion_row as _conversion
from ecom_assets_tests.simulated_users import simulate_users, true_conversion_lift

Z95 = stats.norm.ppf(0.975)


# --- conversion ------------------------------------------------------------------------------


def test_conversion_textbook_numbers():
    # 10% vs 15% of 1,000: pooled p = 0.125, chi2 = 0.05**2 / (0.125*0.875*2/1000) = 80/7 exactly.
    r = conversion_test(100, 1000, 150, 1000)
    assert r.statistic == pytest.approx(80 / 7, rel=1e-12)
    assert r.p_value == pytest.approx(stats.chi2.sf(80 / 7, 1), rel=1e-12)
    assert r.significant and not r.yates_correction
    half = Z95 * math.sqrt(0.10 * 0.90 / 1000 + 0.15 * 0.85 / 1000)  # unpooled Wald
    assert (r.absolute_ci_low, r.absolute_ci_high) == pytest.approx((0.05 - half, 0.05 + half), abs=1e-12)
    assert r.relative_lift == pytest.approx(0.5)
    se_log = math.sqrt(0.9 / 100 + 0.85 / 150)  # (1-p)/(n p) per arm
    assert r.relative_ci_low == pytest.approx(1.5 * math.exp(-Z95 * se_log) - 1, rel=1e-9)
    assert r.relative_ci_high == pytest.approx(1.5 * math.exp(Z95 * se_log) - 1, rel=1e-9)


@pytest.mark.parametrize(
    "x_c,n_c,x_t,n_t",
    [(410, 10_000, 460, 10_000), (95, 2_000, 70, 2_600), (3, 40, 9, 55), (1_200, 30_000, 1_200, 30_000)],
)
def test_conversion_matches_statsmodels(x_c, n_c, x_t, n_t):
    r = conversion_test(x_c, n_c, x_t, n_t)
    z, p = proportions_ztest([x_t, x_c], [n_t, n_c])  # pooled two-proportion z-test
    assert r.statistic == pytest.approx(z**2, rel=1e-9, abs=1e-12)
    assert r.p_value == pytest.approx(p, rel=1e-9)
    low, high = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff")
    assert (r.absolute_ci_low, r.absolute_ci_high) == pytest.approx((low, high), rel=1e-9)
    assert r.absolute_lift == pytest.approx(x_t / n_t - x_c / n_c)


def test_yates_correction_is_opt_in_and_conservative():
    plain, yates = conversion_test(30, 300, 45, 300), conversion_test(30, 300, 45, 300, correction=True)
    assert yates.yates_correction and "Yates" in yates.test
    assert yates.p_value > plain.p_value  # the correction always pulls towards "no difference"
    table = [[30, 270], [45, 255]]
    assert yates.p_value == pytest.approx(stats.chi2_contingency(table)[1])  # scipy's default is Yates


def test_conversion_without_any_conversion_has_no_p_value():
    r = conversion_test(0, 500, 0, 500)
    assert math.isnan(r.p_value) and not r.significant and math.isnan(r.relative_lift)


# --- revenue ---------------------------------------------------------------------------------


def test_welch_textbook_example():
    # Wikipedia "Welch's t-test", example 1: t = -2.46, df ~ 24.99, p = 0.021.
    a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    r = revenue_test(a2, a1)  # control=a2, treatment=a1 so the lift is a1 - a2
    assert r.statistic == pytest.approx(-2.46, abs=0.005)
    assert r.df == pytest.approx(24.99, abs=0.01)
    assert r.p_value == pytest.approx(0.021, abs=0.0005)
    assert r.absolute_ci_high < 0 and r.significant


def test_welch_matches_statsmodels():
    rng = np.random.default_rng(7)
    # zero-inflated, skewed, unequal spread and size: the shape of revenue per user
    c = rng.lognormal(3, 1.0, 3_000) * (rng.random(3_000) < 0.05)
    t = rng.lognormal(3, 1.3, 2_500) * (rng.random(2_500) < 0.06)
    r = revenue_test(c, t)
    tstat, p, df = ttest_ind(t, c, usevar="unequal")
    assert (r.statistic, r.p_value, r.df) == pytest.approx((tstat, p, df), rel=1e-9)
    low, high = CompareMeans(DescrStatsW(t), DescrStatsW(c)).tconfint_diff(usevar="unequal")
    assert (r.absolute_ci_low, r.absolute_ci_high) == pytest.approx((low, high), rel=1e-9)
    assert r.absolute_lift == pytest.approx(t.mean() - c.mean())


def test_welch_null_false_positives_and_coverage_on_skewed_revenue():
    rng = np.random.default_rng(11)
    reps, n = 300, 2_000
    draw = lambda: rng.lognormal(3, 1.0, (reps, n)) * (rng.random((reps, n)) < 0.1)  # noqa: E731
    c, t = draw(), draw()
    results = [revenue_test(c[i], t[i]) for i in range(reps)]
    fpr = np.mean([r.significant for r in results])
    coverage = np.mean([r.absolute_ci_low <= 0 <= r.absolute_ci_high for r in results])
    assert 0.02 <= fpr <= 0.09
    assert 0.92 <= coverage <= 0.98


# --- minimum detectable effect ---------------------------------------------------------------


@pytest.mark.parametrize(
    "p,n_c,n_t", [(0.10, 20_000, 20_000), (0.041, 30_000, 30_000), (0.05, 10_000, 5_000), (0.5, 1_000, 1_000)]
)
def test_mde_matches_statsmodels_power_via_cohens_h(p, n_c, n_t):
    m = minimum_detectable_effect(n_c, n_t, p)
    # statsmodels solves for Cohen's h = 2 asin(sqrt pT) - 2 asin(sqrt pC); map it back to pT - pC.
    h = NormalIndPower().solve_power(effect_size=None, nobs1=n_c, ratio=n_t / n_c, alpha=0.05, power=0.8)
    assert zt_ind_solve_power(effect_size=None, nobs1=n_c, ratio=n_t / n_c, alpha=0.05, power=0.8) == pytest.approx(h)
    mde_h = math.sin(math.asin(math.sqrt(p)) + h / 2) ** 2 - p
    assert m.absolute == pytest.approx(mde_h, rel=0.01)  # different approximations, same answer
    assert m.relative == pytest.approx(m.absolute / p)


def test_mde_lehr_rule_of_thumb():
    # Lehr: n per arm ~ 16 p(1-p) / d**2 at alpha=0.05, power=0.8, i.e. d ~ 4 sqrt(p(1-p)/n).
    m = minimum_detectable_effect(20_000, 20_000, 0.10)
    assert m.absolute == pytest.approx(4 * math.sqrt(0.09 / 20_000), rel=0.03)
    quadrupled = minimum_detectable_effect(80_000, 80_000, 0.10)
    assert quadrupled.absolute == pytest.approx(m.absolute / 2, rel=0.03)  # 4x the users, half the MDE
    assert minimum_detectable_effect(20_000, 20_000, 0.10, power=0.9).absolute > m.absolute


def test_mde_is_the_lift_found_with_the_promised_power():
    # Simulate the experiment at exactly the MDE: the test must reject about 80% of the time.
    rng = np.random.default_rng(3)
    n, p, reps = 5_000, 0.10, 400
    mde = minimum_detectable_effect(n, n, p).absolute
    x_c, x_t = rng.binomial(n, p, reps), rng.binomial(n, p + mde, reps)
    power = np.mean([conversion_test(x_c[i], n, x_t[i], n).significant for i in range(reps)])
    assert 0.74 <= power <= 0.86


# --- simulation: found when there, not found when not ----------------------------------------


def test_injected_lift_is_found():
    rng = np.random.default_rng(2024)
    n = 20_000
    r = conversion_test(rng.binomial(n, 0.10), n, rng.binomial(n, 0.12), n)
    assert r.p_value < 0.05 and r.significant
    assert 0 < r.absolute_ci_low <= 0.02 <= r.absolute_ci_high
    assert r.relative_ci_low <= 0.2 <= r.relative_ci_high


def test_no_effect_false_positive_rate_and_coverage():
    rng = np.random.default_rng(99)
    n, p, reps = 5_000, 0.10, 400  # 400 independent replications, drawn in one vectorised call
    x = rng.binomial(n, p, (2, reps))
    results = [conversion_test(x[0, i], n, x[1, i], n) for i in range(reps)]
    assert 0.02 <= np.mean([r.significant for r in results]) <= 0.09
    assert 0.92 <= np.mean([r.absolute_ci_low <= 0 <= r.absolute_ci_high for r in results]) <= 0.98
    assert 0.92 <= np.mean([r.relative_ci_low <= 0 <= r.relative_ci_high for r in results]) <= 0.98


def test_relative_ci_matches_parametric_bootstrap():
    n = 5_000
    r = conversion_test(500, n, 600, n)  # 10% -> 12%, relative lift +20%
    rng = np.random.default_rng(5)
    boot = rng.binomial(n, 0.12, 40_000) / rng.binomial(n, 0.10, 40_000) - 1
    low, high = np.quantile(boot, [0.025, 0.975])
    # abs=0.005 also tells the log-scale interval from a raw-ratio one (off by ~0.008 here)
    assert r.relative_ci_low == pytest.approx(low, abs=0.005)
    assert r.relative_ci_high == pytest.approx(high, abs=0.005)
    # the log scale makes the interval skewed to the right, like the bootstrap's
    assert r.relative_ci_high - r.relative_lift > r.relative_lift - r.relative_ci_low


def test_relative_ci_coverage_with_a_true_lift():
    rng = np.random.default_rng(8)
    n, reps = 5_000, 400
    x_c, x_t = rng.binomial(n, 0.10, reps), rng.binomial(n, 0.12, reps)
    covered = [
        (r := conversion_test(x_c[i], n, x_t[i], n)).relative_ci_low <= 0.2 <= r.relative_ci_high for i in range(reps)
    ]
    assert 0.92 <= np.mean(covered) <= 0.98


# --- sample ratio mismatch -------------------------------------------------------------------


def test_skewed_split_trips_srm():
    r = sample_ratio_mismatch(10_000, 11_000)
    assert r.statistic == pytest.approx(2 * 500**2 / 10_500)  # textbook goodness of fit
    assert r.mismatch and r.p_value < 1e-10
    assert "not to be trusted" in r.message and "expected 50.0% treatment, observed 52.4%" in r.message


def test_fair_split_does_not_trip_srm():
    assert not sample_ratio_mismatch(10_000, 10_100).mismatch
    assert not sample_ratio_mismatch(8_000, 2_000, treatment_share=0.2).mismatch
    assert sample_ratio_mismatch(5_000, 5_000, treatment_share=0.2).mismatch  # fair for 50/50 only


def test_real_assignment_passes_srm():
    treated = is_treated(range(20_000))  # the production assignment scheme
    r = sample_ratio_mismatch(int((~treated).sum()), int(treated.sum()))
    assert not r.mismatch and "Sample ratio OK" in r.message


# --- verdict and the whole experiment --------------------------------------------------------


def test_verdict_sentences():
    srm_ok = sample_ratio_mismatch(10_000, 10_000)
    sig = conversion_test(410, 10_000, 520, 10_000)
    assert verdict(srm_ok, sig).startswith("Treatment lifts conversion from 4.1% to 5.2% (+1.1 pp, 95% CI +")
    assert verdict(srm_ok, sig).endswith("significant.")
    flat = conversion_test(410, 10_000, 420, 10_000)
    mde = minimum_detectable_effect(10_000, 10_000, 0.041)
    text = verdict(srm_ok, flat, mde)
    assert text.startswith("No significant difference") and f"{mde.absolute * 100:+.1f} pp or more" in text
    down = conversion_test(520, 10_000, 410, 10_000)
    assert verdict(srm_ok, down).startswith("Treatment lowers conversion")
    # an SRM failure overrides even a significant result
    srm_bad = sample_ratio_mismatch(10_000, 11_000)
    assert "not to be trusted" in verdict(srm_bad, sig) and "lifts" not in verdict(srm_bad, sig)


def _users(n_c, n_t, p_c, p_t, seed=0):
    rng = np.random.default_rng(seed)
    conv = np.r_[rng.random(n_c) < p_c, rng.random(n_t) < p_t]
    return pd.DataFrame(
        {
            "user_id": np.arange(n_c + n_t),
            "experiment_group": ["control"] * n_c + ["treatment"] * n_t,
            "converted": conv,
            "revenue": np.where(conv, rng.lognormal(4, 0.8, n_c + n_t), 0.0),
        }
    )


def test_analyze_experiment_output():
    users = _users(20_000, 20_000, 0.10, 0.12)
    out = analyze_experiment(users, "checkout_redesign")
    assert list(out.columns) == OUTPUT_COLUMNS
    assert list(out.metric) == ["users", "sample_ratio", "conversion_rate", "revenue_per_user"]
    row = out.set_index("metric")
    conv = row.loc["conversion_rate"]
    g = users.groupby("experiment_group")
    assert conv.control_value == pytest.approx(g.converted.mean()["control"])
    assert conv.significant and conv.p_value < 0.05 and conv.mde_absolute > 0
    assert row.loc["revenue_per_user", "treatment_value"] == pytest.approx(g.revenue.mean()["treatment"])
    assert row.loc["users", "control_value"] == 20_000 and pd.isna(row.loc["users", "significant"])
    assert not row.loc["sample_ratio", "significant"]
    assert (out.experiment == "checkout_redesign").all() and out.verdict.nunique() == 1
    assert out.verdict[0].startswith("Treatment lifts conversion")
    # 0/1 integers give the same answer as booleans
    as_int = analyze_experiment(users.assign(converted=users.converted.astype(int)), "checkout_redesign")
    pd.testing.assert_frame_equal(out, as_int)


def test_analyze_experiment_flags_srm():
    out = analyze_experiment(_users(10_000, 11_000, 0.10, 0.10), "x")
    assert out.set_index("metric").loc["sample_ratio", "significant"]
    assert (out.srm_p_value < 0.001).all() and out.verdict[0].startswith("Sample ratio mismatch")


# --- invalid input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: d.drop(columns=["revenue"]), "missing column"),
        (lambda d: d[d.experiment_group == "control"], "both arms need users"),
        (lambda d: d.assign(experiment_group="control"), "both arms need users"),
        (lambda d: d.assign(experiment_group=d.experiment_group.replace("treatment", "variant_b")), "variant_b"),
        (lambda d: d.assign(user_id=0), "one row per user_id"),
        (lambda d: d.assign(converted=2), "converted must be"),
        (lambda d: d.assign(revenue=np.nan), "NaN"),
    ],
)
def test_analyze_experiment_rejects_bad_input(mutate, message):
    with pytest.raises(ValueError, match=message):
        analyze_experiment(mutate(_users(50, 50, 0.2, 0.2)), "x")


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: conversion_test(11, 10, 5, 10), "cannot exceed"),
        (lambda: conversion_test(1, 0, 1, 10), "both arms need users"),
        (lambda: conversion_test(-1, 10, 1, 10), "non-negative whole number"),
        (lambda: conversion_test(1, 10, 1, 10, alpha=1.5), "alpha"),
        (lambda: sample_ratio_mismatch(0, 0), "at least one user"),
        (lambda: sample_ratio_mismatch(10, 10, treatment_share=1.0), "treatment_share"),
        (lambda: revenue_test([1.0], [1.0, 2.0]), "at least 2 users"),
        (lambda: minimum_detectable_effect(100, 100, 0.0), "baseline_rate"),
        (lambda: minimum_detectable_effect(100, 100, 0.1, power=1.0), "power"),
    ],
)
def test_functions_reject_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- the generator's simulated users: its injected effect found, no effect not claimed ------------


def test_true_lift_of_the_generator_is_a_few_points():
    lift = true_conversion_lift(0.05)
    assert 0.03 < lift < 0.09
    assert true_conversion_lift(0.0) == 0.0


def test_injected_effect_is_found_in_simulated_users():
    users = simulate_users(seed=21, treatment_effect=0.05, n_users=30_000)
    conversion = _conversion(analyze_experiment(users, DEFAULT_EXPERIMENT_KEY))
    assert conversion["p_value"] < 0.05 and conversion["significant"]
    assert 0 < conversion["absolute_ci_low"] <= true_conversion_lift(0.05) <= conversion["absolute_ci_high"]


def test_no_injected_effect_is_not_claimed():
    users = simulate_users(seed=22, treatment_effect=0.0, n_users=30_000)
    results = analyze_experiment(users, DEFAULT_EXPERIMENT_KEY)
    conversion = _conversion(results)
    assert not conversion["significant"]
    assert conversion["absolute_ci_low"] <= 0 <= conversion["absolute_ci_high"]
    assert "No significant difference in conversion" in conversion["verdict"]


def test_false_positive_rate_over_seeds_stays_near_alpha():
    significant = []
    for seed in range(1_000, 1_200):  # 200 independent worlds of 2,000 users without an effect
        results = analyze_experiment(simulate_users(seed, 0.0, 2_000), "null").set_index("metric")
        significant.append(
            [
                results.loc["conversion_rate", "significant"],
                results.loc["revenue_per_user", "significant"],
                results.loc["sample_ratio", "significant"],
            ]
        )
    conversion, revenue, srm = np.mean(significant, axis=0)
    assert 0.02 <= conversion <= 0.10  # alpha = 0.05; 200 runs give a standard error of 1.5 pp
    assert 0.02 <= revenue <= 0.10
    assert srm <= 0.01  # the SRM alarm uses p < 0.001
