"""The loader's chunk cache across epochs (main and threads engines): epoch 2 and later of a dataset
that fits read no chunk file, give the same values, stay within ``cache_bytes``, stay safe from
in-place edits of batches, and never keep a chunk that failed verification (real dataset, real
DataLoader, reads counted by the storage layer's read log)."""

from __future__ import annotations

import glob
import os
from collections import Counter

import numpy as np
import pytest

import deeplake_spark as dls
from deeplake_spark.errors import CorruptChunkError, InvalidOptionError
from deeplake_spark.torch.chunk_cache import ChunkCache, default_cache_bytes

N, ROWS_PER_CHUNK, BATCH = 400, 40, 16  # 10 chunks per tensor


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cache") / "ds")
    ds = dls.create(path, {
        "raw": dls.tensor("generic", dtype="uint8", shape=(4, 8), compression="none", chunk_size=ROWS_PER_CHUNK * 32),
        "x": dls.tensor("generic", dtype="float32", shape=(8,), compression="lz4", chunk_size=ROWS_PER_CHUNK * 32),
        "rag": dls.tensor("generic", dtype="int32", compression="lz4", chunk_size=ROWS_PER_CHUNK * 16),
        "id": "int64",
    })
    ds.append({"raw": (np.arange(N * 32) % 251).astype("uint8").reshape(N, 4, 8),
               "x": np.repeat(np.arange(N, dtype="float32")[:, None], 8, axis=1),
               "rag": [np.full((i % 3 + 1, 2), i, dtype="int32") for i in range(N)], "id": np.arange(N)})
    return dls.open(path)


def _chunk_reads(log_file) -> Counter:
    if not log_file.exists():
        return Counter()
    lines = log_file.read_text().splitlines()
    reads = Counter(line.split()[0] for line in lines if line.split()[0].endswith(".dltc"))
    log_file.unlink()
    return reads


def _epoch(loader) -> list[dict]:
    return [{"id": b["id"].tolist(), "raw": b["raw"].numpy().copy(), "x": b["x"].numpy().copy(),
             "rag": [r.tolist() for r in b["rag"]]} for b in loader]


def _check_values(batches) -> None:
    ids = [i for b in batches for i in b["id"]]
    assert sorted(ids) == list(range(N))
    for b in batches:
        rows = np.asarray(b["id"])
        assert (b["raw"] == (rows[:, None] * 32 + np.arange(32)).reshape(-1, 4, 8) % 251).all()
        assert (b["x"] == rows[:, None].astype("float32")).all()
        assert b["rag"] == [[[r, r]] * (r % 3 + 1) for r in rows.tolist()]


@pytest.mark.parametrize("engine,shuffle", [("main", False), ("threads", True)])
def test_later_epochs_read_no_chunk_file(ds, tmp_path, monkeypatch, engine, shuffle):
    log_file = tmp_path / "io.log"
    monkeypatch.setenv("DEEPLAKE_SPARK_IO_LOG", str(log_file))
    workers = 0 if engine == "main" else 2
    loader = ds.pytorch(batch_size=BATCH, num_workers=workers, engine="auto" if engine == "main" else engine,
                        shuffle=shuffle, seed=4, collate={"rag": "list"})
    assert loader.engine == engine
    chunks = sum(len(glob.glob(os.path.join(ds.path, "_tensors", t, "*.dltc"))) for t in ("raw", "x", "rag"))
    first = _epoch(loader)
    reads = _chunk_reads(log_file)
    assert len(reads) == chunks and set(reads.values()) == {1}  # epoch 1: every chunk read once
    _check_values(first)
    cache = loader.dataset.chunk_cache
    assert len(cache) == chunks and 0 < cache.stored_bytes <= cache.max_bytes
    for _ in range(2):
        again = _epoch(loader)
        assert _chunk_reads(log_file) == Counter()  # no chunk file read: served from the cache
        _check_values(again)
        if not shuffle:  # same order, same values as epoch 1
            assert all(a["id"] == b["id"] and (a["raw"] == b["raw"]).all() and (a["x"] == b["x"]).all()
                       and a["rag"] == b["rag"] for a, b in zip(first, again))


def test_cache_bytes_bounds_what_is_kept(ds, tmp_path, monkeypatch):
    log_file = tmp_path / "io.log"
    monkeypatch.setenv("DEEPLAKE_SPARK_IO_LOG", str(log_file))
    chunk_bytes = os.path.getsize(glob.glob(os.path.join(ds.path, "_tensors", "raw", "*.dltc"))[0])
    bound = 3 * chunk_bytes + chunk_bytes // 2
    loader = ds.pytorch(columns=["raw", "id"], batch_size=BATCH, num_workers=0, shuffle=False, cache_bytes=bound)
    _check_raw(_epoch_raw(loader))
    assert len(_chunk_reads(log_file)) == N // ROWS_PER_CHUNK
    cache = loader.dataset.chunk_cache
    assert len(cache) == 3 and cache.stored_bytes <= bound  # full: the first three stay, nothing evicted
    _check_raw(_epoch_raw(loader))
    assert len(_chunk_reads(log_file)) == N // ROWS_PER_CHUNK - 3  # the other seven are read again


def _epoch_raw(loader) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(b["id"].numpy().copy(), b["raw"].numpy().copy()) for b in loader]


def _check_raw(batches) -> None:
    assert sorted(i for ids, _ in batches for i in ids.tolist()) == list(range(N))
    for ids, raw in batches:
        assert (raw == (ids[:, None] * 32 + np.arange(32)).reshape(-1, 4, 8) % 251).all()


def test_in_place_edits_of_batches_do_not_reach_the_cache(ds):
    loader = ds.pytorch(columns=["raw", "x", "id"], batch_size=BATCH, num_workers=0, shuffle=False)
    for _ in range(3):
        batches = list(loader)
        _check_raw([(b["id"].numpy(), b["raw"].numpy()) for b in batches])  # before this epoch's edits
        assert all((b["x"] == b["id"][:, None].float()).all() for b in batches)
        for b in batches:  # a training loop normalizing in place
            b["raw"].zero_()
            b["x"].mul_(-1.0)
    # the edits changed only those batches, not what later epochs (and other batches) see
    assert loader.dataset.chunk_cache is not None and len(loader.dataset.chunk_cache) > 0


def test_a_chunk_that_fails_verification_is_never_cached(tmp_path, monkeypatch):
    path = str(tmp_path / "bad")
    dls.create(path, {"raw": dls.tensor("generic", dtype="uint8", shape=(32,), compression="none",
                                        chunk_size=ROWS_PER_CHUNK * 32), "id": "int64"}) \
        .append({"raw": (np.arange(N * 32) % 251).astype("uint8").reshape(N, 32), "id": np.arange(N)})
    ds = dls.open(path)
    files = sorted(glob.glob(os.path.join(path, "_tensors", "raw", "*.dltc")), key=os.path.getmtime)
    victim = files[len(files) // 2]
    data = bytearray(open(victim, "rb").read())
    data[-5] ^= 0xFF  # one payload byte: the checksum no longer matches
    with open(victim, "wb") as f:
        f.write(data)
    loader = ds.pytorch(batch_size=BATCH, num_workers=0, shuffle=False)
    for _ in range(2):  # every epoch reads the damaged chunk again and refuses it
        with pytest.raises(CorruptChunkError, match="checksum"):
            list(loader)
        cache = loader.dataset.chunk_cache
        assert not any(key[2] in victim for key in cache.templates)
        assert all(os.path.basename(victim) != f"{key[2]}.dltc" for key in cache.templates)


def test_cache_bytes_option(ds, tmp_path, monkeypatch):
    with pytest.raises(InvalidOptionError, match="cache_bytes"):
        ds.pytorch(num_workers=0, cache_bytes=-1)
    with pytest.raises(InvalidOptionError, match="cache_bytes"):
        ds.pytorch(num_workers=0, cache_bytes="1GB")
    assert 0 < default_cache_bytes() <= 4 << 30
    log_file = tmp_path / "io.log"
    monkeypatch.setenv("DEEPLAKE_SPARK_IO_LOG", str(log_file))
    loader = ds.pytorch(columns=["raw", "id"], batch_size=BATCH, num_workers=0, shuffle=False, cache_bytes=0)
    for _ in range(2):  # off: every epoch reads every chunk
        _check_raw(_epoch_raw(loader))
        assert len(_chunk_reads(log_file)) == N // ROWS_PER_CHUNK
    assert loader.dataset.chunk_cache is None


def test_cache_stores_copies_up_to_its_bound():
    cache = ChunkCache(4096)
    header, payload = bytearray(b"h" * 10), bytearray(range(256)) * 8
    stored = cache.put(("ds", "t", "a"), header, payload)
    assert stored is not None and bytes(stored[0]) == header and bytes(stored[1]) == payload
    payload[:] = b"\0" * len(payload)  # the caller's buffer (e.g. a batch view of it) changes later
    assert bytes(stored[1]) == bytes(range(256)) * 8 and stored[1].readonly
    assert cache.put(("ds", "t", "a"), header, payload) is None  # already there
    assert cache.put(("ds", "t", "b"), b"", b"x" * 4096) is None  # does not fit in what is left
    assert len(cache) == 1 and cache.stored_bytes == 10 + 2048


def test_batches_of_cached_chunks_are_copies(ds):
    loader = ds.pytorch(columns=["raw", "id"], batch_size=BATCH, num_workers=0, shuffle=False)
    _check_raw(_epoch_raw(loader))
    cache = loader.dataset.chunk_cache
    kept = [t.loaded.fixed for t in cache.templates.values()]
    assert len(kept) == N // ROWS_PER_CHUNK and all(k is not None and not k.flags.writeable for k in kept)
    for batch in loader:  # served from the cache: arrays of their own, never its memory
        raw = batch["raw"].numpy()
        assert raw.flags.writeable and not any(np.shares_memory(raw, k) for k in kept)
