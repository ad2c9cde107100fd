"""Data files of Lampreia Workbench: run presets, stylesheets and icons (no code)."""

from importlib import resources as _resources
from importlib.abc import Traversable


def resource_path(*parts: str) -> Traversable:
    """Return a file or folder of this package, e.g. ``resource_path("presets", "paper.json")``."""
    return _resources.files(__name__).joinpath(*parts)
