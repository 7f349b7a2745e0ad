"""The small per-cell reference a Delta row holds for each tensor sample."""

from __future__ import annotations

import pyarrow as pa

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


def chunk_relpath(tensor: str, chunk_id: str) -> str:
    """Path of a chunk file relative to the dataset root."""
    return f"{TENSORS_DIR}/{tensor}/{chunk_id}{CHUNK_SUFFIX}"


def chunk_id_of(relpath: str) -> str:
    """Inverse of :func:`chunk_relpath` for the file name part."""
    name = relpath.rsplit("/", 1)[-1]
    return name[: -len(CHUNK_SUFFIX)] if name.endswith(CHUNK_SUFFIX) else name
