"""Where a loader stands in its epoch, to continue a stopped job exactly there (mid-epoch resume).

Like Mosaic Streaming's ``StreamingDataLoader.state_dict()``: the loader records, after each batch
the training loop receives, the epoch and how many batches of it every rank has yielded; a new
loader given that state yields exactly the remaining batches, in the same order. The state is the
same on every rank of a data-parallel job (ranks step together), so saving rank 0's is enough.

A job restarted with another ``world_size``, ``batch_size`` or ``drop_last`` resumes by *samples*
(elastic): the positions of the epoch's global sequence already yielded (``consumed_after``) are
left out and the new ranks split the rest, in order (``sampling.rank_batches(consumed=...)``). A
changed seed, shuffle, shuffle window or dataset (row count, chunk layout) is refused with an
:class:`InvalidOptionError` naming the field: the remaining order would be another one.

>>> state = LoaderState.from_dict(loader.state_dict())   # DeepLakeDataLoader.state_dict() is to_dict()
>>> point = state.resume_point(world_size=4, batch_size=32, drop_last=False)
>>> point.epoch, point.start, point.consumed              # the plan a loader with these settings runs next
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.torch.sampling import ChunkLayout, Interval, consumed_after, merge_intervals, rank_num_batches

#: Version of the dict ``LoaderState.to_dict`` writes; ``from_dict`` refuses others.
STATE_FORMAT = 1

#: Fields that must be equal for the saved order to be the one the new loader would follow.
ORDER_FIELDS = ("seed", "shuffle", "shuffle_window", "num_rows", "layout_digest")


def layout_digest(layout: ChunkLayout) -> str:
    """A short digest of which rows share a chunk (the shuffle's input besides seed and epoch)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(np.ascontiguousarray(layout.offsets, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(layout.rows, dtype="<i8").tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class ResumePoint:
    """The plan a resumed loader runs first: ``epoch``, planned with ``consumed`` positions left out,
    starting at batch ``start`` of the rank's batches."""

    epoch: int
    start: int
    consumed: tuple[Interval, ...]


@dataclass(frozen=True)
class LoaderState:
    """A loader's position: ``batches_done`` batches of ``epoch`` yielded on every rank.

    ``consumed``: positions of the epoch's global sequence yielded before the plan of ``epoch``
    began (non-empty only after an elastic resume); ``batches_done`` counts batches of that plan.
    ``pass_end``: the epoch after the last one of the pass that was running (``None``: endless, or
    no pass running), for the loader to finish that pass after a resume. ``rank`` is informative:
    any rank may load any rank's state.
    """

    epoch: int
    batches_done: int
    seed: int
    shuffle: bool
    shuffle_window: int
    num_rows: int
    layout_digest: str
    world_size: int
    rank: int
    batch_size: int
    drop_last: bool
    consumed: tuple[Interval, ...] = ()
    pass_end: int | None = None

    def __post_init__(self) -> None:
        for name in ("epoch", "batches_done", "seed", "num_rows", "rank"):
            _require_int(name, getattr(self, name), 0)
        for name in ("shuffle_window", "world_size", "batch_size"):
            _require_int(name, getattr(self, name), 1)
        for name in ("shuffle", "drop_last"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidOptionError(f"loader state {name}={getattr(self, name)!r}: expected true or false")
        if not isinstance(self.layout_digest, str):
            raise InvalidOptionError(f"loader state layout_digest={self.layout_digest!r}: expected a string")
        if self.rank >= self.world_size:
            raise InvalidOptionError(f"loader state rank={self.rank} must be smaller than world_size={self.world_size}")
        if self.pass_end is not None:
            _require_int("pass_end", self.pass_end, 0)
        if not isinstance(self.consumed, (tuple, list)) or \
                not all(isinstance(i, (tuple, list)) and len(i) == 2 for i in self.consumed):
            raise InvalidOptionError(f"loader state consumed={self.consumed!r}: expected [[start, stop], ...]")
        for pair in self.consumed:
            for v in pair:
                _require_int("consumed", v, 0)
        object.__setattr__(self, "consumed", merge_intervals(self.consumed, self.num_rows))

    @property
    def samples_seen(self) -> int:
        """Samples of ``epoch`` yielded by all ranks together (Mosaic's ``sample_in_epoch``)."""
        done = consumed_after(self.num_rows, world_size=self.world_size, batch_size=self.batch_size,
                              drop_last=self.drop_last, batches_done=self.batches_done, consumed=self.consumed)
        return sum(b - a for a, b in done)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (what ``loader.state_dict()`` returns)."""
        out = asdict(self)
        out["consumed"] = [list(pair) for pair in self.consumed]
        out["format"] = STATE_FORMAT
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoaderState:
        """The state ``to_dict`` wrote; a missing, unknown or mistyped field is an InvalidOptionError."""
        if not isinstance(data, Mapping):
            raise InvalidOptionError(f"loader state: expected a dict from loader.state_dict(), got {type(data).__name__}")
        if data.get("format") != STATE_FORMAT:
            raise InvalidOptionError(f"loader state format={data.get('format')!r}: this version reads format "
                                     f"{STATE_FORMAT} (a dict from loader.state_dict())")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names - {"format"})
        if unknown:
            raise InvalidOptionError(f"loader state: unknown fields {unknown}")
        required = {f.name for f in fields(cls) if f.name not in ("consumed", "pass_end")}
        missing = sorted(required - set(data))
        if missing:
            raise InvalidOptionError(f"loader state: missing fields {missing}")
        values = {k: v for k, v in data.items() if k != "format"}
        values["consumed"] = tuple(tuple(p) if isinstance(p, (list, tuple)) else p
                                   for p in values.get("consumed", ()))
        return cls(**values)

    def check_compatible(self, *, seed: int, shuffle: bool, shuffle_window: int, num_rows: int,
                         layout_digest: str) -> None:
        """Refuse to resume a loader whose order differs from the one this state was taken in."""
        given = {"seed": seed, "shuffle": bool(shuffle), "shuffle_window": shuffle_window, "num_rows": num_rows,
                 "layout_digest": layout_digest}
        for name in ORDER_FIELDS:
            saved = getattr(self, name)
            if saved != given[name]:
                hint = " (the dataset's rows or chunks changed since the state was saved)" \
                    if name in ("num_rows", "layout_digest") else ""
                raise InvalidOptionError(f"loader state {name}={saved!r} but this loader has {name}={given[name]!r}: "
                                         f"cannot resume the saved order{hint}")

    def resume_point(self, *, world_size: int, batch_size: int, drop_last: bool) -> ResumePoint:
        """Where a loader with these settings continues: the same plan at batch ``batches_done``
        when they match the saved ones, else (elastic) a new plan of the epoch's remaining samples."""
        world_size = _require_int("world_size", world_size, 1, "loader option")
        batch_size = _require_int("batch_size", batch_size, 1, "loader option")
        drop_last = bool(drop_last)
        same = (world_size, batch_size, drop_last) == (self.world_size, self.batch_size, self.drop_last)
        saved_plan = {"world_size": self.world_size, "batch_size": self.batch_size, "drop_last": self.drop_last,
                      "consumed": self.consumed}
        most = max(rank_num_batches(self.num_rows, rank=r, **saved_plan) for r in range(self.world_size))
        if self.batches_done >= most:
            return ResumePoint(self.epoch + 1, 0, ())  # the saved epoch was over
        if same:
            return ResumePoint(self.epoch, self.batches_done, self.consumed)
        consumed = consumed_after(self.num_rows, batches_done=self.batches_done, **saved_plan)
        return ResumePoint(self.epoch, 0, consumed)


def _require_int(name: str, value: Any, minimum: int, what: str = "loader state") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidOptionError(f"{what} {name}={value!r}: expected an integer >= {minimum}")
    return int(value)
