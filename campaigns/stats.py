"""Uplift of a conversion rate between a treatment and a control group, with a 95% interval.

The interval is Newcombe's hybrid score interval for a difference of independent proportions
(Newcombe 1998, "Interval estimation for the difference between independent proportions",
Statistics in Medicine 17, method 10): it combines the two groups' Wilson score intervals.
Unlike the plain normal approximation (Wald: d ± z·sqrt(p1(1−p1)/n1 + p2(1−p2)/n2)), it stays
inside [−1, 1] and keeps close to its nominal coverage with small groups or rates near 0 or 1,
which holdout groups of a few hundred members with rates of a few percent are. Wald is
returned as well for reference. The paper's example 56/70 vs 48/80 gives 0.0524 to 0.3339.
"""

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


@dataclass(frozen=True)
class Uplift:
    treatment_rate: float | None
    control_rate: float | None
    difference: float | None
    low: float | None  # Newcombe 95%
    high: float | None
    wald_low: float | None
    wald_high: float | None

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low is not None and (self.low > 0 or self.high < 0)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a proportion."""
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0 <= successes <= n:
        raise ValueError("successes must be between 0 and n")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 − p2."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def wald_interval(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """The normal approximation for p1 − p2 (for reference; see the module's docstring)."""
    p1, p2 = x1 / n1, x2 / n2
    half = z * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return p1 - p2 - half, p1 - p2 + half


def uplift(x_treatment: int, n_treatment: int, x_control: int, n_control: int) -> Uplift:
    """Conversion uplift (treatment − control); None where a group is empty."""
    rate_t = x_treatment / n_treatment if n_treatment else None
    rate_c = x_control / n_control if n_control else None
    if rate_t is None or rate_c is None:
        return Uplift(rate_t, rate_c, None, None, None, None, None)
    low, high = newcombe_interval(x_treatment, n_treatment, x_control, n_control)
    wald_low, wald_high = wald_interval(x_treatment, n_treatment, x_control, n_control)
    return Uplift(rate_t, rate_c, rate_t - rate_c, low, high, wald_low, wald_high)
