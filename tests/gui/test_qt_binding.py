"""The installed Qt binding must keep None's reference count, or a long session aborts."""

import sys

import pytest
from PySide6.QtGui import QColor


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12")
def test_void_calls_keep_none_alive():
    colour = QColor("red")
    before = sys.getrefcount(None)

    # PySide6 6.12.0 on Python 3.10 and 3.11 loses one reference per call of a method that
    # returns nothing, and Python aborts with "deallocating None" when the count reaches zero.
    for _ in range(10_000):
        colour.setAlpha(10)

    assert abs(sys.getrefcount(None) - before) < 1_000
