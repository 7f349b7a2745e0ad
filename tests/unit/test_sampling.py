"""Shuffle and sharding math of the torch loader: pure functions, no I/O, no torch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.torch.sampling import (
    ChunkLayout,
    batch_owners,
    consumed_after,
    elastic_pass_order,
    global_order,
    loader_order,
    next_offset,
    rank_batches,
    rank_num_batches,
    worker_batches,
)


def _all_rows(layout, **kw):
    world = kw.pop("world_size", 1)
    workers = kw.pop("num_workers", 1)
    epoch = kw.pop("epoch", 0)
    out = []
    for rank in range(world):
        for batch in elastic_pass_order(layout, first_epoch=epoch, num_epochs=1, num_workers=workers,
                                        rank=rank, world_size=world, **kw):
            out.extend(batch.tolist())
    return out


def _global_from(layout, *, ranks, workers, epochs=1, **kw):
    """What ranks 0..ranks-1, each with ``workers`` DataLoader workers, yield in one pass, concatenated
    rank after rank, per epoch: a list (one entry per epoch) of row lists."""
    per_epoch: list[list[int]] = [[] for _ in range(epochs)]
    for rank in range(ranks):
        order = elastic_pass_order(layout, first_epoch=0, num_epochs=epochs, num_workers=workers, rank=rank,
                                   world_size=ranks, **kw)
        flat = np.concatenate(order).tolist() if order else []
        per_rank = len(flat) // epochs
        for e in range(epochs):
            per_epoch[e].extend(flat[e * per_rank : (e + 1) * per_rank])
    return per_epoch


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


@pytest.mark.parametrize("shuffle", [True, False])
def test_1x1_2x2_4x1_ranks_by_workers_give_the_same_global_order(shuffle):
    layout = ChunkLayout.from_chunk_codes(np.arange(1000) // 37)  # 28 chunks, the last one short
    kw = {"batch_size": 16, "seed": 11, "shuffle": shuffle, "shuffle_window": 3}
    one = _global_from(layout, ranks=1, workers=1, epochs=2, **kw)
    assert one == _global_from(layout, ranks=2, workers=2, epochs=2, **kw)
    assert one == _global_from(layout, ranks=4, workers=1, epochs=2, **kw)
    assert one == _global_from(layout, ranks=1, workers=3, epochs=2, **kw)
    for e, rows in enumerate(one):
        assert rows == global_order(layout, seed=11, epoch=e, shuffle=shuffle, shuffle_window=3).tolist()
    assert (one[0] != one[1]) == shuffle


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 400), rows_per_chunk=st.integers(1, 50), ranks=st.integers(1, 4), workers=st.integers(1, 4),
       batch=st.integers(1, 20), epochs=st.integers(1, 3), seed=st.integers(0, 1000), shuffle=st.booleans())
def test_global_order_does_not_depend_on_ranks_or_workers(n, rows_per_chunk, ranks, workers, batch, epochs, seed,
                                                          shuffle):
    layout = ChunkLayout.contiguous(n, rows_per_chunk)
    kw = {"batch_size": batch, "seed": seed, "shuffle": shuffle}
    assert _global_from(layout, ranks=ranks, workers=workers, epochs=epochs, **kw) == \
        _global_from(layout, ranks=1, workers=1, epochs=epochs, **kw)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), world=st.integers(1, 4), workers=st.integers(1, 3), batch=st.integers(1, 17),
       shuffle=st.booleans())
def test_drop_last_gives_every_rank_the_same_full_batches(n, world, workers, batch, shuffle):
    layout = ChunkLayout.contiguous(n, 13)
    counts = set()
    seen: list[int] = []
    for rank in range(world):
        batches = elastic_pass_order(layout, first_epoch=0, num_epochs=1, rank=rank, world_size=world,
                                     num_workers=workers, batch_size=batch, shuffle=shuffle, drop_last=True)
        assert all(len(b) == batch for b in batches)
        counts.add(len(batches))
        seen.extend(r for b in batches for r in b.tolist())
    assert len(counts) == 1
    assert len(seen) == len(set(seen))
    assert len(seen) >= n - world * batch - world


def test_only_the_last_batch_of_a_rank_is_short():
    layout = ChunkLayout.contiguous(103, 10)
    order = elastic_pass_order(layout, first_epoch=0, num_epochs=1, num_workers=3, batch_size=8, seed=1)
    sizes = [len(b) for b in order]
    assert sizes == [8] * 12 + [103 % 8]


def test_same_inputs_same_order_and_epochs_differ():
    layout = ChunkLayout.contiguous(500, 32)
    kw = {"num_workers": 2, "batch_size": 16, "seed": 42}
    a = [b.tolist() for b in elastic_pass_order(layout, first_epoch=0, num_epochs=1, **kw)]
    b = [b.tolist() for b in elastic_pass_order(layout, first_epoch=0, num_epochs=1, **kw)]
    c = [b.tolist() for b in elastic_pass_order(layout, first_epoch=1, num_epochs=1, **kw)]
    d = [b.tolist() for b in elastic_pass_order(layout, first_epoch=0, num_epochs=1, **{**kw, "seed": 43})]
    assert a == b
    assert a != c and a != d


def test_no_shuffle_keeps_row_order_with_several_workers():
    layout = ChunkLayout.from_chunk_codes(np.arange(50) % 3)  # rows of chunks interleaved
    order = elastic_pass_order(layout, first_epoch=0, num_epochs=2, num_workers=3, batch_size=4, shuffle=False)
    flat = np.concatenate(order).tolist()
    assert flat == list(range(50)) * 2


def test_no_shuffle_ranks_get_contiguous_slices():
    layout = ChunkLayout.contiguous(10, 4)
    r0 = np.concatenate(elastic_pass_order(layout, first_epoch=0, num_epochs=1, num_workers=2, batch_size=2,
                                           shuffle=False, rank=0, world_size=2)).tolist()
    r1 = np.concatenate(elastic_pass_order(layout, first_epoch=0, num_epochs=1, num_workers=2, batch_size=2,
                                           shuffle=False, rank=1, world_size=2)).tolist()
    assert (r0, r1) == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])


def test_ranks_read_disjoint_chunks_except_at_their_edges():
    layout = ChunkLayout.contiguous(1000, 50)  # 20 chunks
    chunk_sets = [set((np.concatenate(rank_batches(layout, rank=r, world_size=2, batch_size=10, seed=3,
                                                   shuffle_window=2)) // 50).tolist()) for r in range(2)]
    # Two slices of 500 rows of a sequence whose windows are 2 chunks (100 rows): no chunk is shared.
    assert not chunk_sets[0] & chunk_sets[1]
    assert len(chunk_sets[0] | chunk_sets[1]) == 20


def test_shuffle_window_bounds_how_many_chunks_a_batch_mixes():
    layout = ChunkLayout.contiguous(2000, 100)
    batches = rank_batches(layout, batch_size=32, seed=5, shuffle_window=3)
    for batch in batches:
        assert len(set((batch // 100).tolist())) <= 6  # a batch straddles at most two windows
    mixed = [len(set((b // 100).tolist())) for b in batches]
    assert min(mixed) >= 2  # every batch mixes samples of several chunks
    # Windows follow the permuted chunk order: consecutive windows hold arbitrary chunks.
    order = global_order(layout, seed=5, shuffle_window=3)
    first_window = set((order[:300] // 100).tolist())
    assert len(first_window) == 3 and first_window != {0, 1, 2}


def test_workers_deal_batches_in_turn_carrying_the_turn_over_epochs():
    assert worker_batches(7, 0, 3) == [0, 3, 6]
    assert worker_batches(7, 2, 3, start=2) == [4]
    assert worker_batches(7, 0, 3, start=2, offset=1) == [4]
    assert batch_owners(5, 2, start=2, offset=1).tolist() == [-1, -1, 1, 0, 1]
    assert next_offset(5, 2, start=2, offset=1) == 0
    owners = batch_owners(7, 3, start=2, offset=1)
    for w in range(3):
        assert np.flatnonzero(owners == w).tolist() == worker_batches(7, w, 3, start=2, offset=1)


def test_loader_order_round_robin_skips_finished_workers():
    a, b, c = (np.array([i]) for i in range(3))
    d, e = np.array([3]), np.array([4])
    assert [x.tolist() for x in loader_order([[a, c, e], [b], [d]])] == [[0], [1], [3], [2], [4]]


def test_resume_with_the_same_world_continues_with_the_remaining_batches():
    layout = ChunkLayout.contiguous(997, 40)
    kw = {"seed": 9, "epoch": 2, "world_size": 3, "batch_size": 8, "shuffle_window": 2}
    done = 5
    consumed = consumed_after(997, world_size=3, batch_size=8, drop_last=False, batches_done=done)
    for rank in range(3):
        full = rank_batches(layout, rank=rank, **kw)
        rest = rank_batches(layout, rank=rank, consumed=consumed, **kw)
        # the same rows in the same order; the rest of the rank's slice is cut at the same batch boundaries
        assert [b.tolist() for b in rest] == [b.tolist() for b in full[done:]]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), old_world=st.integers(1, 4), new_world=st.integers(1, 4), batch=st.integers(1, 12),
       new_batch=st.integers(1, 12), done=st.integers(0, 40), seed=st.integers(0, 100))
def test_elastic_resume_yields_every_remaining_row_once_in_global_order(n, old_world, new_world, batch, new_batch,
                                                                         done, seed):
    layout = ChunkLayout.contiguous(n, 17)
    order = global_order(layout, seed=seed, epoch=1)
    consumed = consumed_after(n, world_size=old_world, batch_size=batch, drop_last=False, batches_done=done)
    seen = []
    for rank in range(old_world):
        seen.extend(np.concatenate(rank_batches(layout, seed=seed, epoch=1, rank=rank, world_size=old_world,
                                                batch_size=batch) or [np.zeros(0, int)])[: done * batch].tolist())
    assert sorted(seen) == sorted(order[[p for a, b in consumed for p in range(a, b)]].tolist())
    rest = []
    for rank in range(new_world):
        assert len(rank_batches(layout, seed=seed, epoch=1, rank=rank, world_size=new_world, batch_size=new_batch,
                                consumed=consumed)) == rank_num_batches(n, rank=rank, world_size=new_world,
                                                                        batch_size=new_batch, drop_last=False,
                                                                        consumed=consumed)
        rest.extend(r for b in rank_batches(layout, seed=seed, epoch=1, rank=rank, world_size=new_world,
                                            batch_size=new_batch, consumed=consumed) for r in b.tolist())
    assert sorted(seen + rest) == list(range(n))
    assert rest == [r for r in order.tolist() if r not in set(seen)]  # the rest keeps the global order


@pytest.mark.parametrize("kw", [{"rank": 2, "world_size": 2}, {"batch_size": 0}, {"shuffle_window": 0},
                                {"seed": -1}, {"epoch": -1}])
def test_bad_options_are_rejected(kw):
    with pytest.raises(InvalidOptionError):
        rank_batches(ChunkLayout.contiguous(10, 2), **kw)


@pytest.mark.parametrize("args", [(5, 1, 1), (5, -1, 2), (5, 0, 0), (5, 0, 2, -1)])
def test_bad_worker_numbers_are_rejected(args):
    with pytest.raises(InvalidOptionError):
        worker_batches(*args)


def test_bad_consumed_intervals_are_rejected():
    with pytest.raises(InvalidOptionError, match="outside"):
        rank_batches(ChunkLayout.contiguous(10, 2), consumed=[(4, 12)])
