"""Validate and encode one sample for a tensor spec; decode it back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from deeplake_spark.errors import SchemaError
from deeplake_spark.format.images import decode_image, encode_image, probe_image
from deeplake_spark.format.limits import shape_problem
from deeplake_spark.format.spec import VIDEO_COMPRESSIONS, TensorSpec
from deeplake_spark.format.video import VideoSample, check_video, decode_video, probe_video


@dataclass(frozen=True)
class EncodedSample:
    """Bytes as stored in the chunk payload (before chunk-level compression) and the sample shape."""

    data: bytes
    shape: tuple[int, ...]


def _check_shape(spec: TensorSpec, shape: tuple[int, ...], where: str) -> None:
    # what the chunk header cannot hold is refused here, at append time, not by a later read
    problem = shape_problem(shape)
    if problem is not None:
        raise SchemaError(f"{where}: a sample of shape {shape if len(shape) <= 8 else f'{shape[:8]}...'} cannot be "
                          f"stored: {problem}")
    if spec.shape is None:
        return
    if len(shape) != len(spec.shape):
        raise SchemaError(f"{where}: rank {len(shape)} (shape {shape}) does not match tensor shape {spec.shape}")
    for got, want in zip(shape, spec.shape):
        if want is not None and got != want:
            raise SchemaError(f"{where}: shape {shape} does not match tensor shape {spec.shape}")
    if spec.htype == "point_cloud" and shape[0] and shape[1] < 3:  # an empty cloud (no points) has no width
        raise SchemaError(f"{where}: a point cloud of shape {shape} has {shape[1]} values per point; a point_cloud "
                          "tensor needs at least 3 (x, y, z)")


def _to_array(spec: TensorSpec, value: Any, where: str) -> np.ndarray:
    target = np.dtype(spec.dtype)
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        raise SchemaError(f"{where}: got {type(value).__name__} for a {spec.dtype} tensor")
    try:
        arr = np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise SchemaError(f"{where}: value is not a rectangular array: {e}") from e
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise SchemaError(f"{where}: values of type {arr.dtype} cannot be stored in a {spec.dtype} tensor")
    if arr.dtype != target:
        src = arr.dtype.kind
        if src not in "biuf":
            raise SchemaError(f"{where}: dtype {arr.dtype} cannot be stored in a {spec.dtype} tensor")
        if arr.size and target.kind == "b" and src != "b":
            if not np.isin(arr, (0, 1)).all():
                raise SchemaError(f"{where}: only 0/1 values can be stored in a bool tensor")
        elif arr.size and target.kind in "iu":
            if src == "f" and (not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr))):
                raise SchemaError(f"{where}: non-integral or non-finite values cannot be stored in a {spec.dtype} tensor")
            info = np.iinfo(target)
            if src != "b" and (arr.min() < info.min or arr.max() > info.max):
                raise SchemaError(f"{where}: values out of range for {spec.dtype}")
        arr = arr.astype(target)
    return arr


def encode_sample(spec: TensorSpec, value: Any, *, where: str | None = None) -> EncodedSample:
    """Validate ``value`` against ``spec`` and return its stored bytes and shape.

    Accepts numpy arrays / nested lists / scalars; for jpeg/png tensors also already-encoded image
    bytes, stored untouched; for str tensors ``str`` (and any JSON value for htype ``json``).
    """
    where = where or f"tensor {spec.name!r}"
    if value is None:
        raise SchemaError(f"{where}: null sample in a tensor column (nulls are stored as missing refs)")
    if spec.dtype == "str":
        if spec.htype == "json":
            text = value if isinstance(value, str) else _json_text(value, where)
        elif isinstance(value, str):
            text = value
        elif isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "UO":
            text = str(value.item())
        else:
            raise SchemaError(f"{where}: expected str for a text tensor, got {type(value).__name__}")
        try:
            return EncodedSample(text.encode("utf-8"), ())
        except UnicodeEncodeError as e:  # lone surrogates: not text that UTF-8 (or any reader) can hold
            raise SchemaError(f"{where}: text is not valid Unicode ({e.reason} at position {e.start}: "
                              f"{text[e.start:e.end]!r}); UTF-8 cannot store it") from e
    if spec.is_video:
        return _encode_video(spec, value, where)
    if spec.is_sample_compressed:
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
            shape = probe_image(data, where=where)
            _check_shape(spec, shape, where)
            return EncodedSample(data, shape)
        arr = _to_array(spec, value, where)
        _check_shape(spec, arr.shape, where)
        return EncodedSample(encode_image(arr, spec.compression, where=where), arr.shape)
    if isinstance(value, (bytes, bytearray, memoryview)) and spec.htype == "image":
        raise SchemaError(f"{where}: encoded image bytes need compression jpeg or png, tensor has {spec.compression}")
    arr = _to_array(spec, value, where)
    if arr.size == 0 and spec.shape is not None and arr.ndim != len(spec.shape):
        # an empty list for e.g. a (None, 4) bbox tensor means "no boxes": shape (0, 4)
        arr = arr.reshape(tuple(0 if d is None else d for d in spec.shape))
    _check_shape(spec, arr.shape, where)
    return EncodedSample(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(), arr.shape)


def _encode_video(spec: TensorSpec, value: Any, where: str) -> EncodedSample:
    """A video file's bytes, stored as given once its container is checked; shape probed when PyAV is here."""
    if isinstance(value, VideoSample):
        value = value.data
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise SchemaError(f"{where}: a video tensor stores {spec.compression} file bytes, not {type(value).__name__} "
                          "(encode frames to a video file first, e.g. with PyAV)")
    data = bytes(value)
    check_video(data, spec.compression, where=where)
    shape = probe_video(data, where=where)
    _check_shape(spec, shape, where)
    return EncodedSample(data, shape)


def _json_text(value: Any, where: str) -> str:
    """JSON text of ``value``; NaN/inf are refused since they are not JSON and other readers fail on them."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise SchemaError(f"{where}: value of type {type(value).__name__} is not JSON ({e}); a json tensor stores "
                          "dicts, lists, str, int, finite float, bool and None") from e


def decode_sample(
    dtype: str, compression: str, data: bytes | memoryview, shape: tuple[int, ...], *, where: str = "sample",
    out: np.ndarray | None = None,
) -> Any:
    """Turn stored sample bytes back into a numpy array (``str`` for text, :class:`VideoSample` for video).

    ``out`` (an array of the sample's shape and dtype, e.g. a row of a batch array): the array
    sample is written into it and ``out`` returned; JPEGs are decoded straight into it.
    """
    if dtype == "str":
        return bytes(data).decode("utf-8")
    if compression in ("jpeg", "png"):
        return decode_image(data, shape, where=where, out=out)
    if compression in VIDEO_COMPRESSIONS:
        return decode_video(data, compression, shape)
    arr = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    if out is not None:
        out[...] = arr
        return out
    return arr


def encode_block(spec: TensorSpec, values: np.ndarray, *, where: str | None = None) -> np.ndarray | None:
    """Validate a whole ``(N, *sample_shape)`` numpy batch at once for the fast write path.

    Returns the block as C-contiguous little-endian values of the tensor dtype, or ``None`` when
    the batch must go sample by sample (strings, images, object arrays, 0-row batches).
    """
    if (spec.dtype == "str" or spec.is_sample_compressed or not isinstance(values, np.ndarray)
            or values.ndim < 1 or values.dtype == object or values.dtype.kind in "USV" or len(values) == 0):
        return None
    where = where or f"tensor {spec.name!r}"
    block = _to_array(spec, values, where)
    _check_shape(spec, tuple(block.shape[1:]), where)
    return np.ascontiguousarray(block.astype(block.dtype.newbyteorder("<"), copy=False))
