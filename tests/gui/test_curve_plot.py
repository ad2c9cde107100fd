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


def test_ema_matches_recursion():
    values = np.random.default_rng(0).normal(size=500)
    expected, average = [], 0.0
    for index, value in enumerate(values):
        average = 0.8 * average + 0.2 * value
        expected.append(average / (1.0 - 0.8 ** (index + 1)))

    assert np.allclose(exponential_moving_average(values, 0.8), expected)


def test_step_range_fixed_until_clear(qtbot):
    plot = CurvePlot("losses", "loss")
    qtbot.addWidget(plot)
    plot.set_step_range(1000)
    plot.append("total", 10, 1.0)
    plot.append("total", 20, 0.5)
    plot.refresh()

    (x_min, x_max), _ = plot.plot_item.viewRange()
    assert x_min <= 0
    assert x_max >= 1000
    assert not plot.plot_item.getViewBox().autoRangeEnabled()[0]

    plot.clear()
    assert plot.plot_item.getViewBox().autoRangeEnabled()[0]


def _y_range(plot):
    return tuple(plot.plot_item.getViewBox().viewRange()[1])


def test_y_range_follows_curves_that_leave_it(qtbot):
    plot = CurvePlot("losses", "loss")
    qtbot.addWidget(plot)
    for step, value in enumerate([1.0, 0.8, 0.9]):
        plot.append("total", step, value)
    plot.refresh()
    first = _y_range(plot)

    plot.append("total", 3, 0.85)
    plot.refresh()
    assert _y_range(plot) == first

    plot.append("total", 4, 0.2)
    plot.refresh()
    low, high = _y_range(plot)
    assert low < 0.2
    assert high > 1.0


def test_y_range_shrinks_when_curves_fill_under_half(qtbot):
    plot = CurvePlot("losses", "loss")
    qtbot.addWidget(plot)
    plot.set_series("total", [0, 1], [0.0, 10.0])
    plot.refresh()

    plot.set_series("total", [0, 1], [0.0, 1.0])
    plot.refresh()

    low, high = _y_range(plot)
    assert high - low < 2.0


def test_curve_on_the_frame_moves_the_range(qtbot):
    plot = CurvePlot("weights", "weight")
    qtbot.addWidget(plot)
    plot.plot_item.getViewBox().setYRange(0.0, 1.0, padding=0)
    # One teacher's weight is 1.0 throughout, three others' about 0.3: within [0, 1], but on its top.
    plot.set_series("one teacher", [0, 30], [1.0, 1.0])
    plot.set_series("three teachers", [0, 30], [0.3, 0.38])
    plot.refresh()

    low, high = _y_range(plot)
    assert high > 1.0 + 0.01 * (high - low)
    assert low < 0.3


def test_flat_curve_gets_a_close_range(qtbot):
    plot = CurvePlot("weights", "weight")
    qtbot.addWidget(plot)
    plot.set_series("one teacher", [0, 30], [1.0, 1.0])
    plot.refresh()

    low, high = _y_range(plot)
    assert (round(low, 6), round(high, 6)) == (0.9, 1.1)


def test_y_range_left_alone_after_manual_zoom(qtbot):
    plot = CurvePlot("losses", "loss")
    qtbot.addWidget(plot)
    plot.append("total", 0, 1.0)
    plot.refresh()
    view_box = plot.plot_item.getViewBox()
    view_box.setYRange(5.0, 6.0, padding=0)
    view_box.sigRangeChangedManually.emit([False, True])

    plot.append("total", 1, 0.5)
    plot.refresh()
    assert _y_range(plot) == (5.0, 6.0)

    plot.clear()
    plot.append("total", 0, 0.5)
    plot.refresh()
    low, high = _y_range(plot)
    assert low < 0.5 < high


def test_clear_resets_axes(qtbot):
    plot = CurvePlot("losses", "loss")
    qtbot.addWidget(plot)
    plot.set_series("dev/accuracy", np.arange(0, 61, 15), [0.6, 0.7, 0.8, 0.9, 1.0])
    plot.refresh()

    plot.clear()

    (x_low, x_high), (y_low, y_high) = plot.plot_item.getViewBox().viewRange()
    assert (x_low, x_high) == pytest.approx((0, 1))
    assert (y_low, y_high) == pytest.approx((0, 1))
