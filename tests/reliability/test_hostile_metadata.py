"""Hostile or damaged tensor specs in the Delta schema: a typed error at open, naming the column.

The spec of a tensor column lives as JSON in the Delta field metadata (``deeplake.tensor``). A
foreign writer (or a damaged log) can put anything there: text that is not JSON, a spec with 3000
dimensions (which used to end in RecursionError when Spark built nested array types), an unknown
htype. ``dls.open`` must raise ``CorruptDatasetError`` naming the dataset and the column, and
nothing may be committed or read beyond the log.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import deeplake_spark as dls
from deeplake_spark.dataset.refs import TENSOR_METADATA_KEY
from deeplake_spark.errors import CorruptDatasetError, DeepLakeSparkError

FIRST_COMMIT = os.path.join("_delta_log", f"{0:020d}.json")


def _dataset_with_spec(path: str, spec_text: str) -> None:
    """A real dataset (two rows) whose ``emb`` column's spec metadata is replaced by ``spec_text``."""
    ds = dls.create(path, {"id": "int64", "emb": dls.tensor("embedding", shape=(3,))})
    ds.append({"id": [0, 1], "emb": np.ones((2, 3), np.float32)})
    commit = os.path.join(path, FIRST_COMMIT)
    lines = []
    with open(commit) as f:
        for line in f:
            action = json.loads(line)
            if "metaData" in action:
                schema = json.loads(action["metaData"]["schemaString"])
                for field in schema["fields"]:
                    if field["name"] == "emb":
                        field["metadata"][TENSOR_METADATA_KEY] = spec_text
                action["metaData"]["schemaString"] = json.dumps(schema)
            lines.append(json.dumps(action))
    with open(commit, "w") as f:
        f.write("\n".join(lines) + "\n")


def _spec(**overrides) -> str:
    spec = {"name": "emb", "htype": "embedding", "dtype": "float32", "shape": [3], "compression": "none",
            "chunk_size": 1 << 20}
    spec.update(overrides)
    return json.dumps(spec)


HOSTILE = {
    # case: (metadata text, words the message must hold)
    "malformed JSON": ('{"htype": "embedding", "shape": [3', "not valid JSON"),
    "JSON that is not an object": ("[1, 2, 3]", "not a JSON object"),
    "3000 dimensions": (_spec(shape=[1] * 3000), "3000 dimensions"),
    "unknown htype": (_spec(htype="hologram"), "unknown htype 'hologram'"),
    "unknown dtype": (_spec(dtype="complex128"), "unknown dtype"),
    "negative dimension": (_spec(shape=[-3]), "negative dimension"),
    "dimension above u32": (_spec(shape=[1 << 40]), "bad dimension"),
    "shape that is a string": (_spec(shape="3"), "not a list of dimensions"),
    "htype that is a list": (_spec(htype=["image"]), "htype"),
    "chunk_size zero": (_spec(chunk_size=0), "chunk_size"),
    "chunk_size text": (_spec(chunk_size="big"), "chunk_size"),
    "deeply nested JSON": ("[" * 100_000 + "]" * 100_000, "emb"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_tensor_spec_is_a_typed_error_at_open(tmp_path, case):
    spec_text, words = HOSTILE[case]
    path = str(tmp_path / "ds")
    _dataset_with_spec(path, spec_text)
    log_before = sorted(os.listdir(os.path.join(path, "_delta_log")))
    for kwargs in ({}, {"version": 1}):
        with pytest.raises(CorruptDatasetError) as info:
            dls.open(path, **kwargs)
        message = str(info.value)
        assert isinstance(info.value, DeepLakeSparkError) and isinstance(info.value, ValueError)
        assert path in message and "'emb'" in message and words in message, message
    assert sorted(os.listdir(os.path.join(path, "_delta_log"))) == log_before  # nothing committed


def test_a_valid_rewritten_spec_still_opens(tmp_path):
    """The crafting above leaves a readable dataset when the spec is sound (the test's control)."""
    path = str(tmp_path / "ds")
    _dataset_with_spec(path, _spec(chunk_size=4096))
    ds = dls.open(path)
    assert ds.schema.tensors["emb"].chunk_size == 4096
    np.testing.assert_array_equal(ds[1]["emb"], np.ones(3, np.float32))


@pytest.mark.parametrize("source", ["deeplake", "deeplake-jvm"])
def test_a_3000_dim_spec_is_refused_by_both_spark_readers(spark, tmp_path, source):
    """Array mode builds a nested Spark type per dimension: a 3000-dim spec was a RecursionError in
    Python and a StackOverflowError in the JVM reader. Both refuse it, naming the column."""
    path = str(tmp_path / "ds")
    _dataset_with_spec(path, _spec(shape=[1] * 3000))
    with pytest.raises(Exception) as info:
        spark.read.format(source).option("tensors", "array").load(path).collect()
    message = str(info.value)
    assert "emb" in message and "3000" in message, message[:2000]
    assert "StackOverflowError" not in message and "RecursionError" not in message
