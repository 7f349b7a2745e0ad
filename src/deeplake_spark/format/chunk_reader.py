"""Read samples out of chunk bytes without decoding the other samples."""

from __future__ import annotations

from typing import Any

import lz4.block
import pyarrow as pa

from deeplake_spark.errors import CorruptChunkError
from deeplake_spark.format.checksum import checksum
from deeplake_spark.format.header import ChunkHeader, decode_header
from deeplake_spark.format.samples import decode_sample

_LZ4_RAW = pa.Codec("lz4_raw")


class ChunkReader:
    """Random access to the samples of one chunk.

    The payload checksum is verified once on construction (``verify=True``); an LZ4 payload is
    decompressed once, on first access, and kept. JPEG/PNG samples are decoded one at a time.
    ``where`` names the chunk (dataset, tensor, file) in error messages.

    A verified LZ4 payload is decompressed by Arrow's LZ4 codec, which releases the GIL for the
    whole call and writes straight into its own buffer (python-lz4 copies its output into a
    ``bytes`` while holding the GIL), so loader threads decompress in parallel. Arrow does not
    report how many bytes it wrote: an unverified payload (``verify=False``) goes through
    python-lz4, which checks that it decompresses to exactly the size the header records.
    """

    def __init__(self, data: bytes | memoryview, *, where: str = "chunk", verify: bool = True) -> None:
        self._data = memoryview(data)
        self.where = where
        self.header: ChunkHeader = decode_header(self._data, where=where)
        end = self.header.header_len + self.header.payload_len
        if len(self._data) < end:
            raise CorruptChunkError(f"{where}: truncated chunk ({len(self._data)} bytes, expected {end})")
        if len(self._data) > end:
            raise CorruptChunkError(f"{where}: {len(self._data) - end} unexpected trailing bytes")
        self._payload = self._data[self.header.header_len : end]
        if verify and checksum(self.header.checksum_algorithm, self._payload) != self.header.payload_checksum:
            raise CorruptChunkError(f"{where}: payload checksum mismatch (damaged chunk file)")
        self._verified = verify
        self._raw: memoryview | None = None if self.header.compression == "lz4" else self._payload

    @classmethod
    def from_decompressed(cls, header: bytes | memoryview, raw_payload: bytes | memoryview, *,
                          where: str = "chunk") -> ChunkReader:
        """A reader over a chunk whose payload was already verified and decompressed (by another loader
        worker, see ``torch/chunk_share.py``): ``header`` is the chunk's header bytes only."""
        self = cls.__new__(cls)
        self._data = memoryview(header)
        self.where = where
        self.header = decode_header(self._data, where=where)
        if len(raw_payload) != self.header.raw_payload_len:
            raise CorruptChunkError(f"{where}: decompressed payload has {len(raw_payload)} bytes, "
                                    f"the header says {self.header.raw_payload_len}")
        self._payload = memoryview(b"")
        self._verified = True
        self._raw = memoryview(raw_payload)
        return self

    @property
    def data(self) -> memoryview:
        """The chunk's stored bytes, header included (the header only for ``from_decompressed``)."""
        return self._data

    def __len__(self) -> int:
        return self.header.sample_count

    @property
    def raw_payload(self) -> memoryview:
        """Payload after chunk-level decompression (decompressed once, then cached)."""
        if self._raw is None:
            size = self.header.raw_payload_len
            if self._verified:
                # The checksum matched the bytes the writer compressed from exactly ``size`` bytes.
                try:
                    raw = _LZ4_RAW.decompress(self._payload, decompressed_size=size)
                except (OSError, pa.ArrowException) as e:
                    raise CorruptChunkError(f"{self.where}: LZ4 payload does not decompress: {e}") from e
            else:
                try:
                    raw = lz4.block.decompress(self._payload, uncompressed_size=size)
                except lz4.block.LZ4BlockError as e:
                    raise CorruptChunkError(f"{self.where}: LZ4 payload does not decompress: {e}") from e
                if len(raw) != size:
                    raise CorruptChunkError(f"{self.where}: LZ4 payload decompressed to the wrong size")
            self._raw = memoryview(raw)
        return self._raw

    def _check_index(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.where}: sample index {index} out of range for {len(self)} samples")
        return index % len(self) if len(self) else index

    def shape(self, index: int) -> tuple[int, ...]:
        return self.header.shape(self._check_index(index))

    def sample_bytes(self, index: int) -> memoryview:
        """Stored bytes of one sample: the encoded image for jpeg/png, raw little-endian values else."""
        index = self._check_index(index)
        pos = self.header.byte_positions
        return self.raw_payload[int(pos[index]) : int(pos[index + 1])]

    def sample(self, index: int, out: Any = None) -> Any:
        """Decoded sample: a numpy array (read-only view for uncompressed data) or ``str``.

        ``out``: a writable array of the sample's shape and dtype to write the sample into (returned):
        a loader's batch row, which JPEG samples are decoded straight into.
        """
        index = self._check_index(index)
        try:
            return decode_sample(
                self.header.dtype,
                self.header.compression,
                self.sample_bytes(index),
                self.header.shape(index),
                where=f"{self.where}, sample {index}",
                out=out,
            )
        except ValueError as e:
            if isinstance(e, CorruptChunkError) or type(e).__module__.startswith("deeplake_spark"):
                raise
            raise CorruptChunkError(f"{self.where}, sample {index}: {e}") from e
