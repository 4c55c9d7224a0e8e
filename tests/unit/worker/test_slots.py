"""A worker takes the lowest free slot of its machine, and the same one again after it dies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream.worker.slots import take_slot


def test_the_lowest_free_slot_and_the_same_one_again(tmp_path: Path) -> None:
    first = take_slot(tmp_path, "app")
    second = take_slot(tmp_path, "app")
    assert first.instance_id.endswith("-0") and second.instance_id.endswith("-1")
    assert first.directory != second.directory
    first.lock.close()  # what the kernel does when the process dies
    again = take_slot(tmp_path, "app")
    assert again.instance_id == first.instance_id and again.directory == first.directory


def test_a_named_slot_held_elsewhere_is_refused(tmp_path: Path) -> None:
    held = take_slot(tmp_path, "app", "pod-3")
    assert held.instance_id == "pod-3"
    with pytest.raises(RuntimeError, match="pod-3"):
        take_slot(tmp_path, "app", "pod-3")


def test_a_killed_process_frees_its_slot(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from stream.worker.slots import take_slot; "
        f"s = take_slot(Path({str(tmp_path)!r}), 'app'); print(s.instance_id, flush=True); "
        "time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    taken = child.stdout.readline().strip()
    assert take_slot(tmp_path, "app").instance_id != taken  # held while it lives
    child.kill()
    child.wait()
    assert take_slot(tmp_path, "app").instance_id == taken
