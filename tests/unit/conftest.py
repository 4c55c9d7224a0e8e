"""Unit tests see the settings' defaults, whatever endpoints the integration fixtures exported."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("AURORA_"):
            monkeypatch.delenv(key)
