"""What the consumer reads again, and when the watchdog gives up waiting."""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from stream.worker.batches import undelivered
from stream.worker.watchdog import Watchdog


class Record(NamedTuple):
    offset: int


def test_everything_delivered_means_nothing_to_read_again() -> None:
    fetched = {"a": [Record(5), Record(6)], "b": [Record(0)]}
    assert undelivered(fetched, {"a": [5, 6], "b": [0]}) == {}


def test_a_batch_cut_short_goes_back_to_its_first_undelivered_record() -> None:
    fetched = {"a": [Record(5), Record(6), Record(7)], "b": [Record(3)]}
    assert undelivered(fetched, {"a": [5]}) == {"a": (8, 6), "b": (4, 3)}


@given(
    start=st.integers(0, 10**6),
    n=st.integers(1, 50),
    data=st.data(),
)
def test_the_records_from_the_rewind_point_on_include_every_undelivered_one(
    start: int, n: int, data: st.DataObject
) -> None:
    records = [Record(start + i) for i in range(n)]
    given_ = data.draw(st.sets(st.sampled_from([r.offset for r in records])))
    rewinds = undelivered({"tp": records}, {"tp": sorted(given_)})
    missing = {r.offset for r in records} - given_
    if not missing:
        assert rewinds == {}
    else:
        position, first = rewinds["tp"]
        assert position == start + n
        assert first == min(missing)


def test_the_watchdog_acts_only_after_a_quiet_stall_and_then_backs_off() -> None:
    dog = Watchdog(stall_after_s=30)
    assert not dog.should_act(0, unread=5, busy=False)  # suspicion starts
    assert not dog.should_act(29, unread=5, busy=False)
    assert dog.should_act(30, unread=5, busy=False)
    # Nothing moved after the seek: wait twice as long before the next.
    assert not dog.should_act(89, unread=5, busy=False)
    assert dog.should_act(90, unread=5, busy=False)
    assert dog.acted == 2
    # Progress resets the wait.
    dog.progress(91)
    assert not dog.should_act(120, unread=5, busy=False)
    assert dog.should_act(121, unread=5, busy=False)


def test_the_watchdog_leaves_a_busy_or_caught_up_worker_alone() -> None:
    dog = Watchdog(stall_after_s=30)
    for t in range(0, 300, 5):
        assert not dog.should_act(t, unread=100, busy=True)  # a write retried for minutes
        assert not dog.should_act(t + 1, unread=0, busy=False)  # idle, nothing to read
    assert dog.acted == 0


def test_progress_keeps_a_loaded_worker_from_looking_stalled() -> None:
    dog = Watchdog(stall_after_s=30)
    for t in range(0, 300, 5):
        dog.progress(t)
        assert not dog.should_act(t + 2, unread=1000, busy=False)


def test_a_commit_waits_for_the_offset_right_after_the_committed_one() -> None:
    from stream.worker.batches import head_missing

    # Committed 4 means 4 is the next to read: 5 acknowledged alone must not commit past 4.
    assert head_missing(4, [5], in_gap=False)
    assert head_missing(4, [5, 6, 7], in_gap=False)
    assert not head_missing(4, [4, 5], in_gap=False)
    assert not head_missing(4, [5], in_gap=True)  # 4 is not in the log at all
    assert not head_missing(4, [], in_gap=False)
    assert not head_missing(None, [5], in_gap=False)  # nothing committed yet: Faust decides
