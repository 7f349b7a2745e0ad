"""The streaming torch loader over real datasets, with real DataLoader worker processes."""

from __future__ import annotations

import io
import os
import warnings
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deeplake_spark as dls
from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.torch.sampling import ChunkLayout, elastic_pass_order

N = 300


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory):
    """300 rows: a fixed-shape lz4 tensor in ~12 chunks, a ragged bbox tensor, png images, a class_label
    tensor, id/name."""
    path = str(tmp_path_factory.mktemp("loader") / "ds")
    ds = dls.create(path, {
        "x": dls.tensor("generic", dtype="float32", shape=(6,), compression="lz4", chunk_size=25 * 24),
        "boxes": dls.tensor("bbox", chunk_size=2000),
        "image": dls.tensor("image", compression="png", chunk_size=4000),
        "cls": dls.tensor("class_label"),
        "id": "int64",
        "name": "string",
    })
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(N, 5, 4, 3), dtype=np.uint8)
    ds.append({
        "x": np.repeat(np.arange(N, dtype="float32")[:, None], 6, axis=1),
        "boxes": [np.full((i % 4, 4), i, dtype="float32") for i in range(N)],
        "image": list(images),
        "cls": np.arange(N) % 7,
        "id": np.arange(N),
        "name": [f"row{i}" for i in range(N)],
    })
    return dls.open(path), images


def _ids(loader):
    return [b["id"].tolist() for b in loader]


@pytest.mark.parametrize("engine", ["threads", "processes"])
def test_every_sample_once_and_order_matches_the_pure_plan(small_ds, engine):
    ds, _ = small_ds
    loader = ds.pytorch(batch_size=16, num_workers=2, seed=7, columns=["x", "id"], engine=engine)
    assert loader.engine == engine
    batches = _ids(loader)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(N))
    # The loader's order is exactly the pure function's (seed, epoch, rank, world -> order).
    codes = np.asarray(ds.table(columns=["x"]).column("x").combine_chunks().field("chunk").dictionary_encode().indices)
    layout = ChunkLayout.from_chunk_codes(codes)
    expected = elastic_pass_order(layout, first_epoch=0, num_epochs=1, num_workers=2, batch_size=16, seed=7)
    assert batches == [b.tolist() for b in expected]  # row position == id here
    assert len(loader) == len(batches) == -(-N // 16)


def test_fixed_shape_values_follow_their_rows(small_ds):
    ds, _ = small_ds
    for batch in ds.pytorch(batch_size=32, num_workers=2, columns=["id", "x", "cls"]):
        assert batch["x"].dtype == torch.float32 and batch["x"].shape[1:] == (6,)
        assert torch.equal(batch["x"][:, 3].long(), batch["id"])
        assert batch["cls"].dtype == torch.int32 and batch["cls"].shape == batch["id"].shape
        assert torch.equal(batch["cls"].long(), batch["id"] % 7)


def test_ddp_ranks_partition_the_epoch_with_workers(small_ds):
    ds, _ = small_ds
    seen = []
    lengths = []
    for rank in range(3):
        loader = ds.pytorch(batch_size=8, num_workers=2, rank=rank, world_size=3, seed=3, columns=["id"])
        ids = [i for b in _ids(loader) for i in b]
        lengths.append(len(ids))
        seen.extend(ids)
    assert sorted(seen) == list(range(N))
    assert lengths == [100, 100, 100]
    # drop_last: every rank the same number of full batches, still no duplicates.
    kept = []
    counts = set()
    for rank in range(2):
        batches = _ids(ds.pytorch(batch_size=32, num_workers=2, rank=rank, world_size=2, drop_last=True,
                                  columns=["id"]))
        assert all(len(b) == 32 for b in batches)
        counts.add(len(batches))
        kept.extend(i for b in batches for i in b)
    assert counts == {150 // 32} and len(kept) == len(set(kept))


def test_seed_and_epochs_make_the_shuffle(small_ds):
    ds, _ = small_ds
    a = _ids(ds.pytorch(batch_size=20, num_workers=2, seed=1, columns=["id"]))
    b = _ids(ds.pytorch(batch_size=20, num_workers=2, seed=1, columns=["id"]))
    assert a == b
    loader = ds.pytorch(batch_size=20, num_workers=2, seed=1, columns=["id"])
    first, second = _ids(loader), _ids(loader)  # a second pass runs the next epoch
    assert first == a and second != first and sorted(i for b in second for i in b) == list(range(N))
    loader.set_epoch(0)
    assert _ids(loader) == a
    unshuffled = [i for bt in _ids(ds.pytorch(batch_size=20, num_workers=2, shuffle=False, columns=["id"]))
                  for i in bt]
    assert unshuffled == list(range(N))


def test_num_epochs_in_one_pass(small_ds):
    ds, _ = small_ds
    loader = ds.pytorch(batch_size=50, num_workers=2, num_epochs=3, columns=["id"])
    counts = Counter(i for b in _ids(loader) for i in b)
    assert set(counts) == set(range(N)) and set(counts.values()) == {3}
    assert len(loader) == 3 * 6


@pytest.mark.parametrize("engine", ["threads", "processes"])
def test_each_chunk_read_once_per_epoch(small_ds, tmp_path, monkeypatch, engine):
    ds, _ = small_ds
    log_file = tmp_path / "io.log"
    monkeypatch.setenv("DEEPLAKE_SPARK_IO_LOG", str(log_file))
    for _ in ds.pytorch(batch_size=10, num_workers=2, seed=11, columns=["x", "id"], prefetch_chunks=1, engine=engine):
        pass
    reads = [line.split()[0] for line in log_file.read_text().splitlines() if "/x/" in line]
    chunks = set(np.asarray(ds.table(columns=["x"]).column("x").combine_chunks().field("chunk")).tolist())
    assert {os.path.basename(r)[: -len(".dltc")] for r in reads} == chunks
    # Threads share one prefetcher; worker processes share chunks through the chunk share.
    assert len(reads) == len(chunks)


def test_images_decode_and_ragged_collate_modes(small_ds):
    ds, images = small_ds
    for batch in ds.pytorch(batch_size=40, num_workers=2, collate={"boxes": "pad"}, pad_value=-1):
        ids = batch["id"].numpy()
        assert torch.equal(batch["image"], torch.from_numpy(images[ids]))
        assert batch["boxes_shape"][:, 0].tolist() == [i % 4 for i in ids]
        for row, i in enumerate(ids):
            k = i % 4
            assert (batch["boxes"][row, :k] == i).all() and (batch["boxes"][row, k:] == -1).all()
        assert batch["name"] == [f"row{i}" for i in ids]
    batch = next(iter(ds.pytorch(batch_size=40, num_workers=2, collate="list", columns=["boxes", "id"])))
    assert [tuple(b.shape) for b in batch["boxes"]] == [(i % 4, 4) for i in batch["id"].tolist()]
    with pytest.raises(InvalidOptionError, match="collate='pad'"):
        next(iter(ds.pytorch(batch_size=40, num_workers=2, columns=["boxes"])))


def _pil_flip(sample):
    from PIL import Image

    image = sample["image"]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (4, 5)  # PIL: (width, height)
    return {"image": np.asarray(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), "id": int(sample["id"])}


@pytest.mark.parametrize("engine", ["threads", "processes"])
def test_decode_method_pil_hands_images_to_the_transform_as_pil(small_ds, engine):
    ds, images = small_ds
    for decode_method in ("pil", {"image": "pil"}):
        loader = ds.pytorch(batch_size=25, num_workers=2, columns=["image", "id"], transform=_pil_flip,
                            decode_method=decode_method, engine=engine)
        assert loader.engine == engine
        seen = []
        for batch in loader:
            ids = batch["id"].numpy()
            assert torch.equal(batch["image"], torch.from_numpy(images[ids][:, :, ::-1].copy()))
            seen.extend(ids.tolist())
        assert sorted(seen) == list(range(N))
    # auto: a transform of PIL images is Pillow work (GIL released): threads; of numpy arrays: processes
    assert ds.pytorch(num_workers=2, transform=_pil_flip, decode_method="pil").engine == "threads"
    assert ds.pytorch(num_workers=2, transform=_pil_flip).engine == "processes"
    with pytest.raises(InvalidOptionError, match="decode_method"):
        ds.pytorch(num_workers=0, decode_method="tobytes")
    with pytest.raises(InvalidOptionError, match="'x'.*JPEG/PNG"):
        ds.pytorch(num_workers=0, decode_method={"x": "pil"})
    with pytest.raises(InvalidOptionError, match="'nope'"):
        ds.pytorch(num_workers=0, decode_method={"nope": "pil"})


def _flip(sample):
    return {"image": np.ascontiguousarray(sample["image"][:, ::-1]), "id": int(sample["id"])}


def _as_float(batch):
    return {**batch, "image": batch["image"].float() / 255}


def test_transform_and_batch_transform(small_ds):
    ds, images = small_ds
    loader = ds.pytorch(batch_size=25, num_workers=2, columns=["image", "id"], transform=_flip,
                        batch_transform=_as_float)
    for batch in loader:
        ids = batch["id"].numpy()
        expected = torch.from_numpy(images[ids][:, :, ::-1].copy()).float() / 255
        assert torch.allclose(batch["image"], expected)


def test_cuda_request_falls_back_to_cpu_with_a_warning(small_ds):
    ds, _ = small_ds
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.warns(RuntimeWarning, match="CUDA is not available"):
        loader = ds.pytorch(batch_size=64, num_workers=2, device="cuda", columns=["x"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = next(iter(loader))
    assert batch["x"].device.type == "cpu" and not loader.pin_memory


def test_null_samples_and_main_process_loading(tmp_path):
    ds = dls.create(str(tmp_path / "nulls"), {"v": dls.tensor("generic", dtype="int16", shape=(2,)), "id": "int64"})
    ds.append({"v": [np.array([i, i], dtype="int16") if i % 3 else None for i in range(10)], "id": np.arange(10)})
    batch = next(iter(ds.pytorch(batch_size=10, num_workers=0, shuffle=False, collate={"v": "list"})))
    assert [None if v is None else v.tolist() for v in batch["v"]] == \
        [[i, i] if i % 3 else None for i in range(10)]
    with pytest.raises(InvalidOptionError, match="null samples"):
        next(iter(ds.pytorch(batch_size=10, num_workers=0)))


@pytest.mark.parametrize("options", [{"batch_size": 0}, {"num_workers": -1}, {"collate": "zip"},
                                     {"columns": ["nope"]}, {"rank": 1, "world_size": 1}, {"transform": 3}])
def test_bad_options_fail_before_any_worker_starts(small_ds, options):
    ds, _ = small_ds
    with pytest.raises(InvalidOptionError):
        ds.pytorch(**options)


def test_sample_bytes_are_not_copied_for_fixed_shape_batches(small_ds):
    # The numpy fast path hands whole batches to torch (no per-sample tensors): check by type.
    ds, _ = small_ds
    batch = next(iter(ds.pytorch(batch_size=64, num_workers=0, columns=["x"])))
    assert isinstance(batch["x"], torch.Tensor) and batch["x"].is_contiguous()
    buf = io.BytesIO()
    torch.save(batch, buf)  # plain tensors: picklable across processes
    assert buf.tell() > 64 * 6 * 4


def test_memory_is_bounded_by_prefetch_depth_not_dataset_size(small_ds):
    from deeplake_spark.torch.prefetch import ChunkPrefetcher
    from deeplake_spark.torch.source import from_dataset

    ds, _ = small_ds
    source = from_dataset(ds, ["x", "id"])
    num_chunks = len(source.tensors[0].chunk_ids)
    batches = elastic_pass_order(source.layout(), first_epoch=0, num_epochs=1, num_workers=1, batch_size=10, seed=2,
                                 shuffle_window=2)
    peak = 0
    with ChunkPrefetcher(source.tensors, batches, prefetch_chunks=1, io_threads=2) as prefetcher:
        for i in range(len(batches)):
            prefetcher.chunks_for(i)
            peak = max(peak, prefetcher.live_chunks)
            prefetcher.release(i)
    # A batch mixes at most two windows of 2 chunks, plus 1 prefetched: far below the 12 chunks.
    assert num_chunks >= 10 and peak <= 2 * 2 + 1
