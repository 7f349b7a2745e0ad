"""Shuffle and sharding math of the torch loader: pure functions, no I/O, no torch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.torch.sampling import (
    ChunkLayout,
    epoch_plan,
    loader_order,
    pass_order,
)


def _all_rows(layout, **kw):
    world = kw.pop("world_size", 1)
    out = []
    for rank in range(world):
        for plan in epoch_plan(layout, rank=rank, world_size=world, **kw):
            out.extend(plan.rows.tolist())
    return out


def test_layout_groups_rows_by_chunk_in_first_use_order():
    layout = ChunkLayout.from_chunk_codes([7, 3, 7, 3, 9])
    blocks = [layout.rows[a:b].tolist() for a, b in zip(layout.offsets[:-1], layout.offsets[1:])]
    assert blocks == [[0, 2], [1, 3], [4]]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 300),
    rows_per_chunk=st.integers(1, 40),
    world=st.integers(1, 4),
    workers=st.integers(1, 4),
    batch=st.integers(1, 17),
    seed=st.integers(0, 2**32 - 1),
    epoch=st.integers(0, 5),
    shuffle=st.booleans(),
)
def test_every_row_exactly_once_across_ranks_and_workers(n, rows_per_chunk, world, workers, batch, seed, epoch,
                                                         shuffle):
    layout = ChunkLayout.contiguous(n, rows_per_chunk)
    rows = _all_rows(layout, world_size=world, num_workers=workers, batch_size=batch, seed=seed, epoch=epoch,
                     shuffle=shuffle)
    assert sorted(rows) == list(range(n))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), world=st.integers(1, 4), workers=st.integers(1, 3), batch=st.integers(1, 17),
       shuffle=st.booleans())
def test_drop_last_gives_every_rank_the_same_full_batches(n, world, workers, batch, shuffle):
    layout = ChunkLayout.contiguous(n, 13)
    counts = set()
    seen: list[int] = []
    for rank in range(world):
        plans = epoch_plan(layout, rank=rank, world_size=world, num_workers=workers, batch_size=batch,
                           shuffle=shuffle, drop_last=True)
        batches = [b for p in plans for b in p.batches]
        assert all(len(b) == batch for b in batches)
        counts.add(len(batches))
        seen.extend(r for b in batches for r in b.tolist())
    assert len(counts) == 1
    assert len(seen) == len(set(seen))
    assert len(seen) >= n - world * batch - world


def test_only_the_last_batch_of_a_rank_is_short():
    layout = ChunkLayout.contiguous(103, 10)
    order = pass_order(layout, first_epoch=0, num_epochs=1, num_workers=3, batch_size=8, seed=1)
    sizes = sorted(len(b) for b in order)
    assert sizes[0] == 103 % 8 and sizes[1:] == [8] * (len(order) - 1)


def test_same_inputs_same_order_and_epochs_differ():
    layout = ChunkLayout.contiguous(500, 32)
    kw = {"num_workers": 2, "batch_size": 16, "seed": 42}
    a = [b.tolist() for b in pass_order(layout, first_epoch=0, num_epochs=1, **kw)]
    b = [b.tolist() for b in pass_order(layout, first_epoch=0, num_epochs=1, **kw)]
    c = [b.tolist() for b in pass_order(layout, first_epoch=1, num_epochs=1, **kw)]
    d = [b.tolist() for b in pass_order(layout, first_epoch=0, num_epochs=1, **{**kw, "seed": 43})]
    assert a == b
    assert a != c and a != d


def test_no_shuffle_keeps_row_order_with_several_workers():
    layout = ChunkLayout.from_chunk_codes(np.arange(50) % 3)  # rows of chunks interleaved
    order = pass_order(layout, first_epoch=0, num_epochs=2, num_workers=3, batch_size=4, shuffle=False)
    flat = np.concatenate(order).tolist()
    assert flat == list(range(50)) * 2


def test_no_shuffle_ranks_get_contiguous_slices():
    layout = ChunkLayout.contiguous(10, 4)
    r0 = np.concatenate(pass_order(layout, first_epoch=0, num_epochs=1, num_workers=2, batch_size=2,
                                   shuffle=False, rank=0, world_size=2)).tolist()
    r1 = np.concatenate(pass_order(layout, first_epoch=0, num_epochs=1, num_workers=2, batch_size=2,
                                   shuffle=False, rank=1, world_size=2)).tolist()
    assert (r0, r1) == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])


def test_a_worker_reads_whole_chunks_except_at_its_edges():
    layout = ChunkLayout.contiguous(1000, 50)  # 20 chunks
    plans = epoch_plan(layout, num_workers=2, batch_size=10, seed=3, shuffle_window=2)
    chunk_sets = [set((p.rows // 50).tolist()) for p in plans]
    # 20 chunks, split in two parts of 500 rows: at most one chunk is shared.
    assert len(chunk_sets[0] & chunk_sets[1]) <= 1
    assert len(chunk_sets[0] | chunk_sets[1]) == 20


def test_shuffle_window_bounds_how_many_chunks_a_batch_mixes():
    layout = ChunkLayout.contiguous(2000, 100)
    plans = epoch_plan(layout, num_workers=1, batch_size=32, seed=5, shuffle_window=3)
    for batch in plans[0].batches:
        assert len(set((batch // 100).tolist())) <= 6  # a batch straddles at most two windows
    mixed = [len(set((b // 100).tolist())) for b in plans[0].batches]
    assert max(mixed) >= 2  # samples of different chunks are mixed


def test_loader_order_round_robin_skips_finished_workers():
    a, b, c = (np.array([i]) for i in range(3))
    d, e = np.array([3]), np.array([4])
    assert [x.tolist() for x in loader_order([[a, c, e], [b], [d]])] == [[0], [1], [3], [2], [4]]


@pytest.mark.parametrize("kw", [{"rank": 2, "world_size": 2}, {"num_workers": 0}, {"batch_size": 0},
                                {"shuffle_window": 0}, {"seed": -1}])
def test_bad_options_are_rejected(kw):
    with pytest.raises(InvalidOptionError):
        epoch_plan(ChunkLayout.contiguous(10, 2), **kw)
