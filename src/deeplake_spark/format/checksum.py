"""Payload checksums: XXH3-64 (what writers use: ~5x faster than XXH64, reads memoryviews without a
copy and releases the GIL), XXH64 (chunks written before XXH3) or CRC-32C (also the header's)."""

from __future__ import annotations

import google_crc32c
import xxhash

CRC32C = 1
XXH64 = 2
XXH3_64 = 3
ALGORITHMS = {"crc32c": CRC32C, "xxh64": XXH64, "xxh3_64": XXH3_64}
#: What writers record for the payload: re-verifying chunks that are not cached is one more pass over every
#: byte (XXH3-64 ~40 GB/s a core here, XXH64 ~8.5 GB/s).
WRITE_ALGORITHM = XXH3_64


def checksum(algorithm: int, data: bytes | memoryview) -> int:
    """Checksum of ``data`` with the algorithm whose on-disk code is ``algorithm`` (seed 0)."""
    if algorithm == XXH3_64:
        return xxhash.xxh3_64_intdigest(data)
    if algorithm == XXH64:
        return xxhash.xxh64_intdigest(data)
    if algorithm == CRC32C:
        return google_crc32c.value(bytes(data) if isinstance(data, memoryview) else data)
    raise ValueError(f"unknown checksum algorithm code {algorithm}")
