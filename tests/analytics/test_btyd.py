"""The likelihoods and fits of analytics.btyd against published values and the reference
library (lifetimes), on the CDNOW summaries that ship with it."""

import numpy as np
import pytest
from lifetimes import BetaGeoFitter
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value

from analytics import btyd

FHL_2005 = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]  # Fader and Hardie 2007, "regular" customers
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


@pytest.fixture(scope="module")
def cdnow():
    summary = load_cdnow_summary()
    return summary["frequency"].to_numpy(), summary["recency"].to_numpy(), summary["T"].to_numpy()


@pytest.fixture(scope="module")
def cdnow_repeaters():
    summary = load_cdnow_summary_data_with_monetary_value()
    repeat = summary[summary["frequency"] > 0]
    return repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy()


def test_bgnbd_fit_on_cdnow_matches_fader_hardie_lee(cdnow):
    fit = btyd.fit_bgnbd(*cdnow)
    assert fit.converged
    assert fit.n == 2357
    for name, published in FHL_2005.items():
        assert fit.params[name] == pytest.approx(published, rel=0.005), name
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_bgnbd_log_likelihood_at_published_parameters(cdnow):
    # The published parameters are (rounded) the maximum: the likelihood there is within a hair
    # of the fitted one and lower than at a parameter set further away.
    at_published = btyd.bgnbd_log_likelihood(FHL_2005, *cdnow)
    assert at_published == pytest.approx(-9582.4, abs=0.1)
    assert btyd.bgnbd_log_likelihood({**FHL_2005, "r": 0.3}, *cdnow) < at_published - 1


def test_collapsed_weighted_rows_give_the_same_fit_as_one_row_per_customer(cdnow):
    (x, t_x, T), weights = btyd.collapse(*cdnow)
    assert len(x) < 2357
    full = btyd.fit_bgnbd(*cdnow)
    collapsed = btyd.fit_bgnbd(x, t_x, T, weights)
    for name in FHL_2005:
        assert collapsed.params[name] == pytest.approx(full.params[name], rel=1e-6)
    assert collapsed.log_likelihood == pytest.approx(full.log_likelihood, rel=1e-9)
    assert collapsed.n == 2357


def test_bgnbd_predictions_agree_with_lifetimes(cdnow):
    x, t_x, T = cdnow
    fit = btyd.fit_bgnbd(x, t_x, T)
    reference = BetaGeoFitter().fit(x, t_x, T)
    assert np.allclose(
        btyd.bgnbd_p_alive(fit.params, x, t_x, T),
        reference.conditional_probability_alive(x, t_x, T),
        atol=1e-5,
    )
    assert np.allclose(
        btyd.bgnbd_expected_purchases(fit.params, 39, x, t_x, T),
        reference.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, T),
        atol=1e-4,
    )
    # Customers without a repeat purchase are alive by the model's assumption.
    assert np.all(btyd.bgnbd_p_alive(fit.params, x, t_x, T)[x == 0] == 1.0)


def test_gamma_gamma_fit_on_cdnow_matches_the_reference(cdnow_repeaters):
    fit = btyd.fit_gamma_gamma(*cdnow_repeaters)
    assert fit.converged
    assert fit.n == 946
    assert fit.params["p"] == pytest.approx(6.25, rel=0.01)
    assert fit.params["q"] == pytest.approx(3.74, rel=0.01)
    assert fit.params["v"] == pytest.approx(15.45, rel=0.01)
    assert fit.log_likelihood == pytest.approx(
        btyd.gamma_gamma_log_likelihood(fit.params, *cdnow_repeaters)
    )


def test_gamma_gamma_expectation_shrinks_towards_the_population_mean():
    params = {"p": 6.25, "q": 3.74, "v": 15.45}
    population = params["p"] * params["v"] / (params["q"] - 1)
    one, many = btyd.gamma_gamma_expected_value(params, [1, 50], [100.0, 100.0])
    assert population < one < many < 100.0
    assert many == pytest.approx(100.0, rel=0.05)
    (nobody,) = btyd.gamma_gamma_expected_value(params, [0], [0.0])
    assert nobody == pytest.approx(population)


def test_gamma_gamma_ignores_zero_amounts():
    fit = btyd.fit_gamma_gamma([1, 2, 3, 2, 1, 4], [10.0, 0.0, 12.0, 30.0, 25.0, 18.0])
    assert fit.n == 5


@pytest.mark.parametrize(
    "survivors, gamma, delta",
    [(REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)],
)
def test_sbg_fit_matches_fader_hardie_2007(survivors, gamma, delta):
    fit = btyd.fit_sbg([survivors])
    assert fit.converged
    assert fit.params["gamma"] == pytest.approx(gamma, rel=0.005)
    assert fit.params["delta"] == pytest.approx(delta, rel=0.005)
    assert fit.n == 1000


def test_sbg_log_likelihood_and_survival_of_the_regular_example():
    params = {"gamma": 0.704, "delta": 1.182}
    assert btyd.sbg_log_likelihood(params, [REGULAR]) == pytest.approx(-1680.3, abs=0.1)
    survival = btyd.sbg_survival(params, range(8))
    assert survival[0] == 1.0
    assert np.all(np.diff(survival) < 0)
    # The fitted curve passes close to the observed survival (within 2 points).
    assert np.allclose(survival, np.array(REGULAR) / 1000, atol=0.02)


def test_sbg_pools_cohorts_with_different_horizons():
    fit_one = btyd.fit_sbg([REGULAR])
    fit_split = btyd.fit_sbg([REGULAR, REGULAR[:4]])
    assert fit_split.n == 2000
    assert fit_split.params["gamma"] == pytest.approx(fit_one.params["gamma"], rel=0.1)


def test_degenerate_data_is_flagged_not_converged():
    assert not btyd.fit_bgnbd([0, 0, 0], [0, 0, 0], [5, 6, 7]).converged
    assert btyd.fit_bgnbd([], [], []).n == 0
    assert not btyd.fit_sbg([[10]]).converged
