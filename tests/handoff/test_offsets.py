"""Committing only what was dealt with, when records finish out of order."""

from aiokafka import TopicPartition

from services.handoff.consumer import OffsetTracker

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


def test_commit_stops_at_the_oldest_unfinished_record() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12, 13):
        tracker.start(P0, offset)
    tracker.finish(P0, 12)
    tracker.finish(P0, 11)
    assert tracker.committable({P0}) == {}  # 10 is still in hand
    tracker.finish(P0, 10)
    assert tracker.committable({P0}) == {P0: 13}  # 10-12 done, 13 not
    tracker.committed({P0: 13})
    assert tracker.committable({P0}) == {}  # nothing new
    tracker.finish(P0, 13)
    assert tracker.committable({P0}) == {P0: 14}


def test_partitions_are_independent_and_only_owned_ones_are_committed() -> None:
    tracker = OffsetTracker()
    tracker.start(P0, 5)
    tracker.start(P1, 7)
    tracker.finish(P1, 7)
    assert tracker.committable({P0, P1}) == {P1: 8}
    assert tracker.committable({P0}) == {}  # P1 was revoked: not ours to commit


def test_records_fetched_again_after_a_rebalance_start_over() -> None:
    tracker = OffsetTracker()
    tracker.start(P0, 20)
    tracker.start(P0, 21)
    tracker.start(P0, 20)  # the partition came back: fetched again from its commit
    tracker.finish(P0, 21)  # the old in-hand record of 21 finishing counts for nothing
    assert tracker.committable({P0}) == {}
    tracker.finish(P0, 20)
    assert tracker.committable({P0}) == {P0: 21}
    tracker.start(P0, 21)  # fetched again: the stale finish above must not count
    tracker.start(P0, 22)
    tracker.finish(P0, 22)
    assert tracker.committable({P0}) == {P0: 21}
    tracker.finish(P0, 21)
    assert tracker.committable({P0}) == {P0: 23}
