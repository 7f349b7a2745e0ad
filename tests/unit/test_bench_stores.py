"""The bench never measures our stores written in another chunk format than this checkout writes."""

from __future__ import annotations

import json
import os

from bench.__main__ import _drop_stale_stores


def test_stores_of_another_chunk_format_are_rebuilt_and_peers_kept(tmp_path):
    stores = tmp_path / "stores"
    (stores / "ours_raw_500" / "_tensors").mkdir(parents=True)
    (stores / "ours_raw_500.done").write_text("{}")
    (stores / "query_ours_100000").mkdir()
    (stores / "lance_raw_500").mkdir()
    (stores / "lance_raw_500.done").write_text("{}")
    (tmp_path / "jvm_scan_20000").mkdir()
    _drop_stale_stores(str(tmp_path))  # no stamp yet: stores of an older checkout
    assert sorted(os.listdir(stores)) == ["lance_raw_500", "lance_raw_500.done"]
    assert sorted(os.listdir(tmp_path)) == ["ours_format.json", "stores"]
    assert json.loads((tmp_path / "ours_format.json").read_text()) == {"payload_checksum": "xxh3_64"}
    # stores built under the current stamp stay
    (stores / "ours_raw_500").mkdir()
    (stores / "ours_raw_500.done").write_text("{}")
    _drop_stale_stores(str(tmp_path))
    assert (stores / "ours_raw_500.done").exists()
