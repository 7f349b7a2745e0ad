"""End to end: sklearn digits -> Spark write -> SQL join -> converter -> CNN >= 95% test accuracy.

Uses the README demo's own steps (``deeplake_spark.demo``) with the shared Spark session.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import deeplake_spark as dls
from deeplake_spark import demo


@pytest.mark.slow
def test_digits_train_through_spark_sql_and_the_converter(spark, tmp_path):
    path = str(tmp_path / "digits")
    first_version, latest_version = demo.ingest(spark, path)
    assert len(dls.open(path)) == 1797 and latest_version > first_version
    assert spark.read.format("deeplake").option("versionAsOf", first_version).load(path).count() == 1797 // 2

    train_conv = dls.make_spark_converter(demo.split_query(spark, "train"))
    test_conv = dls.make_spark_converter(demo.split_query(spark, "test"))
    assert train_conv.mode == test_conv.mode == "view"  # images stay in the dataset, nothing copied
    assert len(test_conv) == len(range(0, 1797, demo.TEST_EVERY)) and len(train_conv) + len(test_conv) == 1797

    batch = next(iter(train_conv.make_torch_dataloader(batch_size=16, num_epochs=1, num_workers=2)))
    assert batch["image"].shape == (16, 8, 8) and batch["image"].dtype == torch.uint8
    assert set(batch) == {"id", "image", "label"}

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, more spin on a busy machine
    try:
        model = demo.make_model()
        demo.train(model, train_conv, epochs=10, num_workers=2)
        acc = demo.accuracy(model, test_conv, num_workers=2)
    finally:
        torch.set_num_threads(threads)
    assert acc >= 0.95, f"test accuracy {acc:.3f}"
