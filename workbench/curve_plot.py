"""A pyqtgraph plot whose curves are keyed by name, created once and then only given new data."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QVBoxLayout, QWidget

from workbench.plot_style import curve_pen, new_plot

# Maps a series name to (legend label, pen).
CurveStyle = Callable[[str], tuple[str, QPen]]


def default_style(name: str, index: int) -> tuple[str, QPen]:
    return name, curve_pen(index)


class CurvePlot(QWidget):
    """Named curves against the optimiser step. Owned by the GUI thread.

    ``append`` only buffers points; ``refresh`` hands each changed buffer to its curve with one
    ``setData`` call, so a burst of events costs one redraw. Curves are created on first use and
    kept until ``clear``.
    """

    def __init__(self, title: str, y_label: str, style: CurveStyle | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot_widget = new_plot(title, "step", y_label)
        self.plot_item = self.plot_widget.getPlotItem()
        self._style = style
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._steps: dict[str, list[float]] = {}
        self._values: dict[str, list[float]] = {}
        self._dirty: set[str] = set()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)

    def _curve(self, name: str, pen: QPen | None = None) -> pg.PlotDataItem:
        curve = self._curves.get(name)
        if curve is None:
            if pen is not None:
                label = name
            elif self._style is not None:
                label, pen = self._style(name)
            else:
                label, pen = default_style(name, len(self._curves))
            curve = self.plot_item.plot([], [], name=label, pen=pen)
            self._curves[name] = curve
            self._steps[name] = []
            self._values[name] = []
        return curve

    def append(self, name: str, step: float, value: float) -> None:
        self._curve(name)
        self._steps[name].append(float(step))
        self._values[name].append(float(value))
        self._dirty.add(name)

    def set_series(self, name: str, steps: np.ndarray | list[float], values: np.ndarray | list[float], pen: QPen | None = None) -> None:
        """Replace a whole series (for stored runs and constant lines); ``pen`` overrides the style of a new curve."""
        self._curve(name, pen)
        self._steps[name] = [float(s) for s in steps]
        self._values[name] = [float(v) for v in values]
        self._dirty.add(name)

    def refresh(self) -> None:
        for name in self._dirty:
            self._curves[name].setData(np.asarray(self._steps[name]), np.asarray(self._values[name]))
        self._dirty.clear()

    def clear(self) -> None:
        """Remove every curve and its legend entry (before a new run or a new selection)."""
        legend = self.plot_item.legend
        for curve in self._curves.values():
            self.plot_item.removeItem(curve)
            if legend is not None:
                legend.removeItem(curve)
        self._curves.clear()
        self._steps.clear()
        self._values.clear()
        self._dirty.clear()

    def series_names(self) -> list[str]:
        return list(self._curves)

    def points(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the (steps, values) the curve currently draws."""
        curve = self._curves.get(name)
        if curve is None:
            return np.array([]), np.array([])
        x, y = curve.getData()
        if x is None:
            return np.array([]), np.array([])
        return np.asarray(x), np.asarray(y)
