"""Checksums: xxhash64 (payload default: fastest, reads memoryviews without a copy) or crc32c (header)."""

from __future__ import annotations

import google_crc32c
import xxhash

CRC32C = 1
XXH64 = 2
ALGORITHMS = {"crc32c": CRC32C, "xxh64": XXH64}


def checksum(algorithm: int, data: bytes | memoryview) -> int:
    """Checksum of ``data`` with the algorithm whose on-disk code is ``algorithm``."""
    if algorithm == CRC32C:
        return google_crc32c.value(bytes(data) if isinstance(data, memoryview) else data)
    if algorithm == XXH64:
        return xxhash.xxh64_intdigest(data)
    raise ValueError(f"unknown checksum algorithm code {algorithm}")
