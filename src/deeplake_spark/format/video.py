"""Sample-level video: container files (MP4/QuickTime, WebM, Matroska, AVI) stored as given.

A video sample is one complete container file, never re-encoded. Writers check the container's
magic bytes (:func:`video_container`) and record the decoded shape ``(frames, height, width, 3)``
when PyAV (the optional ``video`` extra) is installed, else the empty shape ``()`` ("not known").
Frames are decoded only when asked (:func:`read_video_frames`, :meth:`VideoSample.frames`), and
only with PyAV installed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deeplake_spark.errors import DecodeError, InvalidOptionError, MissingDependencyError
from deeplake_spark.format.images import image_format

#: ISO-BMFF major brands of still images (HEIF/AVIF): an ``ftyp`` box alone does not make a video
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis", b"jpx "})
#: first box types of QuickTime files that start without ``ftyp``
_QUICKTIME_BOXES = frozenset({b"moov", b"mdat", b"wide", b"pnot"})
#: tensor compression -> the containers its samples may be (WebM is a Matroska profile)
ACCEPTED_CONTAINERS = {"mp4": ("mp4",), "webm": ("webm",), "mkv": ("mkv", "webm"), "avi": ("avi",)}
_INSTALL = "pip install 'deeplake-spark[video]'"


def video_container(data: bytes | memoryview) -> str | None:
    """``"mp4"`` (any ISO-BMFF/QuickTime movie), ``"webm"``, ``"mkv"``, ``"avi"`` or None, from the first bytes."""
    head = bytes(data[:64])
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return None if head[8:12] in _IMAGE_BRANDS else "mp4"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_BOXES and int.from_bytes(head[:4], "big") >= 8:
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML; the DocType element names the Matroska profile
        return "webm" if b"webm" in head else "mkv" if b"matroska" in head else None
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    return None


def check_video(data: bytes | memoryview, compression: str, *, where: str) -> str:
    """The container of ``data`` when it is one a ``compression`` video tensor stores; DecodeError naming
    what the bytes are otherwise."""
    container = video_container(data)
    if container is None:
        image = image_format(data)
        what = f"a {image.upper()} image" if image else f"not a video file (first bytes {bytes(data[:12])!r})"
        raise DecodeError(f"{where}: bytes are {what}; a {compression} video tensor stores {compression} container "
                          "files")
    if container not in ACCEPTED_CONTAINERS[compression]:
        raise DecodeError(f"{where}: bytes are a {container} video but the tensor stores {compression} files; create "
                          f"the tensor with compression={container!r}")
    return container


def _av() -> Any:
    """The PyAV module, or None when the ``video`` extra is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


def _open(av: Any, data: bytes, where: str) -> Any:
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as e:
        raise DecodeError(f"{where}: undecodable video: {e}") from e
    if not container.streams.video:
        container.close()
        raise DecodeError(f"{where}: the container holds no video stream")
    return container


def probe_video(data: bytes, *, where: str) -> tuple[int, ...]:
    """``(frames, height, width, 3)`` of a video file from its container (frames counted by demuxing,
    never decoded) with PyAV; ``()`` when PyAV is not installed."""
    av = _av()
    if av is None:
        return ()
    container = _open(av, data, where)
    try:
        stream = container.streams.video[0]
        height, width = stream.codec_context.height, stream.codec_context.width
        frames = stream.frames
        if not frames:  # WebM/Matroska often carry no frame count: count the video packets
            frames = sum(1 for packet in container.demux(stream) if packet.size)
    except (av.FFmpegError, ValueError, OSError) as e:
        raise DecodeError(f"{where}: undecodable video: {e}") from e
    finally:
        container.close()
    if not frames or not height or not width:
        raise DecodeError(f"{where}: the video has {frames} frames of {width}x{height} pixels; nothing to store")
    return (int(frames), int(height), int(width), 3)


def read_video_frames(data: bytes | memoryview, *, start: int | None = None, stop: int | None = None,
                      step: int | None = None, where: str = "video") -> np.ndarray:
    """Decode frames ``start:stop:step`` (Python slice rules) of a video file to uint8 ``(T, H, W, 3)`` RGB.

    Decoding stops after frame ``stop``. For a ``start`` past the first :data:`SEEK_FROM` frames the
    decoder seeks to the key frame before it (constant frame rate streams) instead of decoding every
    earlier frame. Needs PyAV (``pip install 'deeplake-spark[video]'``); MissingDependencyError otherwise.

    >>> clip = ds[0]["clip"]                       # a VideoSample
    >>> read_video_frames(bytes(clip), stop=8, step=2).shape
    (4, 240, 320, 3)
    """
    av = _av()
    if av is None:
        raise MissingDependencyError(f"{where}: decoding video frames needs PyAV: {_INSTALL}")
    if step is not None and (isinstance(step, bool) or step <= 0):
        raise InvalidOptionError(f"{where}: step must be a positive int, not {step}")
    data = bytes(data)
    if (start is not None and start < 0) or (stop is not None and stop < 0):
        start, stop, step = slice(start, stop, step).indices(probe_video(data, where=where)[0])
    first, last, every = start or 0, stop, step or 1
    try:
        frames = _decode(av, data, first, last, every, seek=first >= SEEK_FROM, where=where)
        if frames is None:  # the seek landed after `first` (no usable time stamps): decode from the start
            frames = _decode(av, data, first, last, every, seek=False, where=where)
    except (av.FFmpegError, ValueError, OSError) as e:
        raise DecodeError(f"{where}: undecodable video: {e}") from e
    out, (height, width) = frames
    if not out:
        return np.zeros((0, height, width, 3), dtype=np.uint8)
    return np.stack(out)


#: ``start`` from which :func:`read_video_frames` seeks instead of decoding every earlier frame
SEEK_FROM = 32


def _decode(av: Any, data: bytes, first: int, last: int | None, every: int, *, seek: bool,
            where: str) -> tuple[list[np.ndarray], tuple[int, int]] | None:
    """Frames first:last:every and the (height, width); None when a seek overshot ``first``."""
    out: list[np.ndarray] = []
    container = _open(av, data, where)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate, base, origin = stream.average_rate, stream.time_base, stream.start_time or 0
        # frame index from the time stamp only holds at a constant rate (mean rate == the stream's base rate)
        seek = seek and bool(rate) and base is not None and stream.base_rate == rate
        if seek:
            container.seek(origin + int(first / rate / base), stream=stream, backward=True, any_frame=False)
        index = -1
        for frame in container.decode(stream):
            if seek and frame.pts is not None:
                index = int(round(float((frame.pts - origin) * base * rate)))
                if not out and index > first:
                    return None
            else:
                index += 1
            if last is not None and index >= last:
                break
            if index >= first and (index - first) % every == 0:
                out.append(frame.to_ndarray(format="rgb24"))
        return out, (stream.codec_context.height, stream.codec_context.width)
    finally:
        container.close()


@dataclass(frozen=True)
class VideoSample:
    """One stored video: the container file's bytes, its kind and the shape recorded at write.

    ``bytes(sample)`` is the file as written; ``sample.frames(start, stop, step)`` decodes frames
    (needs the ``video`` extra). ``shape`` is ``(frames, height, width, 3)``, or None when the writer
    had no PyAV to probe it.
    """

    data: bytes = field(repr=False)
    container: str
    shape: tuple[int, ...] | None

    def __bytes__(self) -> bytes:
        return self.data

    def __len__(self) -> int:
        return len(self.data)

    @property
    def nbytes(self) -> int:
        return len(self.data)

    def frames(self, start: int | None = None, stop: int | None = None, step: int | None = None) -> np.ndarray:
        """uint8 ``(T, H, W, 3)`` RGB frames ``start:stop:step``; see :func:`read_video_frames`."""
        frames = read_video_frames(self.data, start=start, stop=stop, step=step, where=f"{self.container} video")
        if self.shape is not None and len(frames) and frames.shape[1:3] != self.shape[1:3]:
            raise DecodeError(f"{self.container} video: frames of {frames.shape[2]}x{frames.shape[1]} pixels do not "
                              f"match the stored shape {self.shape} (damaged chunk)")
        return frames

    def numpy(self) -> np.ndarray:
        """Every frame (see :meth:`frames`)."""
        return self.frames()


def decode_video(data: bytes | memoryview, compression: str, shape: tuple[int, ...]) -> VideoSample:
    """The :class:`VideoSample` of stored video bytes (nothing is decoded)."""
    container = video_container(data) or compression
    return VideoSample(bytes(data), container, tuple(shape) if len(shape) == 4 else None)
