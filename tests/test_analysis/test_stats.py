"""Statistics of seeded runs against hand computations and closed forms."""
import math

import pytest

from mmgate.analysis.stats import (mean, paired_t_test, stdev, summarize,
                                   t_cdf, t_ppf)


def test_t_distribution_closed_forms():
    """Student's t with 1 degree of freedom is the Cauchy distribution,
    with 2 its CDF is 1/2 + t / (2 sqrt(2 + t^2)); both invert in closed
    form."""
    for t in (-30., -2.5, -0.3, 0., 0.7, 4., 60.):
        assert t_cdf(t, 1) == pytest.approx(
            0.5 + math.atan(t) / math.pi, abs=1e-12)
        assert t_cdf(t, 2) == pytest.approx(
            0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)
    for p in (0.6, 0.9, 0.95, 0.975, 0.995):
        assert t_ppf(p, 1) == pytest.approx(
            math.tan(math.pi * (p - 0.5)), rel=1e-9)
        q = 2 * p - 1
        assert t_ppf(p, 2) == pytest.approx(
            q * math.sqrt(2 / (1 - q * q)), rel=1e-9)
        assert t_ppf(1 - p, 7) == pytest.approx(-t_ppf(p, 7), rel=1e-12)


@pytest.mark.parametrize(
    'df,quantile',
    [
        # two-sided 95 % critical values of the t table
        (1, 12.706),
        (2, 4.303),
        (3, 3.182),
        (4, 2.776),
        (5, 2.571),
        (10, 2.228),
        (30, 2.042),
        (1000, 1.962)
    ])
def test_t_table(df, quantile):
    assert t_ppf(0.975, df) == pytest.approx(quantile, abs=5e-4)
    assert t_cdf(t_ppf(0.975, df), df) == pytest.approx(0.975, abs=1e-12)


def test_against_scipy():
    stats = pytest.importorskip('scipy.stats')
    for df in (1, 2, 3, 5, 8, 19, 50):
        for t in (-9., -1.2, 0.4, 2.2, 7.):
            assert t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-12)
        for p in (0.9, 0.975, 0.999):
            assert t_ppf(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9)
    a, b = [33.1, 35.4, 34.0, 36.2], [32.0, 35.9, 33.1, 34.4]
    ours, ref = paired_t_test(a, b), stats.ttest_rel(a, b)
    assert ours.t == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-9)


def test_group_mean_std_interval_by_hand():
    """Values 40, 42, 41: mean 41, std 1 (n - 1), interval
    41 +- 4.302653 / sqrt(3)."""
    st = summarize([40., 42., 41.])
    assert (st.n, st.mean, st.std) == (3, 41., 1.)
    half = 4.302652729749464 / math.sqrt(3)
    assert st.low == pytest.approx(41 - half, abs=1e-9)
    assert st.high == pytest.approx(41 + half, abs=1e-9)
    assert st.level == 0.95
    # one seed: a mean, no spread, no interval
    one = summarize([40.])
    assert (one.n, one.mean, one.std, one.low, one.high) == (1, 40., None,
                                                             None, None)
    assert mean([1, 2]) == 1.5 and stdev([3.]) is None
    with pytest.raises(ValueError, match='mean of no values'):
        mean([])


def test_paired_t_test_by_hand():
    """gated 40, 42, 41 vs base 39, 40.5, 40: differences 1, 1.5, 1; mean
    7/6, std sqrt(1/12), t = (7/6) / (sqrt(1/12) / sqrt(3)) = 7; with 2
    degrees of freedom P(|T| > 7) = 1 - 7 / sqrt(51)."""
    test = paired_t_test([40., 42., 41.], [39., 40.5, 40.])
    assert test.n == 3 and test.diffs == [1., 1.5, 1.]
    assert test.mean == pytest.approx(7 / 6)
    assert test.std == pytest.approx(math.sqrt(1 / 12))
    assert test.t == pytest.approx(7.)
    assert test.p == pytest.approx(1 - 7 / math.sqrt(51), rel=1e-9)
    half = 4.302652729749464 * math.sqrt(1 / 12) / math.sqrt(3)
    assert (test.low, test.high) == pytest.approx((7 / 6 - half, 7 / 6 + half))
    assert test.includes_zero is False

    # differences +2 and -1: the interval spans 0
    test = paired_t_test([50., 48.], [48., 49.])
    assert test.mean == pytest.approx(0.5) and test.includes_zero is True
    assert test.std == pytest.approx(math.sqrt(4.5))
    # 1 degree of freedom: p = 1 - 2 atan(|t|) / pi
    t = 0.5 / (math.sqrt(4.5) / math.sqrt(2))
    assert test.p == pytest.approx(1 - 2 * math.atan(t) / math.pi)

    # one pair: a difference, no interval, no test
    one = paired_t_test([50.], [48.])
    assert (one.mean, one.low, one.p, one.includes_zero) == (2., None, None,
                                                             None)
    # every seed differs by the same amount: no spread
    same = paired_t_test([3., 4.], [2., 3.])
    assert (same.low, same.high, same.p) == (1., 1., 0.)
    with pytest.raises(ValueError, match='differ in length'):
        paired_t_test([1., 2.], [1.])
