"""The aggregation compiled with mypyc: the same source, run as C, and only while it is current.

The worker's event-loop thread is what bounds its rate, and decoding, aggregating and encoding
the states is half of it. mypyc compiles those modules, unchanged, into C extensions: a sixth
less time per event on that path (bench/README.md). `make install` builds them into
`build/native/` (`python -m stream native build`), with a stamp of the sources they were built
from. `import stream` puts that folder ahead of the sources only while the stamp matches them, so
an edited module runs as Python until the next build: a stale build never runs. Without mypyc (an
install without the dev extras) everything runs as Python, identically.

    .venv/bin/python -m stream native build     # compile (about 30 s)
    .venv/bin/python -m stream native           # which modules run compiled, or why not
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import os
import sys
from pathlib import Path
from typing import Any, Final

PACKAGE_DIR: Final = Path(__file__).resolve().parent
BUILD_DIR: Final = PACKAGE_DIR.parent / "build" / "native"
STAMP: Final = BUILD_DIR / "SOURCES"
# Compiled: the per-event path of the ingest (and of replay), pure code with no I/O, the formulas
# included. Those divide through `features.ratio`, which keeps Python's division compiled.
COMPILED: Final = ("tiles", "derive", "state", "ingest", "features")
# What the compiled code was type-checked against: a change here can change what it assumes.
DEPENDS: Final = ("catalog", "events", "settings")
# Set to 1 to run everything as Python (a profiler that wants Python frames, say).
DISABLE_VARIABLE: Final = "AURORA_NATIVE_DISABLE"


def fingerprint() -> str:
    """The sources the compiled modules depend on, and the interpreter that loads them."""
    digest = hashlib.sha256(sys.implementation.cache_tag.encode())
    # This module too: it says what is compiled, and how.
    for name in (*COMPILED, *DEPENDS, "native"):
        digest.update(name.encode())
        digest.update((PACKAGE_DIR / f"{name}.py").read_bytes())
    return digest.hexdigest()


def _built(name: str) -> bool:
    return any(
        (BUILD_DIR / "stream" / f"{name}{suffix}").exists()
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )


def why_not() -> str | None:
    """Why the compiled modules would not be used; None when they would."""
    if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
        return f"{DISABLE_VARIABLE} is set"
    if not STAMP.exists():
        return "not built (make install, or python -m stream native build)"
    if STAMP.read_text().strip() != fingerprint():
        return "the sources changed since the build (make install rebuilds it)"
    missing = [name for name in COMPILED if not _built(name)]
    if missing:
        return f"the build lacks {missing}"
    return None


def activate(package_path: list[str]) -> bool:
    """Put the compiled modules ahead of the sources in `package_path` if they are current."""
    if why_not() is not None:
        return False
    package_path.insert(0, str(BUILD_DIR / "stream"))
    # mypyc's shared runtime of the group is a top-level module next to the package.
    if str(BUILD_DIR) not in sys.path:
        sys.path.append(str(BUILD_DIR))
    return True


def build() -> None:
    """Compile COMPILED into BUILD_DIR and stamp it with the sources' fingerprint.

    A build whose fingerprint still matches is kept: make calls this whenever any module of the
    package changed, and most changes leave these untouched.
    """
    if why_not() is None:
        return
    from mypyc.build import mypycify
    from setuptools import setup  # type: ignore[import-untyped]  # setuptools ships no stubs

    sources = [str(PACKAGE_DIR / f"{name}.py") for name in COMPILED]
    temp = BUILD_DIR.parent / "native-temp"
    temp.mkdir(parents=True, exist_ok=True)
    STAMP.unlink(missing_ok=True)
    cwd = Path.cwd()
    # Out of the checkout: setuptools would read the project's pyproject.toml, which is the
    # package's (and wants a newer setuptools than the venv's); mypy names the modules by path.
    os.chdir(temp)
    try:
        setup(
            name="aurora-features-native",
            ext_modules=mypycify(sources, opt_level="3", group_name="aurora_native"),
            script_args=[
                "--quiet",
                "build_ext",
                "--build-lib",
                str(BUILD_DIR),
                "--build-temp",
                str(temp),
            ],
        )
    finally:
        os.chdir(cwd)
    STAMP.write_text(fingerprint() + "\n")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "native", help="build the mypyc-compiled aggregation, or say whether it is in use"
    )
    parser.add_argument("action", nargs="?", choices=("status", "build"), default="status")
    parser.set_defaults(run=_cmd_native)


def _cmd_native(args: argparse.Namespace) -> int:
    if args.action == "build":
        build()
    reason = why_not()
    if reason is None:
        print(f"compiled: {', '.join(f'stream.{n}' for n in COMPILED)} ({BUILD_DIR})")
    else:
        print(f"running as Python: {reason}")
    return 0 if reason is None or args.action == "status" else 1
