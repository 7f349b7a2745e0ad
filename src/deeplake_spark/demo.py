"""The main demo: ``python -m deeplake_spark.demo`` (about a minute on 2 cores).

1. ingest scikit-learn's bundled digits (8x8 images, as PNG) with Spark into a deeplake dataset,
   in two appends (two versions);
2. join the images with a label table in Spark SQL (tabular rows only; the images stay refs);
3. peek at the first version (time travel);
4. turn the joined rows into torch DataLoaders (``make_spark_converter``: workers read the chunks
   straight from the dataset) and train a small CNN; print test accuracy and loader throughput.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import tempfile
import time
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Rows whose id % TEST_EVERY == 0 are the test split.
TEST_EVERY = 5


def digits_rows() -> tuple[list[tuple[int, bytes]], list[tuple[int, int, str]]]:
    """(id, PNG bytes) image rows and (id, label, name) label rows of sklearn's digits."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255 / 16)).round().astype(np.uint8)
    image_rows, label_rows = [], []
    for i, (img, label) in enumerate(zip(images, digits.target)):
        buf = io.BytesIO()
        Image.fromarray(img, mode="L").save(buf, format="PNG")
        image_rows.append((i, buf.getvalue()))
        label_rows.append((i, int(label), str(digits.target_names[label])))
    return image_rows, label_rows


def ingest(spark: Any, path: str) -> tuple[int, int]:
    """Write the digit images with Spark in two appends; returns (first version, latest version)."""
    import deeplake_spark as dls

    image_rows, label_rows = digits_rows()
    half = len(image_rows) // 2
    first = spark.createDataFrame(image_rows[:half], "id long, image binary")
    first.write.format("deeplake").mode("overwrite").save(path)
    first_version = dls.open(path).version
    rest = spark.createDataFrame(image_rows[half:], "id long, image binary")
    rest.write.format("deeplake").mode("append").save(path)
    spark.createDataFrame(label_rows, "id long, label long, name string").createOrReplaceTempView("digit_labels")
    spark.read.format("deeplake").load(path).createOrReplaceTempView("digits")
    return first_version, dls.open(path).version


def split_query(spark: Any, split: str) -> Any:
    """The SQL join of images and labels for ``split`` ("train" or "test")."""
    op = "!=" if split == "train" else "="
    return spark.sql(
        f"SELECT d.id, d.image, l.label FROM digits d JOIN digit_labels l ON d.id = l.id "
        f"WHERE d.id % {TEST_EVERY} {op} 0"
    )


def to_model_input(batch: dict[str, Any]) -> dict[str, Any]:
    """Runs in the loader workers: uint8 (B, 8, 8) -> float (B, 1, 8, 8) in [0, 1]."""
    return {"image": batch["image"].unsqueeze(1).float().div_(255), "label": batch["label"]}


def make_model() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )


def train(model: Any, converter: Any, *, epochs: int, batch_size: int = 32, num_workers: int = 2) -> float:
    """Train ``epochs`` epochs in one loader pass; returns the last epoch's mean loss."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    losses: list[float] = []
    with converter.make_torch_dataloader(batch_size=batch_size, num_epochs=epochs, num_workers=num_workers,
                                         shuffle=True, seed=0, batch_transform=to_model_input) as loader:
        for batch in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(batch["image"]), batch["label"])
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    per_epoch = max(1, len(losses) // epochs)
    return float(np.mean(losses[-per_epoch:]))


def accuracy(model: Any, converter: Any, *, num_workers: int = 2) -> float:
    import torch

    model.eval()
    correct = total = 0
    with torch.no_grad(), converter.make_torch_dataloader(batch_size=256, num_epochs=1, num_workers=num_workers,
                                                          shuffle=False, batch_transform=to_model_input) as loader:
        for batch in loader:
            correct += int((model(batch["image"]).argmax(1) == batch["label"]).sum())
            total += len(batch["label"])
    return correct / max(total, 1)


def loader_throughput(converter: Any, *, num_workers: int = 2, batch_size: int = 64) -> float:
    """Samples/s of one shuffled pass of decoded batches (no model)."""
    start = time.perf_counter()
    samples = 0
    with converter.make_torch_dataloader(batch_size=batch_size, num_epochs=1, num_workers=num_workers) as loader:
        for batch in loader:
            samples += len(batch["label"])
    return samples / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=None, help="dataset folder (default: a temp folder)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import deeplake_spark as dls

    work = args.path or os.path.join(tempfile.mkdtemp(prefix="deeplake_spark_demo_"), "digits")
    t0 = time.perf_counter()
    spark = dls.spark_session(master="local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    print(f"[1/5] Spark up in {time.perf_counter() - t0:.1f}s")

    t = time.perf_counter()
    first_version, latest_version = ingest(spark, work)
    print(f"[2/5] ingested {dls.open(work).__len__()} digit images with Spark into {work} "
          f"(versions {first_version} and {latest_version}) in {time.perf_counter() - t:.1f}s")

    old = spark.read.format("deeplake").option("versionAsOf", first_version).load(work)
    print(f"[3/5] time travel: version {first_version} had {old.count()} rows, version {latest_version} has "
          f"{spark.table('digits').count()}")
    spark.sql("SELECT l.name AS digit, count(*) AS n FROM digits d JOIN digit_labels l ON d.id = l.id "
              "GROUP BY l.name ORDER BY digit").show(10)

    t = time.perf_counter()
    train_conv = dls.make_spark_converter(split_query(spark, "train"))
    test_conv = dls.make_spark_converter(split_query(spark, "test"))
    print(f"[4/5] converters ({train_conv.mode}: no copy) for {len(train_conv)} train / {len(test_conv)} test "
          f"rows in {time.perf_counter() - t:.1f}s")

    import torch

    # A model this small trains fastest on one thread; more threads spin and wait on a busy machine.
    torch.set_num_threads(1)
    t = time.perf_counter()
    model = make_model()
    loss = train(model, train_conv, epochs=args.epochs, num_workers=args.workers)
    acc = accuracy(model, test_conv, num_workers=args.workers)
    throughput = loader_throughput(train_conv, num_workers=args.workers)
    print(f"[5/5] trained a small CNN for {args.epochs} epochs in {time.perf_counter() - t:.1f}s: "
          f"last loss {loss:.3f}, test accuracy {acc:.1%}; loader {throughput:,.0f} samples/s "
          f"({args.workers} workers, PNG decode included)")
    print(f"done in {time.perf_counter() - t0:.1f}s")
    spark.stop()
    return {"accuracy": acc, "throughput": throughput, "loss": loss}


if __name__ == "__main__":
    main()
