"""Each chunk is read from storage once per epoch per rank when worker processes build alternate
batches, through the cross-process chunk share (real dataset, real forked processes, reads counted
by the storage layer's read log) -- and the share survives killed and failing workers."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

import deeplake_spark as dls
from deeplake_spark.errors import CorruptChunkError, StorageError
from deeplake_spark.torch.chunk_share import ChunkShare, pid_alive, sweep_stale
from deeplake_spark.torch.prefetch import ChunkPrefetcher, chunk_users
from deeplake_spark.torch.sampling import batch_owners, rank_batches, worker_batches
from deeplake_spark.torch.source import from_dataset

N, ROWS_PER_CHUNK, BATCH = 600, 20, 12  # 30 chunks; a chunk spans ~1.7 batches, as in issue #13
FORK = mp.get_context("fork")


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("share") / "ds")
    ds = dls.create(path, {
        "x": dls.tensor("generic", dtype="float32", shape=(16,), compression="lz4", chunk_size=ROWS_PER_CHUNK * 64),
        "raw": dls.tensor("generic", dtype="uint8", shape=(8,), chunk_size=ROWS_PER_CHUNK * 8 * 3),
        "rag": dls.tensor("generic", dtype="int32", compression="lz4", chunk_size=ROWS_PER_CHUNK * 16),
        "id": "int64",
    })
    ds.append({"x": np.repeat(np.arange(N, dtype="float32")[:, None], 16, axis=1),
               "raw": np.repeat((np.arange(N) % 251).astype("uint8")[:, None], 8, axis=1),
               "rag": [np.full((i % 3 + 1, 2), i, dtype="int32") for i in range(N)], "id": np.arange(N)})
    return dls.open(path)


def _worker(source, share, worker, workers, shuffle, out):
    """One loader worker's epoch: builds its batches (every ``workers``-th) from shared chunks."""
    batches = rank_batches(source.layout(), seed=3, epoch=1, batch_size=BATCH, shuffle=shuffle, shuffle_window=3)
    owners = batch_owners(len(batches), workers)
    mine = worker_batches(len(batches), worker, workers)
    shared = share.epoch(1, worker=worker, users=chunk_users(source.tensors, batches, owners))
    result = []
    with ChunkPrefetcher(source.tensors, [batches[b] for b in mine], prefetch_chunks=2, io_threads=2,
                         shared=shared) as prefetcher:
        for i, b in enumerate(mine):
            chunks = prefetcher.chunks_for(i)
            values = []
            for t_pos, tensor in enumerate(source.tensors):
                column = []
                for r in batches[b]:
                    chunk = chunks[(t_pos, int(tensor.chunk_codes[r]))]
                    index = int(tensor.sample_index[r])
                    sample = chunk.fixed[index] if chunk.fixed is not None else chunk.reader.sample(index)
                    column.append(sample.tolist())
                values.append(column)
            result.append((b, batches[b].tolist(), values))
            prefetcher.release(i)
    out.put((worker, result, shared.loads))


def _run_workers(source, share, workers, shuffle):
    out = FORK.Queue()
    procs = [FORK.Process(target=_worker, args=(source, share, w, workers, shuffle, out)) for w in range(workers)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return results


def test_a_sweep_leaves_folders_of_other_pid_namespaces_and_unmarked_ones(tmp_path):
    """A container sharing /dev/shm has its own pids: a folder marked with another pid namespace (or
    with none) is never swept, even when its pid is dead here; one of this namespace is."""
    from deeplake_spark.torch.chunk_share import PREFIX, pid_namespace

    dead = FORK.Process(target=lambda: None)
    dead.start()
    dead.join()
    ours = f"{PREFIX}{dead.pid}-{pid_namespace()}-abc"
    foreign = f"{PREFIX}{dead.pid}-{int(pid_namespace()) + 1}-abc"
    unmarked = f"{PREFIX}{dead.pid}-abc"
    for name in (ours, foreign, unmarked):
        os.makedirs(tmp_path / name / "pass-0-epoch-0")
    assert sweep_stale(str(tmp_path)) == 1
    assert sorted(os.listdir(tmp_path)) == sorted([foreign, unmarked])


@pytest.mark.parametrize("shuffle", [True, False])
def test_two_worker_processes_read_each_chunk_once_per_epoch(ds, tmp_path, monkeypatch, shuffle):
    log_file = tmp_path / "io.log"
    monkeypatch.setenv("DEEPLAKE_SPARK_IO_LOG", str(log_file))
    source = from_dataset(ds, ["x", "raw", "rag", "id"])
    share = ChunkShare.create(base=str(tmp_path))
    results = _run_workers(source, share, 2, shuffle)

    reads = Counter(line.split()[0] for line in log_file.read_text().splitlines() if line.split()[0].endswith(".dltc"))
    expected = {t.spec.name: len(t.chunk_ids) for t in source.tensors}
    for name, count in expected.items():
        assert sum(1 for r in reads if f"/{name}/" in r) == count
    assert expected["x"] == N // ROWS_PER_CHUNK
    assert set(reads.values()) == {1}  # every chunk of the three tensors read exactly once
    assert sum(loads for _, _, loads in results) == sum(expected.values())

    built = sorted((b, rows, values) for _, result, _ in results for b, rows, values in result)
    assert [b for b, _, _ in built] == list(range(-(-N // BATCH)))
    assert sorted(r for _, rows, _ in built for r in rows) == list(range(N))
    for _, rows, (x, raw, rag) in built:  # values come from the right chunk and sample
        assert [v[0] for v in x] == [float(r) for r in rows]
        assert [v[0] for v in raw] == [r % 251 for r in rows]
        assert rag == [[[r, r]] * (r % 3 + 1) for r in rows]  # ragged lz4 samples through the share
    # The last user of each chunk removed it, and the last worker the epoch's folder.
    assert os.listdir(share.root) == []
    share.remove()
    assert not os.path.exists(share.root)


def test_one_worker_reads_without_files(ds, tmp_path, monkeypatch):
    source = from_dataset(ds, ["x"])
    share = ChunkShare.create(base=str(tmp_path))
    [(_, result, loads)] = _run_workers(source, share, 1, True)
    assert loads == len(source.tensors[0].chunk_ids) and len(result) == -(-N // BATCH)
    assert os.listdir(share.root) == []


def _users(workers=(0, 1)):
    return {"c": frozenset(workers)}


def test_a_dead_claimers_claim_is_taken_over(tmp_path):
    share = ChunkShare.create(base=str(tmp_path), timeout=20)
    epoch = share.epoch(0, worker=1, users=_users())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not pid_alive(gone.pid)
    with open(os.path.join(epoch.folder, "c.claim"), "w") as f:
        f.write(str(gone.pid))
    parts = epoch.acquire("c", lambda: [b"abc", b"defg"])
    assert [bytes(p) for p in parts] == [b"abc", b"defg"] and epoch.loads == 1


def test_a_worker_killed_while_loading_does_not_block_the_others(tmp_path):
    share = ChunkShare.create(base=str(tmp_path), timeout=60)

    def slow_loader():
        share.epoch(0, worker=0, users=_users()).acquire("c", lambda: time.sleep(60) or [b"never"])

    claimer = FORK.Process(target=slow_loader)
    claimer.start()
    folder = share.epoch(0, worker=1, users=_users()).folder
    claim = os.path.join(folder, "c.claim")
    deadline = time.monotonic() + 30
    while not (os.path.exists(claim) and open(claim).read()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(claimer.pid, signal.SIGKILL)  # not reaped yet: a zombie, which counts as dead
    started = time.monotonic()
    epoch = share.epoch(0, worker=1, users=_users())
    parts = epoch.acquire("c", lambda: [b"loaded by the survivor"])
    assert bytes(parts[0]) == b"loaded by the survivor" and epoch.loads == 1
    assert time.monotonic() - started < 10
    claimer.join()


def test_a_live_claimer_that_never_finishes_times_out_naming_the_chunk(tmp_path):
    share = ChunkShare.create(base=str(tmp_path), timeout=0.3)
    epoch = share.epoch(0, worker=1, users=_users())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with open(os.path.join(epoch.folder, "c.claim"), "w") as f:
            f.write(str(sleeper.pid))
        with pytest.raises(StorageError, match=rf"waited 0.3 s for chunk c claimed by pid {sleeper.pid}"):
            epoch.acquire("c", lambda: [b"x"])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [bytes(p) for p in epoch.acquire("c", lambda: [b"x"])] == [b"x"]  # now dead: taken over


def test_a_claim_whose_pid_was_reused_by_another_process_is_taken_over(tmp_path):
    share = ChunkShare.create(base=str(tmp_path), timeout=20)
    epoch = share.epoch(0, worker=1, users=_users())
    with open(os.path.join(epoch.folder, "c.claim"), "w") as f:
        f.write(f"{os.getpid()} 1")  # a live pid, but not the process that wrote the claim (start time 1)
    assert [bytes(p) for p in epoch.acquire("c", lambda: [b"x"])] == [b"x"]


def test_a_failed_load_lets_the_next_worker_meet_the_error_itself(tmp_path):
    share = ChunkShare.create(base=str(tmp_path))
    first, second = (share.epoch(0, worker=w, users=_users()) for w in (0, 1))

    def broken():
        raise CorruptChunkError("tensor 'x', chunk file x/c.dltc: payload checksum mismatch")

    for epoch in (first, second):
        with pytest.raises(CorruptChunkError, match="checksum mismatch"):
            epoch.acquire("c", broken)
    assert os.listdir(first.folder) == []


def test_the_last_user_removes_a_chunk(tmp_path):
    share = ChunkShare.create(base=str(tmp_path))
    a, b = (share.epoch(0, worker=w, users=_users()) for w in (0, 1))
    loaded = a.acquire("c", lambda: [np.arange(10, dtype="int64").tobytes()])
    mapped = b.acquire("c", lambda: [b"not read"])
    assert bytes(mapped[0]) == bytes(loaded[0]) and (a.loads, b.loads) == (1, 0)
    b.done("c")
    assert os.path.exists(os.path.join(a.folder, "c"))
    a.done("c")
    assert os.listdir(a.folder) == []
    assert np.frombuffer(mapped[0], dtype="int64").tolist() == list(range(10))  # still mapped after removal
    a.close()
    assert not os.path.exists(a.folder)


def test_folders_of_dead_loaders_are_swept_and_a_share_is_removed_with_its_owner(tmp_path):
    child = FORK.Process(target=lambda: os.makedirs(ChunkShare.create(base=str(tmp_path)).root + "/pass-0-epoch-0"))
    child.start()
    child.join()
    # The child's share object died with it, but only its creator removes a folder: os._exit skips that.
    leftovers = os.listdir(tmp_path)
    assert len(leftovers) == 1
    share = ChunkShare.create(base=str(tmp_path))  # sweeps the dead loader's folder
    assert os.listdir(tmp_path) == [os.path.basename(share.root)]
    assert sweep_stale(str(tmp_path)) == 0
    root = share.root
    del share
    assert not os.path.exists(root)


@pytest.mark.parametrize("shuffle", [True, False])
def test_a_dataloader_with_two_worker_processes_reads_each_chunk_once(ds, tmp_path, monkeypatch, shuffle):
    torch = pytest.importorskip("torch")
    log_file = tmp_path / "io.log"
    monkeypatch.setenv("DEEPLAKE_SPARK_IO_LOG", str(log_file))
    loader = ds.pytorch(batch_size=BATCH, num_workers=2, engine="processes", shuffle=shuffle, seed=3,
                        shuffle_window=3, prefetch_chunks=1, columns=["x", "raw", "id"])
    root = loader.dataset.chunk_share.root
    ids, peak = [], 0
    for batch in loader:
        assert torch.equal(batch["x"][:, 0].long(), batch["id"])
        ids.extend(batch["id"].tolist())
        live = [f for _, _, files in os.walk(root) for f in files if f.startswith("t0-") and "." not in f]
        peak = max(peak, len(live))
    assert ids == (sorted(ids) if not shuffle else ids) and sorted(ids) == list(range(N))
    reads = Counter(line.split()[0] for line in log_file.read_text().splitlines() if "/x/" in line or "/raw/" in line)
    source = from_dataset(ds, ["x", "raw"])
    assert len(reads) == sum(len(t.chunk_ids) for t in source.tensors) and set(reads.values()) == {1}
    # Shared chunks live from their first to their last use: a shuffle window or two, the batches the
    # DataLoader lets a worker run ahead and the prefetch, never the whole epoch (30 chunks of x).
    assert 0 < peak <= 12
    del loader, batch
    gc.collect()
    assert not os.path.exists(root)  # the loader's share folder goes with the loader


def test_a_damaged_chunk_fails_the_dataloader_naming_it_instead_of_blocking_the_other_worker(tmp_path):
    path = str(tmp_path / "ds")
    ds = dls.create(path, {"x": dls.tensor("generic", dtype="float32", shape=(16,), compression="lz4",
                                           chunk_size=ROWS_PER_CHUNK * 64), "id": "int64"})
    ds.append({"x": np.zeros((N, 16), dtype="float32"), "id": np.arange(N)})
    chunk_id = from_dataset(dls.open(path), ["x"]).tensors[0].chunk_ids[7]
    [damaged] = [os.path.join(d, f) for d, _, files in os.walk(path) for f in files if f.startswith(chunk_id)]
    data = bytearray(open(damaged, "rb").read())
    data[-5] ^= 0xFF
    with open(damaged, "wb") as f:
        f.write(data)
    loader = dls.open(path).pytorch(batch_size=BATCH, num_workers=2, engine="processes", shuffle_window=3)
    with pytest.raises(CorruptChunkError, match=f"chunk file .*{chunk_id}.*checksum mismatch"):
        for _ in loader:
            pass


def _acquire_with_a_file_size_limit(root, out):
    # A real "no room" write: the kernel refuses to grow a file past RLIMIT_FSIZE (EFBIG).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    epoch = ChunkShare(root, owner_pid=-1).epoch(0, worker=0, users=_users())
    parts = epoch.acquire("c", lambda: [bytes(3 << 20)])
    out.put((len(parts[0]), epoch.loads, sorted(os.listdir(epoch.folder))))


def test_a_full_share_falls_back_to_reading_unshared(tmp_path):
    share = ChunkShare.create(base=str(tmp_path))
    out = FORK.Queue()
    child = FORK.Process(target=_acquire_with_a_file_size_limit, args=(share.root, out))
    child.start()
    size, loads, files = out.get(timeout=60)
    child.join(30)
    assert (size, loads, files) == (3 << 20, 1, [])  # the chunk, loaded once, no partial file or claim left
    # The other worker finds no claim and no file: it reads the chunk itself.
    other = share.epoch(0, worker=1, users=_users())
    assert bytes(other.acquire("c", lambda: [b"own copy"])[0]) == b"own copy" and other.loads == 1
