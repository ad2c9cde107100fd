"""Curve plots: data replaced in place, optional EMA smoothing of the drawn values."""

import numpy as np
import pytest

from workbench.curve_plot import CurvePlot, exponential_moving_average


def test_ema_is_debiased_and_zero_is_identity():
    values = np.array([1.0, 3.0, 3.0, 3.0])

    assert np.array_equal(exponential_moving_average(values, 0.0), values)
    smoothed = exponential_moving_average(values, 0.5)
    assert smoothed[0] == pytest.approx(1.0)
    assert smoothed[1] == pytest.approx((0.5 * 0.5 + 0.5 * 3.0) / 0.75)
    assert smoothed[-1] < 3.0


def test_smoothing_redraws_existing_curves(qtbot):
    plot = CurvePlot("losses", "loss", smoothing_control=True)
    qtbot.addWidget(plot)
    for step, value in enumerate([1.0, 0.0, 1.0, 0.0]):
        plot.append("train/loss_total", step, value)
    plot.refresh()

    plot.smoothing_box.setValue(0.9)
    _, smoothed = plot.points("train/loss_total")
    plot.smoothing_box.setValue(0.0)
    _, raw = plot.points("train/loss_total")

    assert np.ptp(smoothed) < np.ptp(raw)
    assert raw.tolist() == [1.0, 0.0, 1.0, 0.0]
