"""The bench's issue-#13 peers and data kinds: Mosaic Streaming and Lance read back exactly the samples
ours stores, through real torch DataLoaders with worker processes; the data kinds have the shapes the
cases promise. No timings are asserted."""

from __future__ import annotations

import numpy as np
import pytest

from bench import data


@pytest.fixture(autouse=True)
def _data_cache(tmp_path, monkeypatch):
    """Generated samples go to the test's folder, not bench/_work."""
    monkeypatch.setattr(data, "WORK_DIR", str(tmp_path / "work"))


def test_data_kinds_have_the_promised_shapes():
    arrays, labels = data.load("raw", 3)
    assert arrays.shape == (3, 224, 224, 3) and arrays.dtype == np.uint8 and labels.shape == (3,)
    f16, _ = data.load("f16", 3)
    assert f16.shape == (3, 3, 128, 128) and f16.dtype == np.float16
    assert 0.0 <= float(f16.min()) and float(f16.max()) <= 1.0
    tiny, tiny_labels = data.load("tiny", 50)
    assert tiny.shape == (50, 28, 28) and tiny.dtype == np.uint8
    again, again_labels = data.load("tiny", 50)  # cached copy: same samples, same labels
    assert np.array_equal(np.asarray(again), tiny) and np.array_equal(again_labels, tiny_labels)
    jpegs, _ = data.load("varjpeg", 6)
    sizes = {data.decode_jpeg(j).shape for j in jpegs}
    assert len(sizes) > 1, "varjpeg samples should differ in size"
    for h, w, c in sizes:
        assert data.VARJPEG_SIDES[0] <= min(h, w) and max(h, w) <= data.VARJPEG_SIDES[1] and c == 3
    assert all(data.decode_resize(j).shape == (224, 224, 3) for j in jpegs)


@pytest.mark.parametrize("kind", ["f16", "images"])
def test_mosaic_streaming_reads_back_the_stored_samples(tmp_path, kind):
    pytest.importorskip("streaming")
    from torch.utils.data import DataLoader

    from bench.peers import mosaic

    n = 40
    path = str(tmp_path / f"mds_{kind}")
    assert mosaic.build(path, kind, n)["rows"] == n
    samples, labels = data.load(kind, n)
    ds = mosaic.make_dataset(path, kind, batch_size=8, shuffle=True)
    for i in (0, 17, n - 1):  # by sample id, whatever the shuffle
        item = ds[i]
        want = data.decode_jpeg(samples[i]) if kind == "images" else np.asarray(samples[i])
        assert np.array_equal(np.asarray(item["image"]), want)
        assert int(item["label"]) == int(labels[i])
    seen = []
    for batch in DataLoader(ds, batch_size=8, num_workers=2):
        seen.extend(int(x) for x in batch["label"])
    assert sorted(seen) == sorted(int(x) for x in labels), "one epoch with 2 workers yields every sample once"


@pytest.mark.parametrize("kind", ["raw", "varjpeg"])
def test_lance_take_reads_back_the_stored_samples(tmp_path, kind):
    pytest.importorskip("lance")
    from bench.peers import lance

    n = 30
    path = str(tmp_path / f"lance_{kind}")
    assert lance.build(path, kind, n)["rows"] == n
    samples, labels = data.load(kind, n)
    # this process opens the dataset here, so it must not fork Lance readers afterwards (see bench/peers/lance.py)
    taken = lance.LanceTake(path, kind, rows=n).__getitems__([5, 0, n - 1])
    assert taken["label"].tolist() == [int(labels[5]), int(labels[0]), int(labels[n - 1])]
    for row, i in enumerate((5, 0, n - 1)):
        want = data.decode_resize(samples[i]) if kind == "varjpeg" else np.asarray(samples[i])
        assert np.array_equal(taken["image"][row].numpy(), want)


def test_lance_loader_runs_an_epoch_with_forked_workers(tmp_path):
    pytest.importorskip("lance")
    from bench.measure import run_job
    from bench.peers import lance

    path = str(tmp_path / "lance_tiny")
    lance.build(path, "tiny", 300)
    # in a fresh process, as the bench runs it: there the loader process never opens the dataset
    result = run_job("peers.lance:stream", path=path, kind="tiny", batch_size=64, workers=2, min_seconds=0.0)
    assert result["epoch_samples"] == 300 and result["epochs"] == 1
    assert result["cpu_ms_per_sample"] > 0
