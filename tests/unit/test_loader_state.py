"""LoaderState: the resume record of the torch loader (pure: no I/O, no torch)."""

from __future__ import annotations

import json

import pytest

from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.torch.loader_state import LoaderState, ResumePoint, layout_digest
from deeplake_spark.torch.sampling import ChunkLayout, global_order, rank_batches

LAYOUT = ChunkLayout.contiguous(1003, 40)
ORDER = {"seed": 5, "shuffle": True, "shuffle_window": 2}


def _state(**kw):
    base = {"epoch": 3, "batches_done": 7, "num_rows": 1003, "layout_digest": layout_digest(LAYOUT),
            "world_size": 2, "rank": 0, "batch_size": 16, "drop_last": False, **ORDER}
    return LoaderState(**{**base, **kw})


def _fields(state):
    return {k: v for k, v in state.to_dict().items() if k != "format"}


def _batches(point, *, world_size, batch_size, drop_last=False):
    return [rank_batches(LAYOUT, epoch=point.epoch, rank=r, world_size=world_size, batch_size=batch_size,
                         drop_last=drop_last, consumed=point.consumed, **ORDER)[point.start:]
            for r in range(world_size)]


def test_round_trips_through_json():
    state = _state(consumed=((10, 20), (0, 5)), pass_end=5)
    again = LoaderState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state and again.consumed == ((0, 5), (10, 20))


@pytest.mark.parametrize("field, value", [("seed", 6), ("shuffle", False), ("shuffle_window", 3),
                                          ("num_rows", 1002), ("layout_digest", "0" * 16)])
def test_a_changed_order_is_refused_naming_the_field(field, value):
    given = {**ORDER, "num_rows": 1003, "layout_digest": layout_digest(LAYOUT)}
    _state().check_compatible(**given)
    with pytest.raises(InvalidOptionError, match=f"loader state {field}=.*this loader has {field}="):
        _state().check_compatible(**{**given, field: value})


def test_the_layout_digest_sees_which_rows_share_a_chunk():
    assert layout_digest(LAYOUT) == layout_digest(ChunkLayout.contiguous(1003, 40))
    assert layout_digest(LAYOUT) != layout_digest(ChunkLayout.contiguous(1003, 41))


@pytest.mark.parametrize("change, match", [
    ({"format": 2}, "format=2"),
    ({"epoch": -1}, "epoch=-1"),
    ({"batch_size": True}, "batch_size=True"),
    ({"shuffle": 1}, "shuffle=1"),
    ({"rank": 2}, "rank=2 must be smaller"),
    ({"colour": "red"}, r"unknown fields \['colour'\]"),
    ({"consumed": [[5, 2000]]}, "outside"),
    ({"consumed": [5]}, "consumed="),
])
def test_bad_dicts_are_refused_naming_the_field(change, match):
    with pytest.raises(InvalidOptionError, match=match):
        LoaderState.from_dict({**_state().to_dict(), **change})
    data = _state().to_dict()
    del data["seed"]
    with pytest.raises(InvalidOptionError, match=r"missing fields \['seed'\]"):
        LoaderState.from_dict(data)


def test_same_settings_resume_at_the_next_batch_of_the_same_plan():
    point = _state().resume_point(world_size=2, batch_size=16, drop_last=False)
    assert (point.epoch, point.start, point.consumed) == (3, 7, ())
    full = _batches(ResumePoint(3, 0, ()), world_size=2, batch_size=16)
    rest = _batches(point, world_size=2, batch_size=16)
    assert [[b.tolist() for b in r] for r in rest] == [[b.tolist() for b in r[7:]] for r in full]


@pytest.mark.parametrize("world_size, batch_size, drop_last", [(3, 16, False), (1, 16, False), (2, 10, False),
                                                                (4, 8, True)])
def test_elastic_resume_yields_the_remaining_samples_in_global_order(world_size, batch_size, drop_last):
    state = _state()
    order = global_order(LAYOUT, epoch=3, **ORDER).tolist()
    seen = [r for rank in range(2) for b in rank_batches(LAYOUT, epoch=3, rank=rank, world_size=2, batch_size=16,
                                                          **ORDER)[:7] for r in b.tolist()]
    assert state.samples_seen == len(seen) == 2 * 7 * 16
    point = state.resume_point(world_size=world_size, batch_size=batch_size, drop_last=drop_last)
    assert point.epoch == 3 and point.start == 0
    rest = [r for rank in _batches(point, world_size=world_size, batch_size=batch_size, drop_last=drop_last)
            for b in rank for r in b.tolist()]
    assert not set(rest) & set(seen)
    assert rest == [r for r in order if r not in set(seen)][: len(rest)]
    if not drop_last:
        assert sorted(seen + rest) == list(range(1003))
    # A second stop after 2 batches of the new plan counts both plans' samples.
    later = LoaderState(**{**_fields(state), "world_size": world_size, "batch_size": batch_size,
                           "drop_last": drop_last, "batches_done": 2, "consumed": point.consumed})
    new_seen = sum(len(b) for rank in _batches(point, world_size=world_size, batch_size=batch_size,
                                               drop_last=drop_last) for b in rank[:2])
    assert later.samples_seen == len(seen) + new_seen


def test_a_finished_epoch_resumes_at_the_next_one():
    per_rank = -(-(1003 // 2 + 1) // 16)
    point = _state(batches_done=per_rank).resume_point(world_size=3, batch_size=16, drop_last=False)
    assert (point.epoch, point.start, point.consumed) == (4, 0, ())
