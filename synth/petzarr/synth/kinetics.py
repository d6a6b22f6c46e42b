"""FDG kinetics of the synthetic dynamic cohorts: input function, compartments, frames.

Everything is a sum of terms ``(p + q u) exp(mu u)`` in ``u = t - t0 >= 0`` (zero before
``t0``): Feng's plasma curve is one, and convolving one with ``exp(-beta t)`` gives another,
so tissue curves and their frame averages are exact closed forms, not quadrature.

The plasma input ``Cp`` is Feng's model (Feng, Huang & Wang 1993)::

    Cp(t) = (A1 u - A2 - A3) exp(-l1 u) + A2 exp(-l2 u) + A3 exp(-l3 u),   u = t - tau >= 0

with parameters fitted to hedyPET's image-derived input functions (:data:`FENG_HEDYPET`).
A tissue follows the irreversible two-tissue compartment model (k4 = 0)::

    C_T = K1 / (k2 + k3) * (k3 + k2 exp(-(k2 + k3) t))  (*)  Cp,     Ki = K1 k3 / (k2 + k3)

and a voxel of it holds ``(1 - vB) C_T + vB Cp``. Rates are per minute, as kinetic
modelling quotes them (``Ki`` in mL/cm3/min); times are seconds, as BIDS frame tables are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from petzarr.cohort.constants import HEDYPET_FRAME_DURATIONS_S

__all__ = [
    "FENG_HEDYPET",
    "HEDYPET_FRAMING",
    "STATIC_WINDOW",
    "TISSUE_KINETICS",
    "ExpSum",
    "FengInput",
    "Framing",
    "Kinetics",
]


@dataclass(frozen=True)
class ExpSum:
    """``f(t) = sum_i (p_i + q_i u) exp(mu_i u)`` for ``u = t - t0 >= 0``, 0 before.

    ``terms`` are ``(p, q, mu)`` with ``mu`` per second.

    >>> f = ExpSum(((1.0, 0.0, 0.0),), t0=10.0)   # a step at t = 10 s
    >>> f([5.0, 20.0]).tolist(), float(f.integral(0.0, 30.0))
    ([0.0, 1.0], 20.0)
    """

    terms: tuple[tuple[float, float, float], ...]
    t0: float = 0.0

    def __call__(self, t: ArrayLike) -> NDArray[np.float64]:
        u = np.asarray(t, dtype=np.float64) - self.t0
        after = u >= 0
        u = np.where(after, u, 0.0)
        out = np.zeros_like(u)
        for p, q, mu in self.terms:
            out += (p + q * u) * np.exp(mu * u)
        return np.where(after, out, 0.0)

    def _antiderivative(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.zeros_like(u)
        for p, q, mu in self.terms:
            if mu == 0.0:
                out += p * u + q * u * u / 2
            else:
                e = np.exp(mu * u)
                out += e * (p / mu + q * (u / mu - 1 / mu**2)) - (p / mu - q / mu**2)
        return out

    def integral(self, a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
        """``∫_a^b f(t) dt`` (elementwise over ``a``, ``b``)."""
        ua = np.maximum(np.asarray(a, dtype=np.float64) - self.t0, 0.0)
        ub = np.maximum(np.asarray(b, dtype=np.float64) - self.t0, 0.0)
        return self._antiderivative(ub) - self._antiderivative(ua)

    def mean(self, start: ArrayLike, duration: ArrayLike) -> NDArray[np.float64]:
        """Average over ``[start, start + duration]``: a frame's value."""
        start = np.asarray(start, dtype=np.float64)
        duration = np.asarray(duration, dtype=np.float64)
        return self.integral(start, start + duration) / duration

    def convolve_exp(self, beta: float) -> ExpSum:
        """``f (*) exp(-beta t)``, i.e. ``∫_t0^t f(s) exp(-beta (t - s)) ds``."""
        out: list[tuple[float, float, float]] = []
        for p, q, mu in self.terms:
            b = beta
            if abs(mu + b) < 1e-9:  # resonance (the closed form needs u^2): nudge, ~1e-6 off
                b = 1e-9 - mu
            c = mu + b
            # e^{-b u} ∫_0^u (p + q v) e^{c v} dv
            out.append((p / c - q / c**2, q / c, mu))
            out.append((-p / c + q / c**2, 0.0, -b))
        return ExpSum(tuple(out), self.t0)

    def __add__(self, other: ExpSum) -> ExpSum:
        if other.t0 != self.t0:
            raise ValueError("ExpSums with different start times do not add")
        return ExpSum(self.terms + other.terms, self.t0)

    def scaled(self, factor: float) -> ExpSum:
        return ExpSum(tuple((p * factor, q * factor, mu) for p, q, mu in self.terms), self.t0)


@dataclass(frozen=True)
class FengInput:
    """Feng's FDG plasma curve in SUV units: amplitudes ``a1`` [1/s], ``a2``, ``a3``;
    rates ``l1 > l2 > l3 > 0`` [1/s]; delay ``tau`` [s] from injection to arrival."""

    a1: float
    a2: float
    a3: float
    l1: float
    l2: float
    l3: float
    tau: float

    def curve(self, scale: float = 1.0) -> ExpSum:
        """The curve times ``scale`` (the SUV denominator gives Bq/mL)."""
        s = scale
        terms = (
            (-(self.a2 + self.a3) * s, self.a1 * s, -self.l1),
            (self.a2 * s, 0.0, -self.l2),
            (self.a3 * s, 0.0, -self.l3),
        )
        return ExpSum(terms, self.tau)


#: Feng's model fitted (least squares on frame averages, weights 1/sqrt(SUV)) to each of
#: hedyPET's 80 descending-aorta input functions (``aortavois_ml-1_width-3``, lower segment,
#: in SUV); the medians of the per-subject parameters. Peak ~85 SUV at 20 s, ~8.6 SUV at
#: 60 s, ~1.9 SUV at 60 min; 50-70 min mean 1.92 SUV (hedyPET's aorta: 1.96).
FENG_HEDYPET: Final = FengInput(
    a1=88.0, a2=4.75, a3=4.50, l1=0.405, l2=0.00308, l3=0.000239, tau=16.9
)


@dataclass(frozen=True)
class Framing:
    """Frame start times and durations [s] from the start of the acquisition."""

    start: tuple[float, ...]
    duration: tuple[float, ...]

    @classmethod
    def from_durations(cls, counts: Mapping[float, int]) -> Framing:
        """Back-to-back frames: ``{duration: how many}`` in acquisition order."""
        durations = [float(d) for d, n in counts.items() for _ in range(n)]
        starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
        return cls(tuple(float(s) for s in starts), tuple(durations))

    def __len__(self) -> int:
        return len(self.start)

    @property
    def middle(self) -> NDArray[np.float64]:
        return np.asarray(self.start) + np.asarray(self.duration) / 2

    @property
    def end(self) -> float:
        return self.start[-1] + self.duration[-1]


#: hedyPET's dynamic framing (69 frames, 70 min); the listmode starts at injection.
HEDYPET_FRAMING: Final = Framing.from_durations(HEDYPET_FRAME_DURATIONS_S)
#: hedyPET's static reconstruction (acstatPSF): the listmode from 50 to 70 min.
STATIC_WINDOW: Final = Framing((3000.0,), (1200.0,))


@dataclass(frozen=True)
class Kinetics:
    """Irreversible two-tissue compartment rates [1/min] and blood volume fraction.

    >>> k = Kinetics(0.1, 0.13, 0.065, 0.05)
    >>> round(k.ki, 6)
    0.033333
    """

    k1: float
    k2: float
    k3: float
    vb: float

    @property
    def ki(self) -> float:
        """Net influx rate ``K1 k3 / (k2 + k3)`` [mL/cm3/min]."""
        return self.k1 * self.k3 / (self.k2 + self.k3) if self.k1 else 0.0

    def tissue(self, cp: ExpSum) -> ExpSum:
        """``C_T`` for plasma curve ``cp``."""
        if self.k1 == 0.0:
            return cp.scaled(0.0)
        kappa = self.k2 + self.k3
        # impulse response K1/kappa (k3 + k2 e^{-kappa t}), per second
        irreversible = cp.convolve_exp(0.0).scaled(self.k1 * self.k3 / kappa / 60.0)
        exchange = cp.convolve_exp(kappa / 60.0).scaled(self.k1 * self.k2 / kappa / 60.0)
        return irreversible + exchange

    def voxel(self, cp: ExpSum) -> ExpSum:
        """What a voxel of the tissue holds: ``(1 - vB) C_T + vB Cp``."""
        return self.tissue(cp).scaled(1.0 - self.vb) + cp.scaled(self.vb)

    def jittered(self, rng: np.random.Generator, sd: float) -> Kinetics:
        """The rates times independent log-normal factors (``sd`` of the log)."""
        f = np.exp(rng.normal(0.0, sd, 3))
        return Kinetics(
            round(self.k1 * float(f[0]), 6),
            round(self.k2 * float(f[1]), 6),
            round(self.k3 * float(f[2]), 6),
            self.vb,
        )


#: Typical kinetics of every phantom tissue (``petzarr.synth.tissues.TISSUES``),
#: chosen so that, with :data:`FENG_HEDYPET`, the Patlak slope of a voxel, ``(1 - vB) Ki``,
#: is hedyPET's median Patlak slope and the 50-70 min mean its median static SUV for the
#: TotalSegmentator classes the tissue stands for (``k2 + k3`` and ``vB`` are typical
#: values). ``blood`` is the plasma curve itself (vB = 1); ``air`` and the ``table`` hold
#: nothing.
TISSUE_KINETICS: Final[dict[str, Kinetics]] = {
    "air": Kinetics(0.0, 0.0, 0.0, 0.0),
    "table": Kinetics(0.0, 0.0, 0.0, 0.0),
    "blood": Kinetics(0.0, 0.0, 0.0, 1.0),
    "fat": Kinetics(0.04076, 0.2966, 0.00338, 0.02),  # slope 0.00045, SUV 0.4
    "visceral_fat": Kinetics(0.04373, 0.2929, 0.007072, 0.03),  # slope 0.001, SUV 0.55
    "muscle": Kinetics(0.05959, 0.3889, 0.01107, 0.03),  # slope 0.0016, SUV 0.68
    "soft": Kinetics(0.1022, 0.4897, 0.0103, 0.05),  # slope 0.002, SUV 0.9
    "bowel": Kinetics(0.1116, 0.4566, 0.0434, 0.05),  # slope 0.0092, SUV 2.45
    "lung": Kinetics(0.05861, 0.7855, 0.01445, 0.15),  # slope 0.0009, SUV 0.6
    "airway": Kinetics(0.01493, 0.4967, 0.003349, 0.0),  # slope 0.0001, SUV 0.08
    "bone": Kinetics(0.04054, 0.3849, 0.0151, 0.02),  # slope 0.0015, SUV 0.55
    "spine": Kinetics(0.08991, 0.3803, 0.01967, 0.05),  # slope 0.0042, SUV 1.4
    "brain": Kinetics(0.1528, 0.1642, 0.03582, 0.05),  # slope 0.026, SUV 6.9
    "liver": Kinetics(1.004, 1.196, 0.004332, 0.2),  # slope 0.0029, SUV 2.3
    "spleen": Kinetics(0.4001, 0.9886, 0.01143, 0.3),  # slope 0.0032, SUV 1.8
    "kidney": Kinetics(0.7617, 0.792, 0.007952, 0.3),  # slope 0.0053, SUV 3
    "bladder": Kinetics(0.464, 0.08922, 0.01078, 0.0),  # slope 0.05, SUV 20
    "myocardium": Kinetics(0.3799, 0.586, 0.01404, 0.1),  # slope 0.008, SUV 3
    "stomach": Kinetics(0.2219, 0.5907, 0.009315, 0.1),  # slope 0.0031, SUV 1.5
    "pancreas": Kinetics(0.3136, 0.7906, 0.009354, 0.1),  # slope 0.0033, SUV 1.58
    "gallbladder": Kinetics(0.08258, 0.479, 0.02103, 0.05),  # slope 0.0033, SUV 1.1
    "adrenal": Kinetics(0.3462, 0.7897, 0.01027, 0.1),  # slope 0.004, SUV 1.8
    "thyroid": Kinetics(0.2558, 0.7924, 0.007644, 0.1),  # slope 0.0022, SUV 1.22
}
