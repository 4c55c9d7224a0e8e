"""The compiled aggregation runs only while it is current, and computes what the source does."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream.core import native

CHECKOUT = Path(__file__).resolve().parents[3]

# The same stream through the aggregation, printed: run once compiled and once as Python.
_PROBE = """
from datetime import UTC, datetime
import orjson
from stream.catalog import EVENT_TYPES
from stream.synth.generator import GeneratorConfig, generate
from stream.core.ingest import Ingestor
from stream.core.records import Message
from stream.core import state
config = GeneratorConfig(users=30, days=4, seed=5, start=datetime(2026, 2, 1, tzinfo=UTC),
                         out_of_order=0.05, duplicates=0.02, invalid=0.01)
ingestor, states = Ingestor.in_memory({t: t for t in EVENT_TYPES})
result = ingestor.process(
    [Message(g.event_type or "activity", 0, i, g.key, g.raw)
     for i, g in enumerate(generate(config))]
)
print(state.__file__)
print(orjson.dumps([result.rows, sorted(result.counts.items())]).decode())
for key in sorted(states):
    print(states[key].records())
"""


def _probe(**env: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=CHECKOUT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    where, output = done.stdout.split("\n", 1)
    return where, output


def test_a_stale_build_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = tmp_path / "SOURCES"
    stamp.write_text("a fingerprint of other sources\n")
    monkeypatch.setattr(native, "STAMP", stamp)
    monkeypatch.delenv(native.DISABLE_VARIABLE, raising=False)
    path = ["/the/sources"]
    assert native.why_not() == "the sources changed since the build (make install rebuilds it)"
    assert native.activate(path) is False
    assert path == ["/the/sources"]


def test_the_fingerprint_follows_every_source_it_covers() -> None:
    assert native.fingerprint() == native.fingerprint()
    assert set(native.COMPILED) >= {"tiles", "state", "ingest"}
    for name in native.COMPILED:
        assert (native.PACKAGE_DIR / f"{name}.py").exists(), name
    for path in native.DEPENDS:
        assert (native.PACKAGE_DIR.parent / path).exists(), path


@pytest.mark.skipif(importlib.util.find_spec("mypyc") is None, reason="mypyc is a dev dependency")
def test_the_compiled_modules_compute_what_the_source_does() -> None:
    # `make install` builds them whenever mypyc is installed, so here they must be current.
    assert native.why_not() is None, native.why_not()
    compiled_at, compiled = _probe()
    source_at, source = _probe(**{native.DISABLE_VARIABLE: "1"})
    assert compiled_at.startswith(str(native.BUILD_DIR)) and compiled_at.endswith(".so")
    assert source_at == str(native.PACKAGE_DIR / "state.py")
    assert compiled == source


def test_compiled_division_rounds_once_as_python_does() -> None:
    # Nano-unit sums pass 2**53, where an int has no double of its own: dividing the two
    # doubles, as compiled int / int does, rounds the dividend first and can miss by a bit.
    from stream.core.formulas import ratio

    cases = [(2**53 + 1, 3), (2**61 + 12_345, 1_000_000_007), (9_007_199_254_740_993, 7)]
    assert any(float(a) / float(b) != a / b for a, b in cases)
    for a, b in cases:
        assert ratio(a, b) == a / b


def test_every_division_of_the_formulas_goes_through_ratio() -> None:
    # A bare `/` between two ints would compile to the double division above, and a test can
    # only catch that where the generated sums happen to pass 2**53.
    import ast

    tree = ast.parse((native.PACKAGE_DIR / "formulas.py").read_text())

    def divisions(node: ast.AST) -> set[int]:
        return {
            n.lineno
            for n in ast.walk(node)
            if isinstance(n, ast.BinOp | ast.AugAssign) and isinstance(n.op, ast.Div)
        }

    allowed = set().union(
        *(
            divisions(f)
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef) and f.name == "ratio"
        )
    )
    assert allowed, "ratio() itself divides"
    bare = sorted(divisions(tree) - allowed)
    assert bare == [], f"stream/core/formulas.py divides outside ratio() at lines {bare}"
