"""The spectral attention map: the student's token-mixing matrix for the probe sentence.

Rows are query tokens (the token whose output is mixed), columns key tokens (the tokens mixed
into it), so row i shows where token i takes its information from. Maps arrive with shape
(layers, heads, T, T) from ``AttentionCaptured`` during a run, or from the run store for a
stored run.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

MAX_LABEL_CHARS = 12
# Pixels between two token labels on the bottom axis, so that neighbours do not run together.
LABEL_GAP_PX = 8
EMPTY_INFO = "No attention map yet: it is recorded at each evaluation of a run."
FIT_COLOURS_TIP = (
    "Off: the colour scale starts at 0 (or at the map's lowest value when that is negative), so that "
    "maps of different heads and steps compare. On: the scale spans this map's lowest to highest "
    "value, which shows small differences in a nearly uniform map."
)
# Rows of attention probabilities sum to 1, but the spectral mixer's Toeplitz rows need not.
ROW_SUM_TOLERANCE = 1e-3


def colour_levels(matrix: np.ndarray, fit: bool) -> tuple[float, float]:
    """Return the (low, high) ends of the colour scale for ``matrix``."""
    low = float(matrix.min()) if fit else min(0.0, float(matrix.min()))
    high = max(float(matrix.max()), low + 1e-6)
    return low, high


def value_summary(matrix: np.ndarray) -> str:
    """Describe the range of ``matrix``, next to a uniform row's value when its rows are probabilities."""
    text = f"Values {matrix.min():.3g} to {matrix.max():.3g}"
    size = matrix.shape[-1]
    if size and np.allclose(matrix.sum(axis=-1), 1.0, atol=ROW_SUM_TOLERANCE):
        text += f"; a uniform row over {size} tokens is {1 / size:.3g}"
    return text + "."


def token_ticks(tokens: tuple[str, ...] | list[str], every: int = 1) -> list[list[tuple[float, str]]]:
    """Return AxisItem ticks that put the text of every ``every``-th token at its cell centre."""
    every = max(1, every)
    major, minor = [], []
    for index, token in enumerate(tokens):
        text = token if len(token) <= MAX_LABEL_CHARS else token[: MAX_LABEL_CHARS - 1] + "…"
        (major if index % every == 0 else minor).append((index + 0.5, text))
    return [major, [(position, "") for position, _ in minor]]


class AttentionView(QWidget):
    """Heat map with a colour bar, layer and head selectors and token axis labels. GUI thread."""

    probe_edited = Signal(str)

    def __init__(self, editable_probe: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._maps: np.ndarray | None = None
        self._tokens: tuple[str, ...] = ()
        self._step = 0
        self._source = ""

        # The probe sentence of the run whose map is shown; an edited sentence applies to the next run.
        self._run_probe: str | None = None
        self._editable_probe = editable_probe

        self.probe_edit = QLineEdit()
        self.probe_edit.setToolTip("Sentence whose mixing matrices the next run records at every evaluation.")
        self.probe_edit.setMinimumWidth(self.probe_edit.fontMetrics().horizontalAdvance("x" * 16))
        self.layer_combo = QComboBox()
        self.head_combo = QComboBox()
        self.fit_colours_box = QCheckBox("Fit colours")
        self.fit_colours_box.setToolTip(FIT_COLOURS_TIP)
        self.info_label = QLabel(EMPTY_INFO)
        self.info_label.setObjectName("fieldHint")
        self.info_label.setWordWrap(True)

        self.plot_widget = pg.PlotWidget()
        self.plot_item = self.plot_widget.getPlotItem()
        self.plot_item.invertY(True)
        self.plot_item.setAspectLocked(True)
        self.plot_item.setMouseEnabled(x=False, y=False)
        self.plot_item.hideButtons()
        self.plot_item.setLabel("bottom", "key token (mixed in)")
        self.plot_item.setLabel("left", "query token")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot_item.addItem(self.image)
        self.color_bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap="viridis", interactive=False, width=18, label="weight")
        self.color_bar.setImageItem(self.image, insert_in=self.plot_item)

        probe_row = QHBoxLayout()
        # Other views add their own selectors in front of the layer and head ones.
        self.controls_row = probe_row
        if editable_probe:
            probe_row.addWidget(QLabel("Probe sentence"))
            probe_row.addWidget(self.probe_edit, 1)
        else:
            self.probe_edit.hide()
            probe_row.addStretch(1)
        probe_row.addWidget(QLabel("Layer"))
        probe_row.addWidget(self.layer_combo)
        probe_row.addWidget(QLabel("Head"))
        probe_row.addWidget(self.head_combo)
        # The check box sits beside the wrapping info line, so that it adds no width to the controls.
        info_row = QHBoxLayout()
        info_row.addWidget(self.info_label, 1)
        info_row.addWidget(self.fit_colours_box)
        layout = QVBoxLayout(self)
        layout.addLayout(probe_row)
        layout.addLayout(info_row)
        layout.addWidget(self.plot_widget, 1)

        self.probe_edit.textEdited.connect(self.probe_edited)
        self.probe_edit.textChanged.connect(self._update_info)
        self.layer_combo.currentIndexChanged.connect(self._redraw)
        self.head_combo.currentIndexChanged.connect(self._redraw)
        self.fit_colours_box.toggled.connect(self._redraw)
        # Token labels are thinned to what fits the plot, so they follow its size.
        self.plot_item.getViewBox().sigResized.connect(self._update_ticks)
        self.clear()

    def set_probe_text(self, text: str) -> None:
        if self.probe_edit.text() != text:
            self.probe_edit.setText(text)

    def set_run_probe(self, text: str | None) -> None:
        """Set the probe sentence of the run whose maps this view shows (None: not known)."""
        self._run_probe = text
        self._update_info()

    def show_snapshot(self, step: int, tokens: tuple[str, ...], maps: np.ndarray, source: str = "") -> None:
        """Show a (layers, heads, T, T) array; keeps the selected layer and head when they still exist."""
        maps = np.asarray(maps, dtype=np.float32)
        if maps.ndim != 4 or maps.shape[2] != maps.shape[3] or maps.shape[2] != len(tokens):
            raise ValueError(f"expected maps of shape (layers, heads, {len(tokens)}, {len(tokens)}), got {maps.shape}")
        self._maps = maps
        self._tokens = tuple(tokens)
        self._step = step
        self._source = source
        self._fill_combo(self.layer_combo, maps.shape[0])
        self._fill_combo(self.head_combo, maps.shape[1])

        left = self.plot_item.getAxis("left")
        # pyqtgraph sizes the left axis for numbers; token labels need room for the widest token.
        widest = max((self._label_metrics().horizontalAdvance(text) for _position, text in token_ticks(self._tokens)[0]), default=0)
        left.setWidth(widest + 40)
        self._update_ticks()
        self._redraw()

    def _label_metrics(self) -> QFontMetrics:
        return QFontMetrics(self.plot_item.getAxis("left").style.get("tickFont") or self.font())

    @Slot()
    def _update_ticks(self) -> None:
        """Label every token whose label fits: every k-th one on each axis when the cells are narrower than the labels."""
        if not self._tokens:
            return
        count = len(self._tokens)
        metrics = self._label_metrics()
        widest = max(metrics.horizontalAdvance(text) for _position, text in token_ticks(self._tokens)[0])
        view = self.plot_item.getViewBox().geometry()
        # The view is square (aspect locked), so a cell is min(width, height) / count pixels.
        cell = max(min(view.width(), view.height()), 1.0) / count
        self.plot_item.getAxis("bottom").setTicks(token_ticks(self._tokens, math.ceil((widest + LABEL_GAP_PX) / cell)))
        self.plot_item.getAxis("left").setTicks(token_ticks(self._tokens, math.ceil(metrics.height() / cell)))

    def _fill_combo(self, combo: QComboBox, count: int) -> None:
        if combo.count() == count:
            return
        selected = combo.currentIndex()
        combo.blockSignals(True)
        combo.clear()
        combo.addItems([str(i + 1) for i in range(count)])
        combo.setCurrentIndex(min(max(selected, 0), count - 1))
        combo.blockSignals(False)

    @Slot()
    def _redraw(self) -> None:
        if self._maps is None:
            return
        layer = max(self.layer_combo.currentIndex(), 0)
        head = max(self.head_combo.currentIndex(), 0)
        matrix = self._maps[layer, head]
        self.image.setImage(matrix, autoLevels=False)
        # Attention rows are probabilities in [0, 1], but the spectral mixer's Toeplitz matrix can be negative.
        self.color_bar.setLevels(colour_levels(matrix, self.fit_colours_box.isChecked()))
        size = len(self._tokens)
        self.plot_item.setRange(xRange=(0, size), yRange=(0, size), padding=0)
        self._update_info()

    @Slot()
    def _update_info(self) -> None:
        if self._maps is None:
            self.info_label.setText(EMPTY_INFO)
            return
        layer = max(self.layer_combo.currentIndex(), 0)
        head = max(self.head_combo.currentIndex(), 0)
        where = f" ({self._source})" if self._source else ""
        text = (
            f"Step {self._step}{where}: layer {layer + 1} of {self._maps.shape[0]}, head {head + 1} of {self._maps.shape[1]}, "
            f"{len(self._tokens)} tokens. Row i shows how much each token is mixed into token i. "
            f"{value_summary(self._maps[layer, head])}"
        )
        if self._editable_probe and self._run_probe is not None and self.probe_edit.text() != self._run_probe:
            text += f' This map is of the run\'s probe sentence, "{self._run_probe}"; the edited sentence applies from the next run.'
        self.info_label.setText(text)

    def clear(self) -> None:
        self._maps = None
        self._tokens = ()
        self.image.clear()
        # Without a map, the axes show no numbers: their only scale is tokens.
        for name in ("bottom", "left"):
            self.plot_item.getAxis(name).setTicks([[], []])
        self.plot_item.getAxis("left").setWidth(None)
        self.plot_item.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self.layer_combo.clear()
        self.head_combo.clear()
        self._update_info()

    # Read access for tests and screenshots

    def current_matrix(self) -> np.ndarray | None:
        return self.image.image

    def colour_levels(self) -> tuple[float, float]:
        return self.color_bar.levels()

    def tokens(self) -> tuple[str, ...]:
        return self._tokens

    def select(self, layer: int, head: int) -> None:
        self.layer_combo.setCurrentIndex(layer)
        self.head_combo.setCurrentIndex(head)
