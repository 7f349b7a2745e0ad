from __future__ import annotations

import os

import pytest

from deeplake_spark.errors import StorageError
from deeplake_spark.storage import normalize_uri


def test_local_paths_become_absolute_and_uris_keep_their_scheme(tmp_path):
    assert normalize_uri(str(tmp_path / "a" / ".." / "b")) == str(tmp_path / "b")
    assert normalize_uri(f"file://{tmp_path}/x") == f"{tmp_path}/x"
    assert normalize_uri("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert normalize_uri("~/ds") == os.path.expanduser("~/ds")


def test_databricks_dbfs_paths_use_the_fuse_mount():
    assert normalize_uri("dbfs:/datasets/pets") == "/dbfs/datasets/pets"


def test_single_slash_scheme_is_refused_instead_of_becoming_a_local_folder():
    with pytest.raises(StorageError, match="unsupported path 'gs:/x'"):
        normalize_uri("gs:/x")
