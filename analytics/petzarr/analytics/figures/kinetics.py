"""Dynamic PET on matplotlib axes, from petzarr's tables: a region's TAC with its input
function, and its Patlak plot with the fitted line (the explorer's subject view).

Both take the long tables ``petzarr tacs`` / ``petzarr input-functions`` write (``Frame
Time Middle [s]``, ``PET Mean [Bq/mL]``) and one row of ``petzarr patlak``'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from petzarr.analytics.kernels.patlak import patlak_x, patlak_y

__all__ = ["curve", "input_functions_axes", "patlak_axes", "tac_axes"]

T, ACTIVITY = "Frame Time Middle [s]", "PET Mean [Bq/mL]"


def curve(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One curve's frame mid-times [min] and activity [Bq/mL], in time order."""
    rows = table.sort_values(T)
    return rows[T].to_numpy(np.float64) / 60, rows[ACTIVITY].to_numpy(np.float64)


def tac_axes(ax: Any, tissue: pd.DataFrame, blood: pd.DataFrame, *, organ: str,
             blood_name: str, title: str) -> None:  # fmt: skip
    """The organ's TAC and the input function, in kBq/mL against minutes after injection."""
    for rows, style, label in ((blood, "k-", f"input function: {blood_name}"),
                               (tissue, ".-", organ)):  # fmt: skip
        t, a = curve(rows)
        ax.plot(t, a / 1e3, style, ms=3, lw=1.2, label=label)
    ax.set(xlabel="time after injection [min]", ylabel="activity [kBq/mL]", title=title)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)


def patlak_axes(ax: Any, tissue: pd.DataFrame, blood: pd.DataFrame, fit: pd.Series, *,
                organ: str, title: str) -> None:  # fmt: skip
    """Patlak plot: ``C_tissue/Cp`` against ``∫Cp dt/Cp`` after 10 min, the fit's frames
    filled, and the line ``Intercept + Ki x`` of the ``petzarr patlak`` row ``fit``."""
    t, cp = curve(blood)
    t_tissue, ct = curve(tissue)
    if len(t_tissue) != len(t) or not np.allclose(t_tissue, t):
        raise ValueError(f"{organ}: its TAC and the input function have different frames")
    x, y = patlak_x(cp, t), patlak_y(ct, cp)
    after = t > 10
    n = int(fit["Regression Frames"])
    fitted = np.arange(len(t)) >= len(t) - n
    dots = ax.plot(x[after & ~fitted], y[after & ~fitted], "o", mfc="none", ms=4)[0]
    ax.plot(x[fitted], y[fitted], "o", color=dots.get_color(), ms=5,
            label=f"the {n} frames fitted")  # fmt: skip
    xs = np.array([0.0, float(np.nanmax(x[after])) if after.any() else float(np.nanmax(x))])
    ax.plot(xs, fit["Patlak Intercept"] + fit["Patlak Ki"] * xs, "-", color=dots.get_color(),
            label=f"Ki = {fit['Patlak Ki']:.4f} mL/cm³/min")  # fmt: skip
    ax.set(xlabel="∫Cp dt / Cp [min]", ylabel="C_tissue / Cp [1]", title=title)
    ax.set_xlim(left=0)
    ax.legend(fontsize=8)


def input_functions_axes(ax: Any, blood: pd.DataFrame, flagged: set[str], *, title: str) -> None:
    """Every subject's input function (``Subject`` column), the ``flagged`` ones in red."""
    for subject, rows in blood.groupby("Subject"):
        t, a = curve(rows)
        red = subject in flagged
        ax.plot(t, a / 1e3, "-", lw=1.4 if red else 0.8, color="tab:red" if red else "0.4")
    ax.set(xlabel="time after injection [min]", ylabel="activity [kBq/mL]", title=title)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
