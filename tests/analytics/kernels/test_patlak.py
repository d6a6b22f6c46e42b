"""Patlak kernels against independent float64 implementations and a compartment model."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from dask_guard import raise_if_dask_computes
from scipy.integrate import cumulative_simpson as scipy_cumulative_simpson
from scipy.integrate import solve_ivp

from petzarr.analytics.kernels.ki_map import patlak_ki_map
from petzarr.analytics.kernels.patlak import (
    cumulative_simpson,
    frames_from,
    ols_last_frames,
    patlak_fit,
    patlak_x,
    patlak_y,
)
from petzarr.cohort.errors import InvalidInputError

# hedyPET's dynamic framing: 2s x20, 5s x10, 10s x15, 60s x6, 120s x10, 300s x8 (69 frames).
DURATIONS = np.repeat([2.0, 5.0, 10.0, 60.0, 120.0, 300.0], [20, 10, 15, 6, 10, 8])
STARTS = np.concatenate([[0.0], np.cumsum(DURATIONS)[:-1]])
MIDS_S = STARTS + DURATIONS / 2
MIDS_MIN = MIDS_S / 60


def _random_times(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.cumsum(rng.uniform(0.01, 3.0, n))


# --- cumulative Simpson -------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 14))
def test_cumulative_simpson_is_scipys_on_uneven_spacing(n: int) -> None:
    rng = np.random.default_rng(n)
    t = _random_times(rng, n)
    y = rng.normal(size=(3, 4, n))
    expected = scipy_cumulative_simpson(y, x=t, initial=0)
    # Same formula and operation order as scipy: equal to the last bit, not just close.
    np.testing.assert_array_equal(cumulative_simpson(y, t), expected)


def test_cumulative_simpson_per_row_times() -> None:
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 10, (5, 9)), axis=-1)
    y = rng.normal(size=(5, 9))
    got = cumulative_simpson(y, t)
    for row in range(5):
        expected = scipy_cumulative_simpson(y[row], x=t[row], initial=0)
        np.testing.assert_allclose(got[row], expected, rtol=1e-14, atol=1e-14)


def test_cumulative_simpson_on_hedypet_framing_matches_scipy() -> None:
    cp = _feng_input(MIDS_MIN)
    expected = scipy_cumulative_simpson(cp, x=MIDS_MIN, initial=0)
    np.testing.assert_array_equal(cumulative_simpson(cp, MIDS_MIN), expected)


def test_cumulative_simpson_exact_for_quadratics() -> None:
    t = _random_times(np.random.default_rng(2), 11)
    y = 3 * t**2 - 2 * t + 1
    exact = (t**3 - t**2 + t) - (t[0] ** 3 - t[0] ** 2 + t[0])
    np.testing.assert_allclose(cumulative_simpson(y, t), exact, rtol=1e-12)


def test_cumulative_simpson_refuses_unsorted_times() -> None:
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        cumulative_simpson([1.0, 2.0, 3.0], [0.0, 2.0, 1.0])


# --- Patlak X and Y -------------------------------------------------------------------------


def test_patlak_x_is_hedypets_definition() -> None:
    rng = np.random.default_rng(3)
    t = _random_times(rng, 12)
    cp = rng.uniform(1, 5, (4, 12))
    expected = scipy_cumulative_simpson(cp, x=t, initial=0) / cp
    np.testing.assert_allclose(patlak_x(cp, t), expected, rtol=1e-15)


def test_patlak_x_from_injection_prepends_origin() -> None:
    rng = np.random.default_rng(4)
    t = _random_times(rng, 12)
    cp = rng.uniform(1, 5, 12)
    full = scipy_cumulative_simpson(np.r_[0.0, cp], x=np.r_[0.0, t], initial=0)[1:]
    np.testing.assert_allclose(patlak_x(cp, t, from_injection=True), full / cp, rtol=1e-15)


def test_patlak_xy_non_finite_where_input_is_zero_without_warnings() -> None:
    with np.errstate(all="raise"):
        x = patlak_x([0.0, 0.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])
        y = patlak_y([0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 2.0, 3.0])
    assert np.isnan(x[0]) and np.isnan(y[0]) and np.isinf(y[1])
    assert np.isfinite(x[2:]).all() and np.isfinite(y[2:]).all()


# --- batched least squares ------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5, 8, 20])
def test_ols_last_frames_matches_polyfit_per_case(n: int) -> None:
    rng = np.random.default_rng(n)
    # Late-frame Patlak abscissae are large with a small spread: the case where one-pass
    # sums lose digits.
    x = 60 + np.sort(rng.uniform(0, 5, (6, 1, 20)), axis=-1)
    y = rng.normal(size=(6, 7, 20)) + 0.03 * x
    slope, intercept = ols_last_frames(x, y, n)
    assert slope.shape == intercept.shape == (6, 7)
    for i, j in np.ndindex(6, 7):
        ref_slope, ref_intercept = np.polyfit(x[i, 0, -n:], y[i, j, -n:], 1)
        assert slope[i, j] == pytest.approx(ref_slope, rel=1e-9)
        assert intercept[i, j] == pytest.approx(ref_intercept, rel=1e-9)


def test_ols_last_frames_matches_lstsq() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(2, 50, 9))
    slope, intercept = ols_last_frames(x, y, 6)
    for i in range(50):
        design = np.c_[x[i, -6:], np.ones(6)]
        (ref_slope, ref_intercept), *_ = np.linalg.lstsq(design, y[i, -6:], rcond=None)
        assert slope[i] == pytest.approx(ref_slope, rel=1e-9, abs=1e-15)
        assert intercept[i] == pytest.approx(ref_intercept, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("n", [1, 0, 10, 2.5])
def test_ols_last_frames_refuses_impossible_windows(n: float) -> None:
    with pytest.raises(InvalidInputError, match="regression window"):
        ols_last_frames(np.arange(9.0), np.arange(9.0), n)  # type: ignore[arg-type]


# --- the whole Patlak fit -------------------------------------------------------------------


def _naive_patlak(ct: np.ndarray, cp: np.ndarray, t: np.ndarray, n: int) -> tuple[float, float]:
    """hedyPET's per-case recipe, written out with scipy and np.polyfit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x = scipy_cumulative_simpson(cp, x=t, initial=0) / cp
    slope, intercept = np.polyfit(x[-n:], ct[-n:] / cp[-n:], 1)
    return slope, intercept


def test_patlak_fit_every_region_input_and_window_matches_naive_loop() -> None:
    rng = np.random.default_rng(6)
    cp = _feng_input(MIDS_MIN)[None, :] * rng.uniform(0.8, 1.2, (5, 1))  # 5 input functions
    cp *= 1 + 0.02 * rng.normal(size=cp.shape)
    ct = rng.uniform(0.2, 3.0, (7, 1, 1)) * (1 - np.exp(-MIDS_MIN / 10))  # 7 regions
    ct = ct + 0.05 * rng.normal(size=(7, 1, 69))
    windows = [2, 3, 5, 8, 12]
    ki, intercept = patlak_fit(ct, cp, MIDS_MIN, n_frames=windows)
    assert ki.shape == intercept.shape == (7, 5, len(windows))
    for r, k, w in np.ndindex(ki.shape):
        ref_ki, ref_b = _naive_patlak(ct[r, 0], cp[k], MIDS_MIN, windows[w])
        assert ki[r, k, w] == pytest.approx(ref_ki, rel=1e-9)
        assert intercept[r, k, w] == pytest.approx(ref_b, rel=1e-9)


def test_patlak_fit_recovers_an_exact_patlak_tissue() -> None:
    t = MIDS_MIN
    cp = _feng_input(t) + 1e-3  # strictly positive so X is finite everywhere
    ct = 0.02 * cumulative_simpson(cp, t) + 0.3 * cp
    ki, intercept = patlak_fit(ct, cp, t, n_frames=range(2, 40))
    np.testing.assert_allclose(ki, 0.02, rtol=1e-9)
    np.testing.assert_allclose(intercept, 0.3, rtol=1e-9)


def test_ki_map_on_dask_is_lazy_and_equals_the_naive_loop() -> None:
    rng = np.random.default_rng(7)
    t = MIDS_MIN
    cp = _feng_input(t) + 1e-3
    ki = rng.uniform(0.005, 0.05, (5, 4, 3))
    vb = rng.uniform(0.1, 0.5, (5, 4, 3))
    frames = lambda curve: curve[:, None, None, None]  # noqa: E731
    pet = ki[None] * frames(cumulative_simpson(cp, t)) + vb[None] * frames(cp)
    pet = (pet * (1 + 0.01 * rng.normal(size=pet.shape))).astype(np.float32)
    with raise_if_dask_computes():
        lazy = patlak_ki_map(da.from_array(pet, chunks=(10, 2, 4, 3)), cp, t, n_frames=8)
    assert isinstance(lazy, da.Array)
    assert lazy.shape == (5, 4, 3) and lazy.dtype == np.float32
    got = lazy.compute()
    np.testing.assert_array_equal(got, patlak_ki_map(pet, cp, t, n_frames=8))
    for z, y, x in np.ndindex(got.shape):
        ref, _ = _naive_patlak(pet[:, z, y, x].astype(np.float64), cp, t, 8)
        assert got[z, y, x] == pytest.approx(ref, rel=1e-5), (z, y, x)


def test_patlak_fit_refuses_empty_windows() -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        patlak_fit(MIDS_MIN, MIDS_MIN, MIDS_MIN, n_frames=[])


def test_frames_from_counts_trailing_frames() -> None:
    assert int(frames_from(MIDS_MIN, 20.0)) == 13  # 21, 23, 25, 27, 29, 32.5, ..., 67.5 min
    np.testing.assert_array_equal(frames_from(np.stack([MIDS_MIN, MIDS_MIN]), 60.0), [2, 2])


# --- synthetic two-tissue irreversible compartment model ------------------------------------


def _feng_input(t: np.ndarray, delay: float = 0.5) -> np.ndarray:
    """Feng et al. (1993) FDG plasma input function, t in minutes, kBq/mL-ish units."""
    a1, a2, a3 = 851.1225, 21.8798, 20.8113
    l1, l2, l3 = -4.133859, -0.01043449, -0.1190996
    s = np.clip(np.asarray(t, dtype=np.float64) - delay, 0.0, None)
    cp = (a1 * s - a2 - a3) * np.exp(l1 * s) + a2 * np.exp(l2 * s) + a3 * np.exp(l3 * s)
    return np.where(s > 0, cp, 0.0)


def _two_tissue_irreversible(k1: float, k2: float, k3: float, t: np.ndarray) -> np.ndarray:
    """Total tissue concentration C1 + C2 at ``t`` (minutes), solved as ODEs."""

    def rhs(time: float, c: np.ndarray) -> list[float]:
        free = k1 * _feng_input(np.array(time)) - (k2 + k3) * c[0]
        return [float(free), k3 * c[0]]

    sol = solve_ivp(rhs, (0.0, t[-1]), [0.0, 0.0], t_eval=t, rtol=1e-10, atol=1e-10, max_step=0.01)
    return sol.y.sum(axis=0)


@pytest.mark.parametrize(
    ("k1", "k2", "k3", "rtol"),
    [
        (0.1, 0.15, 0.08, 0.01),  # FDG grey matter
        (0.6, 1.2, 0.1, 0.01),  # fast exchange, liver-like
        # Slow exchange (k2 + k3 = 0.12/min): the free compartment has not quite reached
        # steady state by the early window frames, so Patlak's small bias shows (~3%).
        (0.05, 0.1, 0.02, 0.04),
    ],
)
def test_patlak_recovers_ki_of_two_tissue_irreversible_model(k1, k2, k3, rtol) -> None:
    ki_true = k1 * k3 / (k2 + k3)
    ct = _two_tissue_irreversible(k1, k2, k3, MIDS_MIN)
    cp = _feng_input(MIDS_MIN)
    ki, _ = patlak_fit(ct, cp, MIDS_MIN, n_frames=[4, 6, 8])
    np.testing.assert_allclose(ki, ki_true, rtol=rtol)
    # Integrating from injection changes nothing material: the input is 0 until the bolus.
    ki_inj, _ = patlak_fit(ct, cp, MIDS_MIN, n_frames=[8], from_injection=True)
    np.testing.assert_allclose(ki_inj, ki_true, rtol=rtol)
    # t* = 20 min: every frame from 20 min on (13 frames).
    ki_star, _ = patlak_fit(ct, cp, MIDS_MIN, n_frames=[int(frames_from(MIDS_MIN, 20.0))])
    np.testing.assert_allclose(ki_star, ki_true, rtol=rtol)
