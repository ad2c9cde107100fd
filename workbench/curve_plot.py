"""A pyqtgraph plot whose curves are keyed by name, created once and then only given new data."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from scipy.signal import lfilter
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workbench.plot_style import curve_pen, new_plot

# The y range follows the curves: it moves when they leave it, come closer to its top or bottom
# than Y_EDGE_FRACTION of it (a curve on the frame is hidden by it), or fill less than
# Y_FILL_FRACTION of it. It then spans them with Y_MARGIN_FRACTION of their span above and below.
Y_FILL_FRACTION = 0.5
Y_EDGE_FRACTION = 0.02
Y_MARGIN_FRACTION = 0.1
# The margin of curves that are flat at 0; one teacher's weight, flat at 1.0, gets 0.9 to 1.1.
FLAT_CURVE_MARGIN = 0.05

# Maps a series name to (legend label, pen).
CurveStyle = Callable[[str], tuple[str, QPen]]


def default_style(name: str, index: int) -> tuple[str, QPen]:
    return name, curve_pen(index)


def exponential_moving_average(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Debiased EMA (as TensorBoard draws it): weight ``smoothing`` on the past, 0 leaves values as they are."""
    if smoothing <= 0 or len(values) == 0:
        return values
    # The recursion a_i = s·a_{i-1} + (1 - s)·v_i as a linear filter runs in C; the live view
    # smooths every curve at each refresh, while a run is using the GIL.
    average = lfilter([1.0 - smoothing], [1.0, -smoothing], np.asarray(values, dtype=np.float64))
    return average / (1.0 - smoothing ** np.arange(1, len(values) + 1))


class CurvePlot(QWidget):
    """Named curves against the optimiser step. Owned by the GUI thread.

    ``append`` only buffers points; ``refresh`` hands each changed buffer to its curve with one
    ``setData`` call, so a burst of events costs one redraw. Curves are created on first use and
    kept until ``clear``.
    """

    def __init__(
        self,
        title: str,
        y_label: str,
        style: CurveStyle | None = None,
        parent: QWidget | None = None,
        smoothing_control: bool = False,
        legend_corner: str = "top right",
    ) -> None:
        super().__init__(parent)
        self.smoothing = 0.0
        # Series drawn above the others, e.g. a dashed curve that can lie exactly on another one.
        self.on_top: set[str] = set()
        # Series drawn without an entry of their own, which a shared legend entry explains.
        self._unlisted: set[str] = set()
        self._legend_samples: list[pg.PlotDataItem] = []
        self.plot_widget = new_plot(title, "step", y_label, legend_corner)
        self.plot_item = self.plot_widget.getPlotItem()
        self._style = style
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._steps: dict[str, list[float]] = {}
        self._values: dict[str, list[float]] = {}
        self._dirty: set[str] = set()
        # pyqtgraph's auto-range refits y at every refresh, and each new range makes the axis
        # recompute its ticks and grid: half the cost of a redraw during a run. The plot follows
        # the data itself instead and moves the y range only when the curves leave it or fill less
        # than half of it. Zooming or panning by hand stops that until the next ``clear``; the
        # plot's "A" button gives the range back to pyqtgraph's auto-range.
        self._follow_y = True
        view_box = self.plot_item.getViewBox()
        view_box.enableAutoRange(y=False)
        view_box.sigRangeChangedManually.connect(self._stop_following_y)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.smoothing_box: QDoubleSpinBox | None = None
        if smoothing_control:
            layout.addLayout(self._smoothing_row())
        layout.addWidget(self.plot_widget)

    def _smoothing_row(self) -> QHBoxLayout:
        # Per-step losses jump between length buckets; an EMA shows the trend without hiding the data.
        self.smoothing_box = QDoubleSpinBox()
        self.smoothing_box.setRange(0.0, 0.99)
        self.smoothing_box.setSingleStep(0.1)
        self.smoothing_box.setDecimals(2)
        self.smoothing_box.setToolTip("Exponential moving average of each curve; 0 draws the logged values.")
        self.smoothing_box.valueChanged.connect(self.set_smoothing)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(QLabel("Smoothing"))
        row.addWidget(self.smoothing_box)
        return row

    def set_smoothing(self, smoothing: float) -> None:
        """Redraw every curve with EMA weight ``smoothing`` (0 to 0.99)."""
        self.smoothing = float(smoothing)
        if self.smoothing_box is not None and self.smoothing_box.value() != self.smoothing:
            self.smoothing_box.setValue(self.smoothing)
        self._dirty.update(self._curves)
        self.refresh()

    def _curve(self, name: str, pen: QPen | None = None, label: str | None = None) -> pg.PlotDataItem:
        curve = self._curves.get(name)
        if curve is None:
            if pen is not None:
                label = label or name
            elif self._style is not None:
                label, pen = self._style(name)
            else:
                label, pen = default_style(name, len(self._curves))
            curve = self.plot_item.plot([], [], name=None if name in self._unlisted else label, pen=pen)
            if name in self.on_top:
                curve.setZValue(1)
            self._curves[name] = curve
            self._steps[name] = []
            self._values[name] = []
        return curve

    def append(self, name: str, step: float, value: float) -> None:
        self._curve(name)
        self._steps[name].append(float(step))
        self._values[name].append(float(value))
        self._dirty.add(name)

    def set_series(
        self,
        name: str,
        steps: np.ndarray | list[float],
        values: np.ndarray | list[float],
        pen: QPen | None = None,
        *,
        label: str | None = None,
        listed: bool = True,
    ) -> None:
        """Replace a whole series (for stored runs and constant lines).

        ``pen`` overrides the style of a new curve, and ``label`` its legend text (the name by
        default). An unlisted curve gets no legend entry.
        """
        if not listed:
            self._unlisted.add(name)
        self._curve(name, pen, label)
        self._steps[name] = [float(s) for s in steps]
        self._values[name] = [float(v) for v in values]
        self._dirty.add(name)

    def set_step_range(self, last_step: int) -> None:
        """Fix the x axis to steps 0 to ``last_step`` for a run whose length is known.

        With a fixed range the step axis keeps its ticks, instead of recomputing them at every
        refresh as the curves grow. ``clear`` gives the axis back to auto-range.
        """
        self.plot_item.setXRange(0, max(last_step, 1), padding=0.02)

    def refresh(self) -> None:
        if not self._dirty:
            return
        for name in self._dirty:
            values = np.asarray(self._values[name], dtype=np.float64)
            self._curves[name].setData(np.asarray(self._steps[name]), exponential_moving_average(values, self.smoothing))
        self._dirty.clear()
        self._follow_data_in_y()

    def _stop_following_y(self, *_: object) -> None:
        self._follow_y = False

    def _follow_data_in_y(self) -> None:
        view_box = self.plot_item.getViewBox()
        if not self._follow_y or view_box.autoRangeEnabled()[1]:
            return
        drawn = [curve.getData()[1] for curve in self._curves.values()]
        values = np.concatenate([y for y in drawn if y is not None] or [np.empty(0)])
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        low, high = float(values.min()), float(values.max())
        (_, _), (view_low, view_high) = view_box.viewRange()
        view_span = view_high - view_low
        edge = Y_EDGE_FRACTION * view_span
        if low >= view_low + edge and high <= view_high - edge and high - low >= Y_FILL_FRACTION * view_span:
            return
        # A flat curve has no span, so its margin comes from its value instead.
        margin = Y_MARGIN_FRACTION * (high - low) if high > low else max(abs(high) * Y_MARGIN_FRACTION, FLAT_CURVE_MARGIN)
        view_box.setYRange(low - margin, high + margin, padding=0)

    def add_legend_entry(self, label: str, pen: QPen) -> None:
        """Add a legend entry with no curve of its own, to explain unlisted curves."""
        legend = self.plot_item.legend
        if legend is None:
            return
        sample = pg.PlotDataItem(pen=pen)
        legend.addItem(sample, label)
        self._legend_samples.append(sample)

    def legend_labels(self) -> list[str]:
        legend = self.plot_item.legend
        return [label.text for _sample, label in legend.items] if legend is not None else []

    def clear(self) -> None:
        """Remove every curve and its legend entry (before a new run or a new selection)."""
        legend = self.plot_item.legend
        for curve in self._curves.values():
            self.plot_item.removeItem(curve)
            if legend is not None:
                legend.removeItem(curve)
        for sample in self._legend_samples:
            if legend is not None:
                legend.removeItem(sample)
        self._legend_samples.clear()
        self._unlisted.clear()
        self._curves.clear()
        # An empty plot would otherwise keep the axes of the curves it showed before.
        self.plot_item.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self.plot_item.enableAutoRange(x=True)
        self.plot_item.enableAutoRange(y=False)
        self._follow_y = True
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
