"A/B statistics agree with scipy/statsmodels and keep their error rates."
import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.power import NormalIndPower

from retail_workbench.monitor.abtest import (analyze_experiment, bootstrap_ci, cuped_ttest,
                                     mde_proportions, msprt_pvalues, power_proportions, sample_size_means,
                                     sample_size_proportions, simulate_experiment,
                                     simulate_peeking, srm_check, two_proportion_ztest,
                                     welch_ttest)
from retail_workbench.core import DataError


@pytest.mark.parametrize("counts", [(480, 10_000, 560, 10_000), (30, 700, 22, 900),
                                    (0, 50, 3, 60)])
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_ztest_matches_statsmodels(counts, alternative):
    sa, na, sb, nb = counts
    res = two_proportion_ztest(sa, na, sb, nb, alternative=alternative)
    z, p = proportions_ztest([sb, sa], [nb, na], alternative=alternative)
    assert res.statistic == pytest.approx(z, abs=1e-9)
    assert res.p_value == pytest.approx(p, abs=1e-9)


@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_welch_matches_scipy(alternative):
    rng = np.random.default_rng(4)
    a = rng.lognormal(1, 1.5, 800) * (rng.random(800) < 0.3)
    b = rng.lognormal(1.1, 1.5, 1200) * (rng.random(1200) < 0.3)
    res = welch_ttest(a, b, alternative=alternative)
    sp_alt = {"two-sided": "two-sided", "larger": "greater", "smaller": "less"}[alternative]
    ref = stats.ttest_ind(b, a, equal_var=False, alternative=sp_alt)
    assert res.statistic == pytest.approx(ref.statistic, abs=1e-9)
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    if alternative == "two-sided":
        lo, hi = ref.confidence_interval(0.95)
        assert (res.ci_low, res.ci_high) == pytest.approx((lo, hi), abs=1e-9)


def test_srm_matches_scipy_and_flags_bad_split():
    res = srm_check([10_300, 9_700, 10_000], [1, 1, 1])
    ref = stats.chisquare([10_300, 9_700, 10_000])
    assert res["statistic"] == pytest.approx(ref.statistic, abs=1e-9)
    assert res["p_value"] == pytest.approx(ref.pvalue, abs=1e-9)
    assert res["mismatch"]
    assert not srm_check([6_030, 3_970], [0.6, 0.4])["mismatch"]
    with pytest.raises(DataError, match="expected_ratios"):
        srm_check([1, 2], [1, 0])


def test_bootstrap_covers_true_difference():
    rng = np.random.default_rng(0)
    covered = 0
    for i in range(60):
        a = rng.exponential(1.0, 300)
        b = rng.exponential(1.2, 300)
        _, lo, hi = bootstrap_ci(a, b, n_boot=400, random_state=i)
        covered += lo <= 0.2 <= hi
    assert covered / 60 >= 0.85


def test_sample_size_and_power_are_consistent():
    assert sample_size_means(0.5, 10) == pytest.approx(
        NormalIndPower().solve_power(effect_size=0.05, power=0.8, alpha=0.05), abs=1)
    n = sample_size_proportions(0.1, 0.01)
    assert power_proportions(0.1, 0.01, n) == pytest.approx(0.8, abs=1e-3)
    assert mde_proportions(0.1, n) == pytest.approx(0.01, rel=1e-3)
    assert sample_size_proportions(0.1, 0.005) > 3.5 * n   # halving the MDE ~quadruples n
    with pytest.raises(ValueError):
        sample_size_means(0, 1)


def test_cuped_shrinks_interval_and_keeps_estimate_unbiased():
    rng = np.random.default_rng(1)
    effects, widths = [], []
    for _ in range(40):
        pre = rng.normal(10, 3, 2000)
        post = pre + rng.normal(0, 1.5, 2000)
        post[1000:] += 0.3
        cup = cuped_ttest(post[:1000], pre[:1000], post[1000:], pre[1000:])
        plain = welch_ttest(post[:1000], post[1000:])
        effects.append(cup.effect)
        widths.append((cup.ci_high - cup.ci_low) / (plain.ci_high - plain.ci_low))
    assert np.mean(effects) == pytest.approx(0.3, abs=0.05)
    rho2 = 9 / (9 + 2.25)
    assert np.mean(widths) == pytest.approx(np.sqrt(1 - rho2), abs=0.03)


@pytest.mark.slow
def test_msprt_false_positive_rate_at_most_alpha_under_peeking():
    sim = simulate_peeking(n_experiments=300, n_per_variant=1000, n_looks=20, alpha=0.05,
                           random_state=11)
    assert sim["msprt_rate"] <= 0.05
    assert sim["naive_peeking_rate"] > 0.1   # the problem it solves is real


def test_msprt_detects_real_effect_and_is_monotone():
    rng = np.random.default_rng(2)
    seq = msprt_pvalues(rng.normal(0, 1, 5000), rng.normal(0.15, 1, 5000), looks=25)
    assert (np.diff(seq.p_value) <= 0).all()
    assert seq.p_value.iloc[-1] < 0.01
    with pytest.raises(ValueError, match="looks"):
        msprt_pvalues([0, 1, 2], [1, 2, 3], looks=[3, 2])


def test_analyze_experiment_detects_lift_and_not_null():
    lifted = analyze_experiment(simulate_experiment(40_000, lift=0.2, random_state=3),
                                pre_col="pre_revenue", n_boot=200)
    null = analyze_experiment(simulate_experiment(40_000, lift=0.0, random_state=4),
                              pre_col="pre_revenue", n_boot=200)
    assert lifted["conversion_significant"] and lifted["revenue_p_value"] < 0.05
    assert lifted["revenue_boot_ci_low"] > 0
    assert null["conversion_ci_low"] < 0 < null["conversion_ci_high"]
    assert not lifted["srm_mismatch"] and not null["srm_mismatch"]
    # CUPED interval is narrower than the plain one
    assert (lifted["revenue_cuped_ci_high"] - lifted["revenue_cuped_ci_low"]
            < lifted["revenue_ci_high"] - lifted["revenue_ci_low"])
