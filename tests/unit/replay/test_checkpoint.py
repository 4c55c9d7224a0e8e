"""A checkpoint saves what changed since its last save, loads the union of its saves, and a
save cut short loses that save alone: the state loaded is one that was saved whole."""

from __future__ import annotations

from pathlib import Path

import orjson

from stream.replay.checkpoint import Checkpoint


def saved_twice(path: Path) -> Checkpoint:
    checkpoint = Checkpoint(path, "k")
    checkpoint.add_cleared("sleep_features", ["u1", "u2"])
    checkpoint.events_done = 100
    checkpoint.save()
    checkpoint.add_cleared("sleep_features", ["u3"])
    checkpoint.add_cleared("social_features", ["u1"])
    checkpoint.events_done = 200
    checkpoint.save()
    return checkpoint


def test_each_save_appends_what_changed_and_a_load_unions_them(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    saved_twice(path)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["cleared"] for line in lines] == [
        {"sleep_features": ["u1", "u2"]},
        {"sleep_features": ["u3"], "social_features": ["u1"]},
    ]
    loaded = Checkpoint.load(path, "k")
    assert loaded.events_done == 200
    assert loaded.cleared == {"sleep_features": {"u1", "u2", "u3"}, "social_features": {"u1"}}
    loaded.add_cleared("social_features", ["u9"])
    loaded.events_done = 300
    loaded.save()  # appends to the file it loaded
    assert len(path.read_bytes().splitlines()) == 3
    assert Checkpoint.load(path, "k").cleared["social_features"] == {"u1", "u9"}


def test_a_save_cut_short_loses_that_save_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    saved_twice(path)
    with path.open("ab") as file:
        file.write(b'{"key": "k", "events_done": 300, "cleared": {"sleep_f')
    loaded = Checkpoint.load(path, "k")
    assert (loaded.events_done, loaded.cleared["sleep_features"]) == (200, {"u1", "u2", "u3"})
    loaded.save()  # the next save writes the whole state over the cut line
    assert len(path.read_bytes().splitlines()) == 1
    assert Checkpoint.load(path, "k").cleared == loaded.cleared


def test_another_runs_file_is_started_over(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    saved_twice(path)
    other = Checkpoint.load(path, "other")
    assert (other.events_done, other.cleared) == (0, {})
    other.events_done = 5
    other.save()
    assert Checkpoint.load(path, "other").events_done == 5
    assert Checkpoint.load(path, "k").events_done == 0


def test_a_run_started_afresh_writes_over_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    saved_twice(path)
    fresh = Checkpoint(path, "k")  # `--fresh`
    fresh.events_done = 7
    fresh.save()
    assert (Checkpoint.load(path, "k").events_done, Checkpoint.load(path, "k").cleared) == (7, {})
