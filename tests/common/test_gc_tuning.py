"""tune_gc: after it, reference cycles made by a long-running process are still
collected by the collector on its own (no explicit gc.collect), and the garbage
alive at any time stays bounded by the young-generation threshold."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.common.gc_tuning import GEN0_THRESHOLD, tune_gc


class Node:
    """A container that refers to itself: freed only by the cyclic collector."""

    def __init__(self) -> None:
        self.me = self
        self.payload = [0] * 4


@pytest.fixture
def tuned() -> Iterator[None]:
    before = gc.get_threshold()
    enabled = gc.isenabled()
    gc.enable()
    tune_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        if not enabled:
            gc.disable()


def test_it_freezes_what_is_alive_and_raises_the_young_threshold(tuned: None) -> None:
    assert gc.get_threshold()[0] == GEN0_THRESHOLD
    assert gc.get_freeze_count() > 0


def test_cycles_made_afterwards_are_collected_without_an_explicit_collect(tuned: None) -> None:
    collections = gc.get_stats()[0]["collections"]
    dead = 0
    alive_max = 0
    refs: list[weakref.ref[Node]] = []
    # 4 thresholds' worth of garbage cycles (each Node + its list: 2 containers)
    for n in range(2 * GEN0_THRESHOLD):
        refs.append(weakref.ref(Node()))
        if n % 10_000 == 0:
            alive = sum(1 for ref in refs if ref() is not None)
            alive_max = max(alive_max, alive)
            dead += len(refs) - alive
            refs = [ref for ref in refs if ref() is not None]
    assert gc.get_stats()[0]["collections"] > collections  # young collections ran on their own
    assert dead > GEN0_THRESHOLD  # most cycles were freed by them
    # never more garbage alive than one threshold's worth of containers (2 per Node)
    assert alive_max <= GEN0_THRESHOLD // 2 + 10_000


def test_a_cycle_through_a_frozen_object_is_still_freed_once_unfrozen(tuned: None) -> None:
    """Why the scorer freezes only once, at start-up (see gc_tuning): a frozen object
    that becomes garbage later waits for an unfreeze."""
    node = Node()
    ref = weakref.ref(node)
    gc.collect()
    gc.freeze()
    del node
    gc.collect()
    assert ref() is not None  # frozen: the collector does not see it
    gc.unfreeze()
    gc.collect()
    assert ref() is None
