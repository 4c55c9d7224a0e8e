"""The core compiled with mypyc: the same source, run as C, and only while it is current.

`make install` compiles the modules in COMPILED into `build/native/`
(`python -m stream native build`), stamped with a fingerprint of their sources and of what they
were type-checked against. Invariant: `import stream.core` puts that folder ahead of the
sources only while the stamp matches, so an edited module runs as Python until the next build,
and a stale build never runs; without mypyc everything runs as Python, computing the same bits.
Why, and the figures: docs/decisions/0008-compiled-core.md.

    .venv/bin/python -m stream native build     # compile (about 40 s)
    .venv/bin/python -m stream native           # which modules run compiled, or why not
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from typing import Final

PACKAGE_DIR: Final = Path(__file__).resolve().parent  # stream/core
SOURCE_ROOT: Final = PACKAGE_DIR.parent.parent  # the checkout: stream/ and build/ are in it
BUILD_DIR: Final = SOURCE_ROOT / "build" / "native"
# Where the compiled modules of stream.core land, as setuptools lays out a package.
BUILT_PACKAGE: Final = BUILD_DIR / "stream" / "core"
STAMP: Final = BUILD_DIR / "SOURCES"
# Compiled, modules of stream.core: the per-event path of the ingest (and of replay), pure code
# with no I/O, the formulas included. Those divide through `formulas.ratio`, which keeps
# Python's division compiled.
COMPILED: Final = ("records", "tiles", "codec", "observe", "state", "ingest", "formulas")
# What the compiled code was type-checked against (paths under stream/): a change here can
# change what it assumes.
DEPENDS: Final = ("catalog.py", "core/events.py", "settings.py", "errors.py")
# mypyc's shared library of the compiled group: `<GROUP>__mypyc`, beside the package folder.
GROUP: Final = "aurora_native"
GROUP_RUNTIME: Final = f"{GROUP}__mypyc"
# Set to 1 to run everything as Python (a profiler that wants Python frames, say).
DISABLE_VARIABLE: Final = "AURORA_NATIVE_DISABLE"


def fingerprint() -> str:
    """The sources the compiled modules depend on, and the interpreter that loads them."""
    digest = hashlib.sha256(sys.implementation.cache_tag.encode())
    # This module too: it says what is compiled, and how.
    sources = [f"core/{name}.py" for name in (*COMPILED, "native")] + list(DEPENDS)
    for path in sources:
        digest.update(path.encode())
        digest.update((PACKAGE_DIR.parent / path).read_bytes())
    return digest.hexdigest()


def _built(name: str) -> bool:
    return any(
        (BUILT_PACKAGE / f"{name}{suffix}").exists()
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
    if not any(
        (BUILD_DIR / f"{GROUP_RUNTIME}{s}").exists() for s in importlib.machinery.EXTENSION_SUFFIXES
    ):
        missing.append(GROUP_RUNTIME)
    if missing:
        return f"the build lacks {missing}"
    return None


def activate(package_path: list[str]) -> bool:
    """Put the compiled modules ahead of the sources in `package_path` if they are current."""
    if why_not() is not None:
        return False
    _load_group_runtime()
    package_path.insert(0, str(BUILT_PACKAGE))
    return True


def _load_group_runtime() -> None:
    """Load mypyc's shared library of the group, a top-level module the compiled ones import.

    By its file, not by putting the build folder on sys.path: there, `build/native/stream`
    would be a namespace package that can shadow the real one in a process that inherits the
    path (a spawned writer process did: it found no `stream.core.events`).
    """
    if GROUP_RUNTIME in sys.modules:
        return
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = BUILD_DIR / f"{GROUP_RUNTIME}{suffix}"
        if path.exists():
            spec = importlib.util.spec_from_file_location(GROUP_RUNTIME, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[GROUP_RUNTIME] = module
            spec.loader.exec_module(module)
            return
    raise ImportError(f"mypyc's group runtime {GROUP_RUNTIME} is missing from {BUILD_DIR}")


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
            ext_modules=mypycify(sources, opt_level="3", group_name=GROUP),
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
