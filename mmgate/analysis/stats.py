"""Small-sample statistics of seeded runs (standard library only).

On a small dataset the spread between training seeds is often as large as
the difference between two backbones, so a comparison needs several seeds
and an interval, not one run each:

- :func:`summarize` gives a group's mean, sample standard deviation and the
  two-sided Student-t interval of its mean;
- :func:`paired_t_test` compares two groups trained with the same seeds:
  the per-seed differences ``a - b``, their mean and standard deviation,
  the t interval of the mean difference and the two-sided p-value of the
  paired t-test (H0: mean difference 0). Pairing by seed removes what the
  two runs of one seed share (data order, initialisation of the shared
  parts).

The Student t distribution is computed from the regularised incomplete beta
function (continued fraction, evaluated by the modified Lentz method, as in
Press et al., Numerical Recipes, 3rd ed., section 6.4), its quantiles by
bisection; SciPy is not needed.
"""
import math
from typing import List, NamedTuple, Optional, Sequence

__all__ = [
    'GroupStats', 'PairedTest', 'mean', 'stdev', 't_cdf', 't_ppf', 'summarize',
    'paired_t_test'
]


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean.

    Raises:
        ValueError: ``values`` is empty.
    """
    if not values:
        raise ValueError('mean of no values')
    return math.fsum(values) / len(values)


def stdev(values: Sequence[float]) -> Optional[float]:
    """Sample standard deviation (``n - 1`` in the denominator); None for
    fewer than 2 values."""
    if len(values) < 2:
        return None
    m = mean(values)
    return math.sqrt(math.fsum((v - m)**2 for v in values) / (len(values) - 1))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified
    Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1., a - 1.
    c, d = 1., 1. - qab * x / qap
    d = 1. / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1. + aa * d
        d = 1. / (d if abs(d) > tiny else tiny)
        c = 1. + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1. + aa * d
        d = 1. / (d if abs(d) > tiny else tiny)
        c = 1. + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.) < 1e-15:
            return h
    raise ArithmeticError(f'incomplete beta ({a}, {b}, {x}) did not '
                          'converge')


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.:
        return 0.
    if x >= 1.:
        return 1.
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) +
        a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.) / (a + b + 2.):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1. - math.exp(log_front) * _betacf(b, a, 1. - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f'degrees of freedom must be positive, got {df}')
    if math.isinf(t):
        return 1. if t > 0 else 0.
    tail = 0.5 * _betainc(df / 2., 0.5, df / (df + t * t))
    return 1. - tail if t > 0 else tail


def t_ppf(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom."""
    if not 0. < p < 1.:
        raise ValueError(f'p must be in (0, 1), got {p}')
    if p == 0.5:
        return 0.
    if p < 0.5:
        return -t_ppf(1. - p, df)
    lo, hi = 0., 1.
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.
    for _ in range(200):
        mid = (lo + hi) / 2.
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1., hi):
            break
    return (lo + hi) / 2.


class GroupStats(NamedTuple):
    """Mean of a group of seeded runs and its interval.

    ``low`` / ``high`` are None for fewer than 2 values (no spread to
    estimate), ``std`` too."""
    n: int
    mean: float
    std: Optional[float]
    low: Optional[float]
    high: Optional[float]
    level: float


def summarize(values: Sequence[float], level: float = 0.95) -> GroupStats:
    """Mean, sample standard deviation and the two-sided Student-t
    interval ``mean +- t(1 - alpha / 2, n - 1) * std / sqrt(n)``."""
    values = list(values)
    m = mean(values)
    s = stdev(values)
    if s is None:
        return GroupStats(len(values), m, None, None, None, level)
    half = t_ppf(0.5 + level / 2.,
                 len(values) - 1) * s / math.sqrt(len(values))
    return GroupStats(len(values), m, s, m - half, m + half, level)


class PairedTest(NamedTuple):
    """Paired t-test of ``a - b`` over matched seeds.

    Attributes:
        n (int): Pairs.
        diffs (list[float]): Per-pair differences ``a - b``.
        mean (float): Mean difference.
        std (float, optional): Their sample standard deviation.
        low, high (float, optional): Two-sided ``level`` t interval of the
            mean difference (None for one pair).
        t (float, optional): ``mean / (std / sqrt(n))``.
        p (float, optional): Two-sided p-value, ``n - 1`` degrees of
            freedom.
        level (float): Interval level.
    """
    n: int
    diffs: List[float]
    mean: float
    std: Optional[float]
    low: Optional[float]
    high: Optional[float]
    t: Optional[float]
    p: Optional[float]
    level: float

    @property
    def includes_zero(self) -> Optional[bool]:
        """Whether the interval includes 0 (None without an interval)."""
        if self.low is None:
            return None
        return self.low <= 0. <= self.high


def paired_t_test(a: Sequence[float],
                  b: Sequence[float],
                  level: float = 0.95) -> PairedTest:
    """Paired (two-sided) t-test of ``a - b``; ``a[i]`` and ``b[i]`` are
    the runs of one seed.

    Raises:
        ValueError: ``a`` and ``b`` differ in length or are empty.
    """
    if len(a) != len(b):
        raise ValueError(f'paired samples differ in length: {len(a)} and '
                         f'{len(b)}')
    diffs = [x - y for x, y in zip(a, b)]
    stats = summarize(diffs, level)
    if stats.std is None:
        return PairedTest(stats.n, diffs, stats.mean, None, None, None, None,
                          None, level)
    if stats.std == 0.:
        # every pair differs by the same amount: no spread to test against
        t = math.copysign(math.inf, stats.mean) if stats.mean else 0.
        p = 0. if stats.mean else 1.
    else:
        t = stats.mean / (stats.std / math.sqrt(stats.n))
        p = 2. * (1. - t_cdf(abs(t), stats.n - 1))
    return PairedTest(stats.n, diffs, stats.mean, stats.std, stats.low,
                      stats.high, t, p, level)
