"""What a test asks of the writer process from inside it; imports nothing heavy itself, so
what it finds loaded is the writer's doing (a test module would bring Feast along)."""

from __future__ import annotations

import sys

HEAVY = ("feast", "pandas", "pyarrow")


def heavy_modules_loaded() -> list[str]:
    return sorted(m for m in HEAVY if m in sys.modules)
