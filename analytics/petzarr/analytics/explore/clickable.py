"""A matplotlib figure in the browser that says where it was clicked (a Panel JSComponent)."""

from __future__ import annotations

import base64
import io

import param
from matplotlib.figure import Figure
from panel.custom import JSComponent


class ClickableFigure(JSComponent):
    """A matplotlib figure shown as a PNG that reports where it was clicked.

    ``click`` is set by the browser to ``[x, y, n]``: fractions of the image's width and
    height from its top left, and a count of clicks; :meth:`data_at` turns the fractions
    into the data coordinates of the figure's first axes.
    """

    src = param.String(default="", doc="the figure, as a data: URI")
    click = param.List(default=[], doc="where the image was last clicked, and a count")

    _esm = """
    export function render({ model }) {
      const img = document.createElement('img');
      img.src = model.src;
      img.style.cursor = 'crosshair';
      img.onclick = (e) => {
        const r = img.getBoundingClientRect();
        // a count last, so that a second click on the same spot is a change too
        model.click = [(e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height,
                       (model.click[2] || 0) + 1];
      };
      model.on('src', () => { img.src = model.src; });
      return img;
    }
    """

    def draw(self, fig: Figure) -> None:
        """Show ``fig`` (drawn at its own dpi)."""
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=fig.dpi)  # pixels = display units: maps back
        self._figure = fig
        self.src = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()

    def data_at(self, fx: float, fy: float) -> tuple[float, float] | None:
        """The data coordinates under image fractions ``(fx, fy)``; None outside the axes."""
        fig = getattr(self, "_figure", None)
        if fig is None or not fig.axes:
            return None
        ax = fig.axes[0]
        point = (fx * fig.bbox.width, (1 - fy) * fig.bbox.height)
        if not ax.bbox.contains(*point):
            return None
        x, y = ax.transData.inverted().transform(point)
        return float(x), float(y)
