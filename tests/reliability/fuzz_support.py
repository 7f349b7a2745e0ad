"""Valid chunks, mutations that keep checksums valid ("lying" headers/payloads), and the decode check.

Used by tests/reliability/test_fuzz_chunks.py (hypothesis + a seeded campaign in a memory-limited
child process) and by ``python -m bench.soak``.
"""

from __future__ import annotations

import io
import random
import resource
import struct
import time
from collections import Counter
from typing import Any

import numpy as np

from deeplake_spark.errors import DeepLakeSparkError
from deeplake_spark.format import ChunkBuilder, ChunkReader, TensorSpec, encode_sample
from deeplake_spark.format.checksum import ALGORITHMS, CRC32C, checksum
from deeplake_spark.format.header import FIXED_HEADER_SIZE

# (name, struct format, offset) of the fixed header fields a lying header rewrites
HEADER_FIELDS = [
    ("version", "<H", 4), ("dtype", "<B", 6), ("compression", "<B", 7), ("algorithm", "<B", 8),
    ("count", "<I", 12), ("header_len", "<I", 16), ("payload_len", "<Q", 24), ("raw_len", "<Q", 32),
    ("payload_checksum", "<Q", 40), ("total_dims", "<I", 48),
]
_CRC_OFFSET = 20
_MAX = {"<B": 0xFF, "<H": 0xFFFF, "<I": 0xFFFFFFFF, "<Q": 0xFFFFFFFFFFFFFFFF}
NUMERIC = ["bool", "uint8", "uint16", "int32", "int64", "float16", "float32", "float64"]


def valid_chunk(rng: random.Random) -> bytes:
    """A chunk of 0-6 random samples: numeric (none/lz4), text, or small PNG/JPEG images."""
    kind = rng.choice(["numeric", "numeric", "lz4", "str", "png", "jpeg"])
    if kind == "str":
        spec = TensorSpec.create("t", "text")
        values: list[Any] = ["".join(rng.choice("aé€😀 ") for _ in range(rng.randint(0, 8)))
                             for _ in range(rng.randint(0, 6))]
    elif kind in ("png", "jpeg"):
        spec = TensorSpec.create("t", "image", compression=kind)
        values = [np.full((rng.randint(1, 5), rng.randint(1, 5), 3), rng.randint(0, 255), dtype=np.uint8)
                  for _ in range(rng.randint(0, 3))]
    else:
        dtype = rng.choice(NUMERIC)
        spec = TensorSpec.create("t", "generic", dtype=dtype, compression="lz4" if kind == "lz4" else "none")
        values = []
        for _ in range(rng.randint(0, 6)):
            shape = tuple(rng.randint(0, 4) for _ in range(rng.randint(0, 3)))
            values.append((np.arange(int(np.prod(shape))) % 2).reshape(shape).astype(dtype))
    builder = ChunkBuilder(spec)
    for value in values:
        builder.add(encode_sample(spec, value))
    return builder.finish()


def _interesting(rng: random.Random, fmt: str, current: int) -> int:
    top = _MAX[fmt]
    return rng.choice([0, 1, 2, 7, 8, 63, 64, 65, current - 1, current + 1, current * 2, current + 8,
                       top, top - 1, top // 2, top // 2 + 1, 1 << 28, (1 << 28) + 1, rng.randint(0, top)]) & top


def fix_header_crc(data: bytearray) -> None:
    """Recompute the header checksum over the header length the (possibly rewritten) header claims."""
    if len(data) < FIXED_HEADER_SIZE:
        return
    header_len = struct.unpack_from("<I", data, 16)[0]
    if not _CRC_OFFSET + 4 <= header_len <= len(data):
        return
    header = bytearray(data[:header_len])
    struct.pack_into("<I", header, _CRC_OFFSET, 0)
    struct.pack_into("<I", data, _CRC_OFFSET, checksum(CRC32C, bytes(header)) & 0xFFFFFFFF)


def fix_payload_checksum(data: bytearray) -> None:
    """Recompute the payload checksum so a rewritten payload passes verification."""
    if len(data) < FIXED_HEADER_SIZE:
        return
    header_len, = struct.unpack_from("<I", data, 16)
    payload_len, = struct.unpack_from("<Q", data, 24)
    algorithm = data[8]
    if algorithm in ALGORITHMS.values() and header_len + payload_len <= len(data):
        struct.pack_into("<Q", data, 40, checksum(algorithm, bytes(data[header_len : header_len + payload_len])))


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """Apply 1-3 random mutations; most keep the header (and often the payload) checksums valid."""
    out = bytearray(data)
    applied = []
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["flip", "truncate", "extend", "field", "field", "field", "table", "table", "payload"])
        applied.append(op)
        if op == "flip" and out:
            for _ in range(rng.randint(1, 3)):
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif op == "truncate":
            del out[rng.randint(0, len(out)):]
        elif op == "extend":
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == "field" and len(out) >= FIXED_HEADER_SIZE:
            name, fmt, offset = rng.choice(HEADER_FIELDS)
            applied[-1] = f"field:{name}"
            current = struct.unpack_from(fmt, out, offset)[0]
            struct.pack_into(fmt, out, offset, _interesting(rng, fmt, current))
            if rng.random() < 0.3:
                fix_payload_checksum(out)
            fix_header_crc(out)
        elif op == "table" and len(out) > FIXED_HEADER_SIZE:
            # byte positions (u64), ndims (u8) and dims (u32) live between the fixed header and header_len
            header_len = min(struct.unpack_from("<I", out, 16)[0], len(out))
            if header_len > FIXED_HEADER_SIZE:
                fmt = rng.choice(["<Q", "<B", "<I"])
                size = struct.calcsize(fmt)
                if header_len - size > FIXED_HEADER_SIZE:
                    offset = rng.randrange(FIXED_HEADER_SIZE, header_len - size + 1)
                    current = struct.unpack_from(fmt, out, offset)[0]
                    struct.pack_into(fmt, out, offset, _interesting(rng, fmt, current))
            fix_header_crc(out)
        elif op == "payload" and len(out) > FIXED_HEADER_SIZE:
            header_len = struct.unpack_from("<I", out, 16)[0]
            if FIXED_HEADER_SIZE <= header_len < len(out):
                for _ in range(rng.randint(1, 4)):
                    out[rng.randrange(header_len, len(out))] = rng.randrange(256)
            fix_payload_checksum(out)
            fix_header_crc(out)
    return bytes(out), applied


class UnexpectedError(AssertionError):
    """The decoder raised something other than the library's own errors."""


def exercise(data: bytes) -> str:
    """Decode every sample of ``data`` through ``ChunkReader``; the outcome name, or UnexpectedError.

    Allowed: success, any ``DeepLakeSparkError``, and ``IndexError`` for an out-of-range index only.
    """
    try:
        reader = ChunkReader(data, where="fuzz chunk")
        count = len(reader)
        for index in range(count):
            reader.shape(index)
            reader.sample_bytes(index)
            value = reader.sample(index)
            if isinstance(value, np.ndarray) and value.nbytes > 64 * len(data) + (1 << 20):
                raise UnexpectedError(f"sample {index} decoded to {value.nbytes} bytes from a {len(data)}-byte chunk")
    except DeepLakeSparkError as e:
        return type(e).__name__
    except Exception as e:  # anything else is a finding
        raise UnexpectedError(f"{type(e).__name__}: {e}") from e
    for index in (count, -count - 1):
        try:
            reader.sample(index)
        except IndexError:
            continue
        raise UnexpectedError(f"index {index} of {count} samples did not raise IndexError")
    return "ok"


def run_campaign(inputs: int, seed: int, memory_headroom: int | None = None) -> dict[str, Any]:
    """Decode ``inputs`` mutated chunks (seeded); optionally under RLIMIT_AS = current size + headroom."""
    if memory_headroom is not None:
        with open("/proc/self/statm") as f:
            vm_bytes = int(f.read().split()[0]) * resource.getpagesize()
        limit = vm_bytes + memory_headroom
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    mutations: Counter[str] = Counter()
    failures: list[str] = []
    slowest = 0.0
    seeds_valid = [valid_chunk(rng) for _ in range(64)]
    for i in range(inputs):
        base = seeds_valid[i % len(seeds_valid)]
        data, applied = mutate(base, rng) if i >= len(seeds_valid) else (base, ["none"])
        mutations.update(applied)
        start = time.perf_counter()
        try:
            outcomes[exercise(data)] += 1
        except (UnexpectedError, MemoryError) as e:
            outcomes["UNEXPECTED"] += 1
            if len(failures) < 20:
                failures.append(f"input {i} ({applied}): {type(e).__name__}: {e} :: {data[:96].hex()}")
        slowest = max(slowest, time.perf_counter() - start)
    return {"inputs": inputs, "outcomes": dict(outcomes), "mutations": dict(mutations), "failures": failures,
            "slowest_s": slowest}


def campaign_child(inputs: int, seed: int, memory_headroom: int, out: Any) -> None:
    """Child-process entry point: the campaign under a memory limit, result sent through ``out``."""
    try:
        out.put(run_campaign(inputs, seed, memory_headroom))
    except BaseException as e:  # report, then let the parent fail the test
        out.put({"crash": f"{type(e).__name__}: {e}"})
        raise


def png_bytes(shape: tuple[int, ...]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros(shape, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
