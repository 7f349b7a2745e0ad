"""The loader's engines (threads in the training process, worker processes with shared-memory
slots, the main process alone) over real datasets: same batches, bounded resources, safe hand-off."""

from __future__ import annotations

import gc
import os
import threading
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deeplake_spark as dls
from deeplake_spark.errors import CorruptChunkError, InvalidOptionError
from deeplake_spark.format.chunk_reader import ChunkReader
from deeplake_spark.format.chunk_writer import ChunkBuilder
from deeplake_spark.format.samples import encode_sample
from deeplake_spark.format.spec import TensorSpec
from deeplake_spark.torch import collate as collate_mod
from deeplake_spark.torch.threads import PROBE_GROUPS

N = 240


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    """240 rows: a fixed-shape lz4 tensor in 10 chunks, jpeg images, a label and a name."""
    path = str(tmp_path_factory.mktemp("engines") / "ds")
    data = dls.create(path, {
        "x": dls.tensor("generic", dtype="float32", shape=(3, 8), compression="lz4", chunk_size=24 * 96),
        "image": dls.tensor("image", compression="jpeg", chunk_size=8000),
        "label": "int64",
        "name": "string",
    })
    yy, xx = np.mgrid[0:16, 0:12]
    images = [np.stack([(yy * 8 + i) % 256, (xx * 16) % 256, np.full_like(yy, i % 256)], -1).astype(np.uint8)
              for i in range(N)]
    data.append({"x": np.arange(N * 24, dtype="float32").reshape(N, 3, 8), "image": images,
                 "label": np.arange(N), "name": [f"r{i}" for i in range(N)]})
    return dls.open(path)


def _plain(batch):
    return {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def _passes(loader, passes):
    return [[_plain(b) for b in loader] for _ in range(passes)]


def _same(a, b):
    assert len(a) == len(b)
    for pa, pb in zip(a, b):
        assert len(pa) == len(pb)
        for ba, bb in zip(pa, pb):
            assert ba.keys() == bb.keys()
            for k in ba:
                if isinstance(ba[k], torch.Tensor):
                    assert torch.equal(ba[k], bb[k]), k
                else:
                    assert ba[k] == bb[k], k


def test_every_engine_yields_the_same_batches_pass_after_pass(ds):
    options = {"batch_size": 20, "seed": 4, "num_epochs": 2}
    reference = _passes(ds.pytorch(num_workers=0, **options), 2)
    orders = [[i for b in batches for i in b["label"].tolist()] for batches in reference]
    assert sorted(orders[0]) == sorted(2 * list(range(N))) and orders[0] != orders[1]  # 2 epochs a pass
    for batch in reference[0]:
        ids = batch["label"]
        assert torch.equal(batch["x"][:, 0, 0], (ids * 24).float())
        assert batch["image"].shape == (len(ids), 16, 12, 3) and batch["name"] == [f"r{i}" for i in ids.tolist()]
    for engine, workers, persistent in [("threads", 2, None), ("threads", 3, None), ("processes", 2, True),
                                        ("processes", 3, False)]:
        loader = ds.pytorch(num_workers=workers, engine=engine, persistent_workers=persistent, **options)
        assert loader.engine == engine
        _same(_passes(loader, 2), reference)


def test_decoded_images_are_pillows_pixels_in_every_engine_and_decode_method(ds):
    """JPEGs are decoded by libjpeg-turbo straight into the batch (or wrapped as PIL images for
    ``decode_method="pil"``): the pixels are exactly what Pillow decodes from the stored bytes."""
    import io

    from PIL import Image

    from deeplake_spark.format.images import encode_image

    yy, xx = np.mgrid[0:16, 0:12]

    def pillow(i):
        arr = np.stack([(yy * 8 + i) % 256, (xx * 16) % 256, np.full_like(yy, i % 256)], -1).astype(np.uint8)
        with Image.open(io.BytesIO(encode_image(arr, "jpeg", where="t"))) as img:
            return np.asarray(img.convert("RGB"))

    reference = {i: pillow(i) for i in range(N)}
    for engine, workers in [("auto", 0), ("threads", 2), ("processes", 2)]:
        seen = 0
        for batch in ds.pytorch(batch_size=32, num_workers=workers, engine=engine, columns=["image", "label"]):
            for image, label in zip(batch["image"].numpy(), batch["label"].tolist()):
                np.testing.assert_array_equal(image, reference[label], err_msg=f"{engine}: row {label}")
                seen += 1
        assert seen == N
    as_pil = ds.pytorch(batch_size=32, num_workers=2, decode_method="pil", columns=["image", "label"],
                        transform=lambda s: {"image": np.asarray(s["image"]), "label": s["label"],
                                             "mode": s["image"].mode})
    rows = [(img, label, mode) for b in as_pil for img, label, mode in zip(b["image"].numpy(), b["label"].tolist(),
                                                                           b["mode"])]
    assert len(rows) == N and {mode for _, _, mode in rows} == {"RGB"}
    for image, label, _ in rows:
        np.testing.assert_array_equal(image, reference[label])


def test_auto_picks_threads_for_images_unless_python_runs_per_sample(ds):
    assert ds.pytorch(num_workers=2).engine == "threads"  # jpeg decoding
    # no images: lz4 is decompressed on the I/O threads, the gather costs less than a hand-off
    assert ds.pytorch(num_workers=2, columns=["x", "label"]).engine == "main"
    assert ds.pytorch(num_workers=0).engine == "main"
    assert ds.pytorch(num_workers=2, transform=lambda s: s).engine == "processes"
    assert ds.pytorch(num_workers=2, collate=lambda samples: samples).engine == "processes"
    assert ds.pytorch(num_workers=2, engine="threads", transform=lambda s: s).engine == "threads"
    with pytest.raises(InvalidOptionError, match="engine='gpu'"):
        ds.pytorch(engine="gpu")
    with pytest.raises(InvalidOptionError, match="num_workers >= 1"):
        ds.pytorch(num_workers=0, engine="processes")
    with pytest.raises(InvalidOptionError, match="persistent_workers"):
        ds.pytorch(num_workers=2, engine="processes", persistent_workers="yes")


def _worker_pid(sample):
    return {"label": int(sample["label"]), "pid": os.getpid()}


def test_persistent_workers_serve_every_pass(ds):
    loader = ds.pytorch(batch_size=30, num_workers=2, columns=["label"], transform=_worker_pid, seed=1)
    assert loader.engine == "processes" and loader.persistent_workers
    pids, orders = [], []
    for _ in range(3):
        batches = list(loader)
        pids.append({p for b in batches for p in b["pid"].tolist()})
        orders.append([i for b in batches for i in b["label"].tolist()])
    assert len(pids[0]) == 2 and pids[0] == pids[1] == pids[2] and os.getpid() not in pids[0]
    assert all(sorted(o) == list(range(N)) for o in orders) and orders[0] != orders[1]  # epochs move on
    with loader:
        pass
    assert loader._iterator is None  # leaving the context stops the workers
    fresh = ds.pytorch(batch_size=30, num_workers=2, columns=["label"], transform=_worker_pid, seed=1,
                       persistent_workers=False)
    assert not fresh.persistent_workers
    first, second = ({p for b in fresh for p in b["pid"].tolist()} for _ in range(2))
    assert first.isdisjoint(second)  # re-forked for every pass


def test_batches_kept_by_the_training_loop_are_never_overwritten(ds):
    # The processes engine reuses shared-memory slots: a batch still held must keep its values while
    # many later batches go through the same worker's slots (and holding them all never deadlocks).
    loader = ds.pytorch(batch_size=8, num_workers=2, engine="processes", columns=["x", "label"], num_epochs=3,
                        shuffle=False)
    kept = list(loader)
    assert len(kept) == 3 * N // 8
    for batch in kept:
        assert torch.equal(batch["x"][:, 0, 0], (batch["label"] * 24).float())
    assert [i for b in kept for i in b["label"].tolist()] == 3 * list(range(N))
    flags = loader._receiver.flags
    assert int(flags.sum()) > 0
    del kept, batch
    gc.collect()
    assert int(flags.sum()) == 0  # every slot is free again once the batches are gone


def test_a_slot_is_reused_only_after_its_batch_is_dropped(ds):
    loader = ds.pytorch(batch_size=8, num_workers=1, engine="processes", columns=["x", "label"], shuffle=False)
    it = iter(loader)
    first = next(it)
    expected = first["x"].clone()
    x_view = first["x"][2:4]  # a view alone keeps the slot
    del first
    gc.collect()
    rest = list(it)  # the other 29 batches go through the same worker's slots
    assert len(rest) == N // 8 - 1
    del rest
    gc.collect()
    assert torch.equal(x_view, expected[2:4])
    flags = loader._receiver.flags
    assert int(flags.sum()) == 1  # the worker is done; only the view's slot is held
    del x_view
    gc.collect()
    assert int(flags.sum()) == 0


def test_an_epoch_abandoned_midway_leaves_persistent_workers_and_slots_usable(ds):
    # Breaking out drops batches in flight (some carry a slot's buffer for the first time); the next
    # passes must still open every batch, with the right values, and free every slot.
    loader = ds.pytorch(batch_size=8, num_workers=2, engine="processes", columns=["x", "label"], seed=6)
    for _ in range(3):
        it = iter(loader)
        next(it), next(it)
        del it  # two batches taken, the others in flight are dropped
        full = list(loader)
        assert sorted(i for b in full for i in b["label"].tolist()) == list(range(N))
        assert all(torch.equal(b["x"][:, 0, 0], (b["label"] * 24).float()) for b in full)
        del full
    gc.collect()
    assert int(loader._receiver.flags.sum()) == 0


def test_threads_stop_when_the_training_loop_breaks(ds):
    def ours():
        return [t for t in threading.enumerate() if t.name.startswith("deeplake-")]

    for _ in range(3):
        for i, _batch in enumerate(ds.pytorch(batch_size=10, num_workers=3, engine="threads")):
            if i == 2:
                assert ours()  # the batch threads, the plan thread and the I/O threads run
                break
    gc.collect()
    assert ours() == []


def test_an_error_while_building_a_batch_reaches_the_training_loop(ds):
    def boom(batch):
        if int(batch["label"][0]) >= 0:
            raise ValueError("bad batch transform")
        return batch

    for engine in ("threads", "processes"):
        with pytest.raises(ValueError, match="bad batch transform"):
            list(ds.pytorch(batch_size=10, num_workers=2, engine=engine, batch_transform=boom, columns=["label"]))


def test_state_dict_resumes_every_engine_mid_epoch_and_across_epochs(ds):
    options = {"batch_size": 16, "seed": 3, "num_epochs": 2, "columns": ["label"]}
    full = [b["label"].tolist() for b in ds.pytorch(num_workers=0, **options)]
    per_epoch = -(-N // 16)
    for engine, workers, stop in [("threads", 2, 5), ("processes", 2, 7), ("processes", 3, per_epoch),
                                  ("main", 0, per_epoch + 3)]:
        first = ds.pytorch(num_workers=workers, engine="auto" if engine == "main" else engine, **options)
        seen = []
        for batch in first:
            seen.append(batch["label"].tolist())
            if len(seen) == stop:
                state = first.state_dict()
                break
        assert state["epoch"] == stop // per_epoch and state["batches_done"] == stop % per_epoch
        resumed = ds.pytorch(num_workers=workers, engine="auto" if engine == "main" else engine, **options)
        resumed.load_state_dict(state)
        assert len(resumed) == len(full) - stop
        rest = [b["label"].tolist() for b in resumed]
        assert seen + rest == full, engine
        assert resumed.state_dict()["epoch"] == 2 and resumed.state_dict()["batches_done"] == 0


def test_a_state_saved_at_the_end_of_a_pass_resumes_with_the_next_whole_pass(ds):
    options = {"batch_size": 50, "seed": 2, "columns": ["label"], "num_workers": 0}
    loader = ds.pytorch(**options)
    first = [b["label"].tolist() for b in loader]
    state = loader.state_dict()
    assert (state["epoch"], state["batches_done"]) == (1, 0)
    resumed = ds.pytorch(**options)
    resumed.load_state_dict(state)
    assert len(resumed) == len(first)
    assert [b["label"].tolist() for b in resumed] == [b["label"].tolist() for b in loader]  # epoch 1 both


def test_a_state_of_another_order_is_refused_naming_the_field(ds):
    loader = ds.pytorch(batch_size=16, seed=3, columns=["label"])
    state = loader.state_dict()
    with pytest.raises(InvalidOptionError, match="seed"):
        ds.pytorch(batch_size=16, seed=4, columns=["label"]).load_state_dict(state)
    with pytest.raises(InvalidOptionError, match="shuffle"):
        ds.pytorch(batch_size=16, seed=3, shuffle=False, columns=["label"]).load_state_dict(state)


def test_an_lz4_payload_that_does_not_decompress_is_a_corrupt_chunk():
    # Arrow's LZ4 codec (GIL-free) decodes verified payloads: a payload that matches its checksums
    # but is not LZ4 (a buggy or hostile writer) must still be a CorruptChunkError.
    import struct

    from deeplake_spark.format.checksum import CRC32C, checksum
    from deeplake_spark.format.header import decode_header

    spec = TensorSpec.create("t", "generic", dtype="uint8", shape=(None,), compression="lz4")
    builder = ChunkBuilder(spec)
    builder.add(encode_sample(spec, np.arange(200, dtype=np.uint8) % 7))
    data = bytearray(builder.finish())
    header = decode_header(memoryview(bytes(data)))
    start, stop = header.header_len, header.header_len + header.payload_len
    data[start:stop] = b"\xf0" * header.payload_len  # a literal run longer than the payload
    struct.pack_into("<Q", data, 40, checksum(header.checksum_algorithm, bytes(data[start:stop])))
    head = bytearray(data[:start])
    struct.pack_into("<I", head, 20, 0)
    struct.pack_into("<I", data, 20, checksum(CRC32C, bytes(head)) & 0xFFFFFFFF)
    reader = ChunkReader(bytes(data), where="chunk t/0")  # both checksums hold
    with pytest.raises(CorruptChunkError, match="LZ4 payload does not decompress"):
        reader.sample(0)


def test_batch_buffers_are_reused_but_never_under_a_batch_still_held(tmp_path):
    # 12 KiB samples, 32 a batch: columns big enough to be gathered into reused buffers.
    big = dls.create(str(tmp_path / "big"), {"x": dls.tensor("generic", dtype="uint8", shape=(64, 64, 3),
                                                              compression="lz4", chunk_size=1 << 18),
                                              "label": "int64"})
    big.append({"x": np.arange(160, dtype=np.uint8)[:, None, None, None].repeat(64 * 64 * 3, 1).reshape(160, 64, 64, 3),
                "label": np.arange(160)})
    for engine in ("threads", "main"):
        loader = big.pytorch(batch_size=32, num_workers=2, engine=engine if engine == "threads" else "auto",
                             num_epochs=1)
        assert loader.engine == engine
        held = next(iter(loader))
        for _ in range(4):  # 20 more batches through the pool while `held` is kept
            for batch in loader:
                assert torch.equal(batch["x"][:, 5, 7, 1], (batch["label"] % 256).to(torch.uint8))
        del batch
        assert torch.equal(held["x"][:, 0, 0, 0], (held["label"] % 256).to(torch.uint8))
        assert loader.dataset._pool.allocated <= 8  # not one buffer per batch


def test_a_reader_over_an_already_decompressed_payload_serves_the_same_samples():
    spec = TensorSpec.create("t", "generic", dtype="int16", shape=(None,), compression="lz4")
    builder = ChunkBuilder(spec)
    for i in range(5):
        builder.add(encode_sample(spec, np.arange(i * 10, dtype=np.int16)))
    full = ChunkReader(builder.finish(), where="chunk t/0")
    header = bytes(full.data[: full.header.header_len])
    again = ChunkReader.from_decompressed(header, bytes(full.raw_payload), where="chunk t/0")
    assert [again.sample(i).tolist() for i in range(5)] == [full.sample(i).tolist() for i in range(5)]
    with pytest.raises(CorruptChunkError, match="decompressed payload has 3 bytes"):
        ChunkReader.from_decompressed(header, b"abc", where="chunk t/0")


def _batch_by_batch(monkeypatch):
    """Turn block assembly off (a block of 0 bytes is one batch)."""
    from deeplake_spark.torch import engines

    monkeypatch.setattr(engines, "BLOCK_BYTES", 0)


def test_blocks_of_small_batches_give_the_batches_of_the_plain_path(ds, monkeypatch):
    # x (lz4, 96 bytes a row) and tabular columns: small rows, so batches are assembled in blocks.
    cases = [({"num_workers": 0, "shuffle": True}, "main"), ({"num_workers": 0, "shuffle": False}, "main"),
             ({"num_workers": 2, "engine": "threads", "shuffle": True}, "threads"),
]
    for opts, engine in cases:
        options = {"batch_size": 7, "seed": 5, "num_epochs": 3, "columns": ["x", "label", "name"], **opts}
        blocked = ds.pytorch(**options)
        assert blocked.engine == engine and blocked.dataset.block_batches() > 1
        got = _passes(blocked, 2)
        with monkeypatch.context() as m:
            _batch_by_batch(m)
            plain = ds.pytorch(**options)
            assert plain.dataset.block_batches() == 1
            _same(got, _passes(plain, 2))
        for batch in got[0]:
            assert torch.equal(batch["x"][:, 0, 0], (batch["label"] * 24).float())
            assert batch["name"] == [f"r{i}" for i in batch["label"].tolist()]
    # worker processes hand batches over one by one; images are decoded per batch: no blocks
    assert ds.pytorch(num_workers=2, engine="processes", columns=["x", "label"]).dataset.block_batches() == 1
    assert ds.pytorch(num_workers=0).dataset.block_batches() == 1
    assert ds.pytorch(num_workers=0, columns=["x"], transform=lambda s: s).dataset.block_batches() == 1


def test_blocks_resume_exactly_at_every_batch(ds):
    options = {"batch_size": 9, "seed": 6, "num_epochs": 2, "columns": ["x", "label"], "num_workers": 0}
    full = [b["label"].tolist() for b in ds.pytorch(**options)]
    per_epoch = -(-N // 9)
    for stop in (1, 5, per_epoch - 1, per_epoch, per_epoch + 4):
        first = ds.pytorch(**options)
        assert first.dataset.block_batches() > 1
        seen = []
        for batch in first:
            seen.append(batch["label"].tolist())
            if len(seen) == stop:
                state = first.state_dict()  # mid-block: counts the batches received, not built
                break
        assert (state["epoch"], state["batches_done"]) == (stop // per_epoch, stop % per_epoch)
        resumed = ds.pytorch(**options)
        resumed.load_state_dict(state)
        assert seen + [b["label"].tolist() for b in resumed] == full, stop


def test_an_in_place_edit_of_a_blocked_batch_stays_in_that_batch(ds):
    loader = ds.pytorch(batch_size=10, num_workers=0, shuffle=False, num_epochs=2, columns=["x", "label"])
    assert loader.dataset.block_batches() > 1
    batches = list(loader)
    batches[0]["x"].fill_(-1)  # shares its block's buffer with the next batches
    for batch in batches[1:]:
        assert torch.equal(batch["x"][:, 0, 0], (batch["label"] * 24).float())
    again = list(loader)  # the next pass reads fresh
    assert all(torch.equal(b["x"][:, 0, 0], (b["label"] * 24).float()) for b in again)


def test_unshuffled_batches_in_one_lz4_chunk_are_views_that_keep_in_place_edits_to_themselves(ds, monkeypatch):
    import warnings

    _batch_by_batch(monkeypatch)  # x's chunks hold 24 rows: batches of 8 are runs inside one chunk
    # cache_bytes=0: every epoch reads its chunks afresh (from the chunk cache, batches are copies)
    loader = ds.pytorch(batch_size=8, num_workers=0, shuffle=False, num_epochs=2, columns=["x", "label"],
                        cache_bytes=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about non-writable arrays: none may be handed over
        batches = list(loader)
    assert len(batches) == 2 * N // 8
    ptrs = [b["x"].data_ptr() for b in batches]
    for c in range(0, len(batches), 3):  # views, not copies: a chunk's 3 batches lie back to back in its buffer
        assert ptrs[c + 1] - ptrs[c] == ptrs[c + 2] - ptrs[c + 1] == 8 * 96
    for b in batches:
        assert torch.equal(b["x"][:, 0, 0], (b["label"] * 24).float())
    batches[0]["x"].fill_(-1)
    batches[1]["x"][0].zero_()
    assert batches[0]["label"].tolist() == list(range(8)) and batches[2]["label"].tolist() == list(range(16, 24))
    for b in batches[2:]:  # the other batches of that chunk, and the next epoch (read again)
        assert torch.equal(b["x"][:, 0, 0], (b["label"] * 24).float())
    assert torch.equal(batches[1]["x"][1:, 0, 0], (batches[1]["label"][1:] * 24).float())
    fresh = list(loader)
    assert all(torch.equal(b["x"][:, 0, 0], (b["label"] * 24).float()) for b in fresh)


def test_unshuffled_batches_in_one_uncompressed_chunk_are_views_too(tmp_path, monkeypatch):
    """Uncompressed chunks are read into buffers the loader owns (``Storage.read_writable``), so their
    batches are zero-copy views as well; an edit stays in its batch and the next epoch reads afresh."""
    import warnings

    _batch_by_batch(monkeypatch)
    raw = dls.create(str(tmp_path / "raw"), {"x": dls.tensor("generic", dtype="float32", shape=(3, 8),
                                                             chunk_size=24 * 96), "label": "int64"})
    raw.append({"x": np.arange(96 * 24, dtype="float32").reshape(96, 3, 8), "label": np.arange(96)})
    loader = raw.pytorch(batch_size=8, num_workers=0, shuffle=False, num_epochs=2, cache_bytes=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no non-writable array may reach torch
        batches = list(loader)
    assert loader.dataset.views and len(batches) == 2 * 96 // 8
    ptrs = [b["x"].data_ptr() for b in batches]
    for c in range(0, len(batches), 3):  # a chunk's 3 batches lie back to back in its buffer
        assert ptrs[c + 1] - ptrs[c] == ptrs[c + 2] - ptrs[c + 1] == 8 * 96
    folder = tmp_path / "raw" / "_tensors" / "x"
    on_disk = {f.name: f.read_bytes() for f in folder.iterdir()}
    batches[0]["x"].fill_(-1)
    for b in batches[1:]:
        assert torch.equal(b["x"][:, 0, 0], (b["label"] * 24).float())
    assert all(torch.equal(b["x"][:, 0, 0], (b["label"] * 24).float()) for b in list(loader))
    # the buffers are private copy-on-write mappings of the chunk files: the edit never reaches a file
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == on_disk
    assert raw[0]["x"][0, 0] == 0 and dls.open(str(tmp_path / "raw"))[1]["x"][0, 0] == 24


def test_a_view_repeating_rows_gets_copies_so_an_edit_reaches_no_other_batch(ds, monkeypatch):
    _batch_by_batch(monkeypatch)
    rows = list(range(8)) * 3  # the same 8 samples three times: never views of one buffer
    loader = ds[rows].pytorch(batch_size=8, num_workers=0, shuffle=False, columns=["x", "label"])
    assert not loader.dataset.views
    batches = list(loader)
    assert len(batches) == 3 and len({b["x"].data_ptr() for b in batches}) == 3
    batches[0]["x"].fill_(-1)
    for b in batches[1:]:
        assert torch.equal(b["x"][:, 0, 0], (b["label"] * 24).float())
    assert ds.pytorch(num_workers=0, columns=["x", "label"]).dataset.views


def _ahead_threads():
    return [t for t in threading.enumerate() if t.name == "deeplake-ahead"]


def _labels_with_step(loader, step_s=0.0, seen_threads=None):
    """The label batches of one pass, sleeping ``step_s`` per batch (a training step that releases the GIL)."""
    out = []
    for batch in loader:
        out.append(batch["label"].tolist())
        if seen_threads is not None:
            seen_threads.append(bool(_ahead_threads()))
        if step_s:
            time.sleep(step_s)
    return out


def test_main_engine_workers_build_ahead_with_the_same_batches_and_resume(ds):
    # num_workers >= 1 on the main engine: after a probe, batches are built on a background thread
    # while the training loop works; the batches, their order and state_dict stay those of num_workers=0.
    options = {"batch_size": 8, "seed": 5, "num_epochs": 2, "columns": ["x", "label"]}
    reference = _labels_with_step(ds.pytorch(num_workers=0, **options))
    for workers in (1, 2):
        loader = ds.pytorch(num_workers=workers, **options)
        assert loader.engine == "main" and loader.dataset.ahead == workers
        loader.dataset.ahead_min_overlap = 0.0  # hand off after the probe whatever the timings
        loader.dataset.blocks = False  # one batch per group (blocks of these small rows: 1 group an epoch)
        seen = []
        assert _labels_with_step(loader, 0.001, seen) == reference
        assert any(seen) and not any(seen[:PROBE_GROUPS])  # probed inline, then ahead
        assert _ahead_threads() == []  # joined at the end of the pass
        # resume exactly after a batch received while building ahead
        first = ds.pytorch(num_workers=workers, **options)
        first.dataset.ahead_min_overlap, first.dataset.blocks = 0.0, False
        got = []
        for batch in first:
            got.append(batch["label"].tolist())
            time.sleep(0.001)
            if len(got) == PROBE_GROUPS + 9:
                state = first.state_dict()
                break
        gc.collect()
        assert _ahead_threads() == []  # breaking out stops the thread
        resumed = ds.pytorch(num_workers=workers, **options)
        resumed.dataset.ahead_min_overlap, resumed.dataset.blocks = 0.0, False
        resumed.load_state_dict(state)
        assert got + _labels_with_step(resumed, 0.001) == reference


def test_main_engine_stays_inline_for_a_loop_that_does_no_work(ds):
    loader = ds.pytorch(num_workers=2, batch_size=8, seed=1, columns=["x", "label"])
    loader.dataset.ahead_min_overlap, loader.dataset.blocks = 10.0, False  # no overlap pays for the hand-off
    seen = []
    assert _labels_with_step(loader, 0.0, seen) == _labels_with_step(
        ds.pytorch(num_workers=0, batch_size=8, seed=1, columns=["x", "label"]))
    assert not any(seen)


def test_building_ahead_needs_a_loop_that_waits_not_one_that_computes_on_the_training_thread(monkeypatch):
    """The probe counts only the time the loop leaves its thread idle (a CUDA step, a sleep): a loop
    that computes on the training thread holds the GIL a background build would need, so the build
    stays inline; the items are the same either way. The probe's clocks are a deterministic stand-in
    here (on a loaded machine a busy thread is also descheduled, which reads as idle time)."""
    import types

    from deeplake_spark.torch import threads as threads_mod

    clock = {"wall": 0.0, "cpu": 0.0}

    class Busy:
        def __call__(self) -> float:
            return clock["cpu"]

        def close(self) -> None:
            pass

    monkeypatch.setattr(threads_mod, "time", types.SimpleNamespace(perf_counter=lambda: clock["wall"]))
    monkeypatch.setattr(threads_mod, "BusyClock", Busy)

    def groups():
        for i in range(3 * PROBE_GROUPS):
            clock["wall"] += 0.003  # a 3 ms build the background thread could overlap
            yield [i]

    def consume(step):
        seen, got = [], []
        for item in threads_mod.run_ahead(groups(), depth=2, min_overlap=0.002):
            got.append(item)
            seen.append(bool(_ahead_threads()))
            step()
        return got, any(seen)

    def waits():  # 3 ms waiting (a CUDA step): wall time only
        clock["wall"] += 0.003

    def computes():  # 3 ms of CPU on the training thread
        clock["wall"] += 0.003
        clock["cpu"] += 0.003

    assert consume(waits) == (list(range(3 * PROBE_GROUPS)), True)
    assert consume(computes) == (list(range(3 * PROBE_GROUPS)), False)
    assert _ahead_threads() == []


@pytest.mark.skipif(not os.path.exists("/proc/thread-self/schedstat") or not hasattr(os, "sched_setaffinity"),
                    reason="Linux schedstat and CPU affinity")
def test_the_probe_clock_counts_waiting_for_a_core_as_busy():
    """A thread that computes while another process holds its only core is descheduled half the
    time: ``thread_time`` misses that half (the probe would read it as idle and build ahead for a
    loop that has no idle time), the probe's ``BusyClock`` counts it."""
    import multiprocessing as mp

    from deeplake_spark.torch.threads import BusyClock

    saved = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(saved)})  # the rival forked below inherits the one core
    except OSError as e:
        pytest.skip(f"cannot pin to one core here: {e}")
    ctx = mp.get_context("fork")
    ready = ctx.Event()

    def spin() -> None:
        ready.set()
        while True:
            pass

    rival = ctx.Process(target=spin, daemon=True)
    try:
        rival.start()
        assert ready.wait(10)
        busy = BusyClock()
        try:
            w0, c0, b0 = time.perf_counter(), time.thread_time(), busy()
            while time.perf_counter() - w0 < 0.4:
                sum(range(1000))
            wall, cpu, counted = time.perf_counter() - w0, time.thread_time() - c0, busy() - b0
        finally:
            busy.close()
    finally:
        os.sched_setaffinity(0, saved)
        if rival.pid is not None:
            rival.kill()
            rival.join()
    assert cpu < 0.8 * wall  # the rival really took part of the core
    assert counted > 0.9 * wall  # running or runnable all along: no idle time


def test_an_error_while_building_ahead_reaches_the_training_loop(ds):
    calls = []

    def boom(batch):
        calls.append(1)
        if len(calls) == PROBE_GROUPS + 3:
            raise ValueError("bad batch transform")
        return batch

    loader = ds.pytorch(batch_size=8, num_workers=2, engine="auto", batch_transform=boom, columns=["x", "label"])
    assert loader.engine == "main"
    loader.dataset.ahead_min_overlap, loader.dataset.blocks = 0.0, False
    received = []
    with pytest.raises(ValueError, match="bad batch transform"):
        for batch in loader:
            received.append(batch)
            time.sleep(0.001)
    assert len(received) == PROBE_GROUPS + 2
    gc.collect()
    assert _ahead_threads() == []


@pytest.mark.parametrize("engine,workers", [("auto", 0), ("threads", 2)])
def test_shuffled_batches_of_big_rows_across_chunks_hold_their_rows(tmp_path, engine, workers):
    # rows of >= ROW_COPY_MIN_BYTES (16 KiB) are copied one by one into a batch spanning chunks
    # (raw and lz4 chunks); every sample must land at its row's place
    path = str(tmp_path / "big")
    n, shape = 48, (16, 32, 33)  # 16.5 KiB a row, ~6 rows a chunk
    data = dls.create(path, {
        "raw": dls.tensor("generic", dtype="uint8", shape=shape, chunk_size=6 * 16896),
        "packed": dls.tensor("generic", dtype="uint8", shape=shape, compression="lz4", chunk_size=6 * 16896),
        "label": "int64",
    })
    rng = np.random.default_rng(7)
    values = rng.integers(0, 255, size=(n, *shape), dtype=np.uint8)
    data.append({"raw": values, "packed": values, "label": np.arange(n)})
    ds = dls.open(path)
    assert np.prod(shape) >= collate_mod.ROW_COPY_MIN_BYTES
    seen = []
    for batch in ds.pytorch(batch_size=10, num_workers=workers, engine=engine, seed=3, num_epochs=2):
        labels = batch["label"].numpy()
        seen.extend(labels.tolist())
        assert not np.array_equal(labels, np.sort(labels))  # shuffled
        assert np.array_equal(batch["raw"].numpy(), values[labels])
        assert np.array_equal(batch["packed"].numpy(), values[labels])
    assert sorted(seen) == sorted(2 * list(range(n)))
