"""The loader's order with real DataLoaders: the same global order for any ranks x workers (elastic
determinism), and mid-epoch resume with a real job: a training process is SIGKILLed midway, a new
process loads the last checkpointed ``loader.state_dict()`` and finishes; together they yield
exactly the batches of an uninterrupted run, in the same order (Mosaic Streaming's
StreamingDataLoader contract)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("torch")

import deeplake_spark as dls
from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.torch.chunk_share import PREFIX, default_base
from deeplake_spark.torch.sampling import global_order
from deeplake_spark.torch.source import from_dataset

N, BATCH = 480, 16

# A "training job": ``world`` ranks stepping together (as DDP ranks do), each a loader over the same
# dataset; after every step it checkpoints rank 0's loader.state_dict() and the batches received so
# far in ONE atomically replaced file (what a real job's checkpoint does), then "trains" a little.
JOB = textwrap.dedent("""
    import json, os, sys, time
    import deeplake_spark as dls

    path, checkpoint, options, world, resume = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), \\
        sys.argv[5] == "resume"
    ds = dls.open(path)
    options.setdefault("columns", ["id"])
    loaders = [ds.pytorch(rank=r, world_size=world, **options) for r in range(world)]
    received = []
    if resume:
        with open(checkpoint) as f:
            state = json.load(f)["state"]
        for loader in loaders:
            loader.load_state_dict(state)
    iterators = [iter(loader) for loader in loaders]
    step = 0
    while True:
        batches = [next(it, None) for it in iterators]
        if all(b is None for b in batches):
            break
        received.append([None if b is None else b["id"].tolist() for b in batches])
        tmp = checkpoint + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"state": loaders[0].state_dict(), "received": received}, f)
        os.replace(tmp, checkpoint)
        step += 1
        time.sleep(float(os.environ.get("STEP_SECONDS", "0")))
    with open(checkpoint + ".finished", "w") as f:
        json.dump(received, f)
""")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    path = str(root / "ds")
    ds = dls.create(path, {"x": dls.tensor("generic", dtype="float32", shape=(4,), compression="lz4",
                                           chunk_size=20 * 16), "id": "int64"})
    ds.append({"x": np.repeat(np.arange(N, dtype="float32")[:, None], 4, axis=1), "id": np.arange(N)})
    job = root / "job.py"
    job.write_text(JOB)
    return path, str(job)


@pytest.mark.parametrize("ranks, workers, engine", [(1, 1, "processes"), (2, 2, "processes"), (4, 1, "processes"),
                                                    (2, 2, "threads")])
def test_ranks_by_workers_yield_the_same_global_order(dataset, ranks, workers, engine):
    path, _ = dataset
    ds = dls.open(path)
    layout = from_dataset(ds, ["x", "id"]).layout()
    per_epoch: list[list[int]] = [[], []]
    for rank in range(ranks):
        loader = ds.pytorch(batch_size=BATCH, num_workers=workers, engine=engine, seed=4, shuffle_window=3,
                            num_epochs=2, rank=rank, world_size=ranks, columns=["x", "id"])
        ids = [i for batch in loader for i in batch["id"].tolist()]  # two epochs of this rank's slice
        per_epoch[0].extend(ids[: len(ids) // 2])
        per_epoch[1].extend(ids[len(ids) // 2 :])
    for epoch, ids in enumerate(per_epoch):  # ranks 0..n-1 concatenated: the epoch's global sequence
        assert ids == global_order(layout, seed=4, epoch=epoch, shuffle=True, shuffle_window=3).tolist()


def _start(dataset, checkpoint, options, world, mode, step_seconds):
    path, job = dataset
    env = {**os.environ, "STEP_SECONDS": str(step_seconds)}
    return subprocess.Popen([sys.executable, job, path, str(checkpoint), json.dumps(options), str(world), mode],
                            env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc, timeout=240):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]


def _uninterrupted(dataset, options, world):
    """The batches the job receives when nothing stops it (run here, stepping the ranks as JOB does)."""
    path, _ = dataset
    ds = dls.open(path)
    iterators = [iter(ds.pytorch(rank=r, world_size=world, **options)) for r in range(world)]
    received = []
    while True:
        batches = [next(it, None) for it in iterators]
        if all(b is None for b in batches):
            return received
        received.append([None if b is None else b["id"].tolist() for b in batches])


def _kill_after(dataset, tmp_path, options, world, steps):
    """Run the job until its checkpoint holds at least ``steps`` steps, then SIGKILL it (and its
    DataLoader workers: the whole process group) wherever it is."""
    checkpoint = tmp_path / "job.json"
    proc = _start(dataset, checkpoint, options, world, "fresh", 0.05)
    deadline = time.monotonic() + 240
    while True:
        assert proc.poll() is None, "the job ended before it was killed"
        assert time.monotonic() < deadline, "the job made no progress"
        try:
            saved = json.loads(checkpoint.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            saved = None
        if saved and len(saved["received"]) >= steps:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return checkpoint, proc.pid


def _ids(steps, rank=None):
    return [b for step in steps for r, b in enumerate(step) if b is not None and rank in (None, r)]


@pytest.mark.parametrize("engine", ["processes", "threads"])
def test_a_killed_job_resumes_with_exactly_the_remaining_batches(dataset, tmp_path, engine):
    options = {"batch_size": BATCH, "num_workers": 2, "engine": engine, "seed": 5, "shuffle": True, "num_epochs": 2,
               "columns": ["x", "id"]}
    expected = _uninterrupted(dataset, options, 1)
    per_epoch = -(-N // BATCH)
    assert len(expected) == 2 * per_epoch
    checkpoint, killed = _kill_after(dataset, tmp_path, options, 1, per_epoch // 2)
    saved = json.loads(checkpoint.read_text())
    before = saved["received"]
    assert 0 < len(before) < per_epoch  # killed mid-epoch (the first of the pass)

    def leftovers():
        return [f for f in os.listdir(default_base()) if f.startswith(f"{PREFIX}{killed}-")]

    assert bool(leftovers()) == (engine == "processes")  # the killed job's chunk share (worker processes)
    _finish(_start(dataset, checkpoint, options, 1, "resume", 0))
    after = json.loads((tmp_path / "job.json.finished").read_text())
    assert before + after == expected
    assert not leftovers()  # swept by the next loader that started


def test_a_job_resumed_on_more_ranks_yields_the_rest_of_the_epoch_once_in_global_order(dataset, tmp_path):
    options = {"batch_size": BATCH, "num_workers": 2, "engine": "threads", "seed": 9, "shuffle": True,
               "columns": ["x", "id"]}
    checkpoint, _ = _kill_after(dataset, tmp_path, options, 2, 4)
    saved = json.loads(checkpoint.read_text())
    before = _ids(saved["received"])
    _finish(_start(dataset, checkpoint, options, 3, "resume", 0))
    after = json.loads((tmp_path / "job.json.finished").read_text())
    seen = [i for b in before for i in b]
    rest = [i for r in range(3) for b in _ids(after, r) for i in b]  # rank after rank: the global order
    assert sorted(seen + rest) == list(range(N))  # every sample of the epoch exactly once
    path, _ = dataset
    layout = from_dataset(dls.open(path), ["x", "id"]).layout()  # rows grouped by their chunk of x
    order = global_order(layout, seed=9, epoch=0, shuffle=True, shuffle_window=4)
    assert rest == [i for i in order.tolist() if i not in set(seen)]


def test_a_state_from_another_order_is_refused(dataset):
    path, _ = dataset
    ds = dls.open(path)
    loader = ds.pytorch(batch_size=BATCH, num_workers=0, seed=1, columns=["id"])
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    with pytest.raises(InvalidOptionError, match="seed"):
        ds.pytorch(batch_size=BATCH, num_workers=0, seed=2, columns=["id"]).load_state_dict(state)
    with pytest.raises(InvalidOptionError, match="shuffle"):
        ds.pytorch(batch_size=BATCH, num_workers=0, seed=1, shuffle=False, columns=["id"]).load_state_dict(state)
