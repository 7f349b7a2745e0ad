"""Build chunk bytes from encoded samples (header + payload, docs/FORMAT.md)."""

from __future__ import annotations

import lz4.block
import numpy as np

from deeplake_spark.format.checksum import WRITE_ALGORITHM
from deeplake_spark.format.header import encode_header, header_len_for
from deeplake_spark.format.limits import MAX_HEADER_LEN, MAX_SAMPLES
from deeplake_spark.format.samples import EncodedSample
from deeplake_spark.format.spec import TensorSpec


class ChunkBuilder:
    """Accumulates encoded samples of one tensor until ``is_full``; ``finish()`` returns chunk bytes.

    >>> b = ChunkBuilder(TensorSpec.create("x", dtype="int32", shape=(2,)))
    >>> i = b.add(EncodedSample(np.arange(2, dtype="<i4").tobytes(), (2,)))
    >>> data = b.finish()
    """

    def __init__(self, spec: TensorSpec, *, checksum_algorithm: int = WRITE_ALGORITHM) -> None:
        self.spec = spec
        self._parts: list[bytes | memoryview] = []
        self._sizes: list[int] = []
        self._shapes: list[tuple[int, ...]] = []
        self._nbytes = 0
        self._total_dims = 0
        self._checksum_algorithm = checksum_algorithm

    def __len__(self) -> int:
        return len(self._shapes)

    @property
    def nbytes(self) -> int:
        """Bytes of sample data added so far (before chunk-level compression)."""
        return self._nbytes

    def fits(self, sample: EncodedSample) -> bool:
        """True when ``sample`` can join this chunk without passing the target size.

        An empty chunk accepts any sample, so a sample bigger than the target gets a chunk of its own.
        A chunk also closes before its sample count or header would pass the format's limits (many
        zero-byte samples never reach the size target).
        """
        if not self._shapes:
            return True
        count, dims = len(self._shapes) + 1, self._total_dims + len(sample.shape)
        return (self._nbytes + len(sample.data) <= self.spec.chunk_size and count <= MAX_SAMPLES
                and header_len_for(count, dims) <= MAX_HEADER_LEN)

    def room_for(self, sample_ndim: int) -> int:
        """How many more samples of rank ``sample_ndim`` the format's limits let this chunk take."""
        per_sample = 9 + 4 * sample_ndim  # a byte position, a rank byte and the dims (padding: 16)
        by_header = (MAX_HEADER_LEN - header_len_for(len(self._shapes), self._total_dims) - 16) // per_sample
        return max(0, min(MAX_SAMPLES - len(self._shapes), by_header))

    def add(self, sample: EncodedSample) -> int:
        """Append a sample; returns its index in the chunk."""
        self._parts.append(sample.data)
        self._sizes.append(len(sample.data))
        self._shapes.append(sample.shape)
        self._nbytes += len(sample.data)
        self._total_dims += len(sample.shape)
        return len(self._shapes) - 1

    def add_block(self, block: np.ndarray) -> int:
        """Append ``len(block)`` same-shape samples at once (already validated, C-contiguous,
        little-endian); returns the index of the first. Avoids per-sample Python work."""
        count = len(block)
        sample_nbytes = block[0].nbytes if count else 0
        if block.size:
            self._parts.append(memoryview(np.ascontiguousarray(block)).cast("B"))
        self._sizes.extend([sample_nbytes] * count)
        self._shapes.extend([tuple(block.shape[1:])] * count)
        self._nbytes += sample_nbytes * count
        self._total_dims += (block.ndim - 1) * count
        return len(self._shapes) - count

    def finish(self, chunk_id: str | None = None) -> bytes:
        """Serialize header + payload, the header recording ``chunk_id`` (the id the chunk file is
        named after: ``header.chunk_tag``). The builder can be reused after ``reset()``."""
        positions = np.zeros(len(self._shapes) + 1, dtype=np.uint64)
        np.cumsum(self._sizes, out=positions[1:])
        # one part (a block from add_block) is compressed/written without an extra copy
        raw = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        payload = lz4.block.compress(raw, store_size=False) if self.spec.compression == "lz4" else raw
        header = encode_header(
            dtype=self.spec.dtype,
            compression=self.spec.compression,
            byte_positions=positions,
            shapes=self._shapes,
            payload=payload,
            raw_payload_len=len(raw),
            checksum_algorithm=self._checksum_algorithm,
            where=f"tensor {self.spec.name!r}",
            chunk_id=chunk_id,
        )
        return header + payload

    def reset(self) -> None:
        self._parts.clear()
        self._sizes.clear()
        self._shapes.clear()
        self._nbytes = 0
        self._total_dims = 0
