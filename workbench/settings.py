"""Remembered state: last configuration, window geometry, splitter sizes and selected plots (QSettings)."""

from __future__ import annotations

import json
import logging
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

log = logging.getLogger(__name__)

ORGANIZATION_NAME = "Lampreia"
APPLICATION_NAME = "Lampreia Workbench"

# Bumped when the meaning of a stored key changes, so that old values are ignored, not misread.
SETTINGS_VERSION = 1


class WorkbenchSettings:
    """Typed access to the workbench's QSettings. Used from the GUI thread only.

    Without an explicit ``QSettings`` the application's organisation and application names
    choose the platform location (set by ``workbench.app``); tests pass an INI file instead.
    """

    def __init__(self, settings: QSettings | None = None) -> None:
        self._settings = settings if settings is not None else QSettings()
        version = self._settings.value("version")
        if version is not None and str(version) != str(SETTINGS_VERSION):
            log.warning("Ignoring remembered settings of version %s (this version uses %s)", version, SETTINGS_VERSION)
            self._settings.clear()
        self._settings.setValue("version", SETTINGS_VERSION)

    def _json(self, key: str) -> Any:
        text = self._settings.value(key)
        if not text:
            return None
        try:
            return json.loads(str(text))
        except ValueError:
            log.warning("Ignoring the unreadable remembered value %s", key)
            return None

    def config_values(self) -> dict[str, Any] | None:
        """Return the configuration panel's last values as {dotted path: value as typed}."""
        values = self._json("config/values")
        return values if isinstance(values, dict) else None

    def set_config_values(self, values: dict[str, Any]) -> None:
        self._settings.setValue("config/values", json.dumps(values, ensure_ascii=False))

    def custom_teachers(self) -> dict[str, str]:
        """Return {spec: description} of the models added to the teacher list."""
        stored = self._json("config/custom_teachers")
        if isinstance(stored, dict):
            return {str(spec): str(description) for spec, description in stored.items()}
        if isinstance(stored, list):  # written by earlier versions, without descriptions
            return {str(spec): "" for spec in stored}
        return {}

    def set_custom_teachers(self, teachers: dict[str, str]) -> None:
        self._settings.setValue("config/custom_teachers", json.dumps(teachers, ensure_ascii=False))

    def byte_array(self, key: str) -> QByteArray | None:
        value = self._settings.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_byte_array(self, key: str, value: QByteArray) -> None:
        self._settings.setValue(key, value)

    def int_value(self, key: str, default: int) -> int:
        value = self._settings.value(key)
        try:
            return int(value) if value is not None else default
        except (TypeError, ValueError):
            return default

    def set_int_value(self, key: str, value: int) -> None:
        self._settings.setValue(key, int(value))

    def sync(self) -> None:
        self._settings.sync()
