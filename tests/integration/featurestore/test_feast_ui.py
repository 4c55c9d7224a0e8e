"""`feast ui` against this repository: it starts, lists our project, and serves the app."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from stream.settings import Settings

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local URL
        return response.status, response.read()


def test_feast_ui_serves_the_project(feast_settings: Settings) -> None:
    port = free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "stream", "feast", "ui", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **feast_settings.to_env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, projects = get(f"{base}/projects-list.json")
                break
            except OSError:
                if ui.poll() is not None or time.monotonic() > deadline:
                    err = ui.stderr.read().decode()[-3000:] if ui.stderr else ""
                    pytest.fail(f"feast ui did not answer:\n{err}")
                time.sleep(1)
        assert status == 200
        names = [p["id"] for p in json.loads(projects)["projects"]]
        assert feast_settings.feast_project in names
        status, page = get(f"{base}/")
        assert status == 200 and b'<div id="root">' in page
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
