"""Patlak kernels on plain float arrays: no tables, no labels, no Dask.

Every kernel works along the last axis (frames) and broadcasts over all leading axes, so one
call covers every region x input function x subject at once. Time is in whatever unit the
caller passes; the table layer passes minutes so Ki comes out per minute, as hedyPET's does.

The default Patlak definition is hedyPET's (``nifti_dynamic.patlak.roi_patlak``): X is the
cumulative Simpson integral of the input function (scipy's ``cumulative_simpson`` with
``initial=0``, i.e. from the first frame middle) divided by the input function, Y is the
tissue curve divided by the input function, and Ki is the unweighted least-squares slope of
Y on X over the last n frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from petzarr.cohort.errors import InvalidInputError

__all__ = [
    "DEFAULT_REGRESSION_FRAMES",
    "cumulative_simpson",
    "frames_from",
    "ols_last_frames",
    "patlak_fit",
    "patlak_x",
    "patlak_y",
]

#: hedyPET's published numbers of regression frames.
DEFAULT_REGRESSION_FRAMES: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)

Float = NDArray[np.float64]


def cumulative_simpson(y: ArrayLike, t: ArrayLike) -> Float:
    """Cumulative integral of ``y(t)`` along the last axis, Simpson's rule on uneven spacing.

    Reproduces ``scipy.integrate.cumulative_simpson(y, x=t, initial=0)`` (scipy >= 1.12), the
    integral hedyPET used: every interval is integrated under the parabola through three
    neighbouring samples (Cartwright's formula for irregular spacing). Intervals 0, 2, 4, ...
    use the parabola through their own two samples and the next one; intervals 1, 3, 5, ...
    and the last interval use the parabola through the previous sample and their own two.
    With fewer than three samples it falls back to the trapezoid rule, as scipy does.

    Parameters
    ----------
    y : array_like, shape (..., n)
        Samples; any leading shape.
    t : array_like, shape (n,) or broadcastable to ``y``
        Strictly increasing sample positions.

    Returns
    -------
    ndarray, shape (..., n)
        ``out[..., k]`` is the integral from ``t[0]`` to ``t[k]``; ``out[..., 0] == 0``.

    Examples
    --------
    >>> t = np.array([0.0, 1.0, 3.0, 4.0, 6.0])
    >>> cumulative_simpson(t**2, t) * 3  # exact for a parabola, even on uneven spacing
    array([  0.,   1.,  27.,  64., 216.])
    """
    y = np.asarray(y, dtype=np.float64)
    t = np.broadcast_to(np.asarray(t, dtype=np.float64), y.shape)
    h = np.diff(t, axis=-1)
    if np.any(h <= 0):
        raise InvalidInputError("time points must be strictly increasing along the last axis")
    out = np.zeros(y.shape)
    if y.shape[-1] < 3:
        np.cumsum(h * (y[..., 1:] + y[..., :-1]) / 2, axis=-1, out=out[..., 1:])
        return out
    forward = _interval_under_parabola(y, h)
    backward = _interval_under_parabola(y[..., ::-1], h[..., ::-1])[..., ::-1]
    # forward[..., k] is interval k from samples k, k+1, k+2; backward[..., k] is interval
    # k + 1 from the same three samples. scipy takes even intervals from the first and odd
    # ones (and always the last) from the second; the pairing decides the result to the
    # last bit on uneven frames, so follow it exactly.
    pieces = np.empty(h.shape)
    pieces[..., :-1:2] = forward[..., ::2]
    pieces[..., 1::2] = backward[..., ::2]
    pieces[..., -1] = backward[..., -1]
    np.cumsum(pieces, axis=-1, out=out[..., 1:])
    return out


def _interval_under_parabola(y: Float, h: Float) -> Float:
    """Integral over [t_k, t_k+1] of the parabola through samples k, k+1, k+2.

    Cartwright (2017), eq. 8, written with the same operation order as scipy so the two agree
    to the last bit rather than to rounding.
    """
    h1, h2 = h[..., :-1], h[..., 1:]
    f1, f2, f3 = y[..., :-2], y[..., 1:-1], y[..., 2:]
    r31 = h1 / (h1 + h2)
    r32 = h1 / h2
    r = r31 * r32
    return h1 / 6 * ((3 - r31) * f1 + (3 + r + r31) * f2 + (-r) * f3)


def patlak_x(plasma: ArrayLike, t: ArrayLike, *, from_injection: bool = False) -> Float:
    """Patlak abscissa: running integral of the input function over the input function.

    Parameters
    ----------
    plasma : array_like, shape (..., n)
        Input function sampled at the frame middles.
    t : array_like, shape (n,) or broadcastable to ``plasma``
        Frame middle times; X comes out in the same unit.
    from_injection : bool, default False
        False (hedyPET): integrate from the first frame middle, so X is 0 there.
        True: integrate from injection, assuming the input function is 0 at ``t = 0``
        (the point (0, 0) is prepended before the Simpson integral, which also shifts
        which intervals Simpson pairs up).

    Returns
    -------
    ndarray, shape of ``plasma``
        Non-finite where the input function is 0 (early frames before the bolus arrives);
        those frames should not be in the regression window.

    Examples
    --------
    An input function rising linearly from injection, ``cp = t``: from injection X is
    ``(t**2 / 2) / t = t / 2``; from the first frame middle the part before it is missing.

    >>> t = np.array([1.0, 2.0, 4.0, 5.0, 8.0])
    >>> patlak_x(t, t, from_injection=True)
    array([0.5, 1. , 2. , 2.5, 4. ])
    >>> patlak_x(t, t)
    array([0.    , 0.75  , 1.875 , 2.4   , 3.9375])
    """
    plasma = np.asarray(plasma, dtype=np.float64)
    if from_injection:
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), plasma.shape)
        pad = [(0, 0)] * (plasma.ndim - 1) + [(1, 0)]
        integral = cumulative_simpson(np.pad(plasma, pad), np.pad(t, pad))[..., 1:]
    else:
        integral = cumulative_simpson(plasma, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        return integral / plasma


def patlak_y(tissue: ArrayLike, plasma: ArrayLike) -> Float:
    """Patlak ordinate: tissue over input function (broadcast).

    Examples
    --------
    >>> patlak_y([2.0, 3.0], [4.0, 0.0])
    array([0.5, inf])
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(tissue, dtype=np.float64) / np.asarray(plasma, dtype=np.float64)


def ols_last_frames(x: ArrayLike, y: ArrayLike, n_frames: int) -> tuple[Float, Float]:
    """Unweighted least-squares line of ``y`` on ``x`` over the last ``n_frames`` samples.

    Batched over every leading axis (``x`` and ``y`` broadcast). Centred two-pass sums, so
    no precision is lost to cancellation when X is large and its spread small (late frames).

    Parameters
    ----------
    x, y : array_like, shape (..., n)
    n_frames : int
        Number of trailing samples in the fit, 2 <= n_frames <= n.

    Returns
    -------
    slope, intercept : ndarray, shape (...)
        NaN where the window holds a non-finite value or ``x`` is constant.

    Examples
    --------
    >>> x = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 4.0]])
    >>> slope, intercept = ols_last_frames(x, 2 * x + 1, 3)
    >>> slope, intercept
    (array([2., 2.]), array([1., 1.]))
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = _check_window(n_frames, min(x.shape[-1], y.shape[-1]))
    xw, yw = x[..., -n:], y[..., -n:]
    x_mean = xw.mean(axis=-1, keepdims=True)
    y_mean = yw.mean(axis=-1, keepdims=True)
    dx = xw - x_mean
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (dx * (yw - y_mean)).sum(axis=-1) / (dx * dx).sum(axis=-1)
    intercept = y_mean[..., 0] - slope * x_mean[..., 0]
    return slope, intercept


def frames_from(t: ArrayLike, t_star: float) -> NDArray[np.intp]:
    """How many trailing frames have a middle time at or after ``t_star`` (along the last axis).

    Frames are in time order, so "mid time >= t*" is always a trailing window and Patlak with
    a t* is Patlak over the last ``frames_from(t, t_star)`` frames.

    Examples
    --------
    >>> int(frames_from([1.0, 5.0, 20.0, 40.0, 60.0], 20.0))
    3
    """
    return np.count_nonzero(np.asarray(t, dtype=np.float64) >= t_star, axis=-1)


def patlak_fit(
    tissue: ArrayLike,
    plasma: ArrayLike,
    t: ArrayLike,
    *,
    n_frames: Sequence[int] = DEFAULT_REGRESSION_FRAMES,
    from_injection: bool = False,
) -> tuple[Float, Float]:
    """Patlak Ki and intercept for every tissue x input function x window, in one pass.

    Parameters
    ----------
    tissue : array_like, shape (..., n)
        Tissue time-activity curves at the frame middles.
    plasma : array_like, shape (..., n)
        Input functions, broadcastable against ``tissue`` (e.g. tissue ``(R, 1, n)`` and
        plasma ``(K, n)`` give every region with every input function).
    t : array_like, shape (n,)
        Frame middle times (minutes for Ki in 1/min).
    n_frames : sequence of int, default (2, ..., 8)
        Regression windows: each fits the last that many frames.
    from_injection : bool, default False
        Integrate the input function from ``t = 0`` instead of the first frame middle.

    Returns
    -------
    ki, intercept : ndarray, shape (..., len(n_frames))
        Broadcast batch shape of ``tissue`` and ``plasma``, then one entry per window.

    Examples
    --------
    Tissue that is exactly ``0.03 * integral + 0.2 * plasma`` has Ki 0.03, intercept 0.2:

    >>> t = np.array([1.0, 3.0, 5.0, 10.0, 20.0, 40.0, 60.0])
    >>> cp = 100.0 * np.exp(-t / 30) + 5.0
    >>> ct = 0.03 * cumulative_simpson(cp, t) + 0.2 * cp
    >>> ki, b = patlak_fit(ct, cp, t, n_frames=[3, 5])
    >>> np.round(ki, 12), np.round(b, 12)
    (array([0.03, 0.03]), array([0.2, 0.2]))
    """
    windows = [_check_window(n, np.shape(plasma)[-1]) for n in n_frames]
    if not windows:
        raise InvalidInputError("n_frames is empty: give at least one regression window")
    x = patlak_x(plasma, t, from_injection=from_injection)
    # Only the widest window is ever regressed on, so divide the (large) broadcast tissue
    # array there and nowhere else.
    w = max(windows)
    y = patlak_y(np.asarray(tissue)[..., -w:], np.asarray(plasma)[..., -w:])
    x = x[..., -w:]
    fits = [ols_last_frames(x, y, n) for n in windows]
    ki = np.stack([f[0] for f in fits], axis=-1)
    intercept = np.stack([f[1] for f in fits], axis=-1)
    return ki, intercept


def _check_window(n_frames: int, n_available: int) -> int:
    n = int(n_frames)
    if n != n_frames or not 2 <= n <= n_available:
        raise InvalidInputError(
            f"a regression window needs 2 to {n_available} frames (the frames available), "
            f"got {n_frames!r}"
        )
    return n
