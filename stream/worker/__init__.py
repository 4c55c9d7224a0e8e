"""The streaming worker: a Faust app that hands Kafka batches to the core and writes the results.

`faust -A stream.worker worker` finds the app here as `app`, built from the environment on
first access (not on import, so importing a module of this package starts nothing).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from stream.settings import get_settings
        from stream.worker.app import build_app

        app = build_app(get_settings())
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
