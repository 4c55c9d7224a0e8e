"""What the sharded run adds up and shows, without processes: its report and its display."""

from __future__ import annotations

import io
import queue

from stream.replay.parallel import QueueMeter, combine
from stream.replay.progress import Progress
from stream.replay.run import ReplayReport


def test_the_whole_report_adds_the_shards_counts_and_takes_the_wall_time() -> None:
    shards = [
        ReplayReport(events=10, applied=9, duplicates=1, rows_written=9, users=3, seconds=5.0),
        ReplayReport(events=20, applied=18, invalid=2, rows_written=18, users=4, seconds=7.0),
    ]
    whole = combine(shards, seconds=8.0)
    assert (whole.events, whole.applied, whole.duplicates, whole.invalid) == (30, 27, 1, 2)
    assert (whole.rows_written, whole.users, whole.seconds) == (27, 7, 8.0)
    assert whole.rate == 30 / 8.0


def test_a_shard_meter_sends_its_progress_alone() -> None:
    sent: queue.Queue[tuple[str, int, object]] = queue.Queue()
    meter = QueueMeter(sent, 2, 500)
    meter.update(100)
    meter.update(0)
    meter.close()
    # The parent counted the range for every shard: no total of the shard's own.
    assert [sent.get_nowait() for _ in range(sent.qsize())] == [("done", 2, 100)]


def test_one_display_for_the_whole_with_a_total_known_later() -> None:
    out = io.StringIO()
    progress = Progress(None, out, label="replay, 2 shards,")
    progress.total = 400
    progress.note = " (1/2 shards done)"
    progress.update(100, force=True)
    line = out.getvalue()
    assert line.startswith("replay, 2 shards, 100/400 [")
    assert "25%" in line
    assert line.rstrip().endswith("(1/2 shards done)")
