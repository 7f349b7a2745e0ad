"""What the chunk format can hold: ONE set of limits shared by the writer, the reader and the specs.

The writer refuses at append time whatever the reader would later call corrupt, so every limit a
reader checks lives here and nowhere else (the JVM reader mirrors them in Chunk.java).
"""

from __future__ import annotations

#: Most dimensions of one sample (and of a tensor spec's shape). The header stores a sample's rank
#: as a u8, but readers cap it at 32 to bound the shape table a lying header can ask for.
MAX_NDIM = 32
#: Largest size of one dimension: dims are stored as u32.
MAX_DIM = (1 << 32) - 1
#: Most samples in one chunk (caps the byte-position table a lying header can ask for).
MAX_SAMPLES = 1 << 28
#: u32 fields of the fixed header: header length and the total count of dims.
MAX_HEADER_LEN = (1 << 32) - 1
MAX_TOTAL_DIMS = (1 << 32) - 1
#: Readers refuse an LZ4 payload that claims to inflate more than this (LZ4 itself cannot exceed ~255x).
MAX_LZ4_RATIO = 255


def shape_problem(shape: tuple[int, ...]) -> str | None:
    """Why a sample of ``shape`` cannot be stored in a chunk, or None when it can."""
    if len(shape) > MAX_NDIM:
        return f"rank {len(shape)} is above the format's limit of {MAX_NDIM} dimensions"
    for dim in shape:
        if not 0 <= dim <= MAX_DIM:
            return f"dimension {dim} is outside 0..{MAX_DIM} (dims are stored as u32)"
    return None
