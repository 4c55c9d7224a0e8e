"""`python -m stream replay` refuses a split it cannot make before it touches any store."""

from __future__ import annotations

import pytest

from stream.cli import main


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--shard", "2/2"], "K/N needs N >= 1 and 0 <= K < N"),
        (["--shard", "one/two"], "is not K/N"),
        (["--processes", "0"], "needs at least 1"),
        (["--processes", "2", "--source", "kafka"], "split the archive"),
        (["--shard", "0/2", "--source", "jsonl", "--path", "x.jsonl"], "split the archive"),
        (["--shard", "0/2", "--processes", "2"], "pick one"),
    ],
)
def test_a_bad_split_is_refused(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", "--from", "2026-11-01", "--to", "2026-11-02", *args])
    assert code == 2
    assert says in capsys.readouterr().err
