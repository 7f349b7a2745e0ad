"""The small per-cell reference a Delta row holds for each tensor sample."""

from __future__ import annotations

import re

import pyarrow as pa

from deeplake_spark.errors import UnsafePathError

#: Metadata key on a ref column's Delta field holding the tensor spec (JSON).
TENSOR_METADATA_KEY = "deeplake.tensor"
#: Folder under the dataset root holding chunk files; the leading "_" keeps Delta VACUUM away.
TENSORS_DIR = "_tensors"
CHUNK_SUFFIX = ".dltc"

#: chunk: chunk id (file name stem); index: sample index inside the chunk; shape: sample shape;
#: nbytes: stored bytes of the sample (encoded image size for jpeg/png).
REF_TYPE = pa.struct(
    [
        pa.field("chunk", pa.string()),
        pa.field("index", pa.int32()),
        pa.field("shape", pa.list_(pa.int64())),
        pa.field("nbytes", pa.int64()),
    ]
)


#: What a chunk id may be: our writers use 32 hex digits; no separators or dots, so a ref can never
#: name a file outside its tensor's folder. The JVM reader checks the same pattern (ChunkCache.java).
CHUNK_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def check_chunk_id(chunk_id: object, *, where: str = "") -> str:
    """``chunk_id`` when it is a valid chunk id, else :class:`UnsafePathError` naming ``where``."""
    if not isinstance(chunk_id, str) or CHUNK_ID_PATTERN.fullmatch(chunk_id) is None:
        prefix = f"{where}: " if where else ""
        raise UnsafePathError(f"{prefix}invalid chunk id {chunk_id!r} in a ref (chunk ids match "
                              f"{CHUNK_ID_PATTERN.pattern}); the dataset's refs are damaged or hostile")
    return chunk_id


def chunk_relpath(tensor: str, chunk_id: str, *, where: str = "") -> str:
    """Path of a chunk file relative to the dataset root; refuses chunk ids that are not plain names."""
    return f"{TENSORS_DIR}/{tensor}/{check_chunk_id(chunk_id, where=where or f'tensor {tensor!r}')}{CHUNK_SUFFIX}"


def chunk_id_of(relpath: str) -> str:
    """Inverse of :func:`chunk_relpath` for the file name part."""
    name = relpath.rsplit("/", 1)[-1]
    return name[: -len(CHUNK_SUFFIX)] if name.endswith(CHUNK_SUFFIX) else name
