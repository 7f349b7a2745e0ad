"""Link tensors: a URL or path stored as text, read as the linked file's content.

A ``link`` tensor (``tensor("link", link_to="image")``) stores its links inline, as a plain string
column, so SQL and both Spark readers see the text. Reading a row through the dataset resolves each
link: the file is read through the storage layer and returned as bytes, a decoded image array or a
:class:`~deeplake_spark.format.video.VideoSample` (``link_to``).

A link may be a path relative to the dataset folder (``images/0001.jpg``), an absolute local path,
a ``file://`` URL or an ``s3://`` URL (read with the dataset's storage options). A dataset is data
from anywhere, so links only resolve **under allowed roots**: the dataset's own folder and the
roots its reader names (``open(path, link_roots=[...])``). A link with a ``..`` component, one
outside every root, or one whose real path (symbolic links followed) leaves its root is refused
with :class:`UnsafePathError` naming the row, the column and the link; a missing target is a
:class:`LinkError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from deeplake_spark.dataset.rows import stack_samples
from deeplake_spark.dataset.schema import DatasetSchema
from deeplake_spark.errors import LinkError, StorageError, UnsafePathError
from deeplake_spark.format.images import decode_image, probe_image
from deeplake_spark.format.spec import TensorSpec
from deeplake_spark.format.video import VideoSample, video_container
from deeplake_spark.storage import S3_SCHEMES, Storage, normalize_uri

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: links resolved in parallel (object-store latency) once a call holds this many
#: the largest linked file read (a hostile dataset could link a huge file into memory)
MAX_LINK_BYTES = 1 << 30
_PARALLEL_FROM = 4
_THREADS = 16


def _is_s3(uri: str) -> bool:
    return uri.startswith(S3_SCHEMES)


def _key(uri: str) -> str:
    """``uri`` in the form roots are compared in (s3a:// and s3:// name the same objects)."""
    return "s3://" + uri.split("://", 1)[1] if _is_s3(uri) else uri


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class LinkResolver:
    """Reads the targets of link tensors of one dataset, only under its allowed roots.

    ``dataset``: the dataset's URI (its folder is always a root; relative links resolve there);
    ``roots``: further folders or prefixes links may point into; ``storage_options``: for S3 links.
    Picklable (loader workers carry it).
    """

    def __init__(self, dataset: str, *, roots: Sequence[str] = (),
                 storage_options: Mapping[str, str] | None = None) -> None:
        if isinstance(roots, (str, bytes, os.PathLike)):
            roots = [os.fspath(roots)]  # type: ignore[arg-type]
        self.dataset = normalize_uri(dataset)
        self.roots = tuple(dict.fromkeys([self.dataset, *(normalize_uri(r) for r in roots)]))
        self.storage_options = dict(storage_options or {})
        self._storages: dict[str, Storage] = {}  # one client per root (a dict write races harmlessly)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_storages": {}}

    def _storage(self, root: str) -> Storage:
        storage = self._storages.get(root)
        if storage is None:
            storage = self._storages[root] = Storage(root, self.storage_options if _is_s3(root) else None)
        return storage

    def __repr__(self) -> str:
        return f"LinkResolver(dataset={self.dataset!r}, roots={list(self.roots)!r})"

    def target(self, link: str, *, where: str) -> tuple[Storage, str]:
        """(storage rooted at the allowed root holding ``link``, path of the file under it)."""
        if not isinstance(link, str) or not link or "\x00" in link:
            raise UnsafePathError(f"{where}: link {link!r} is not a path or URL")
        parts = re.split(r"[/\\]", link) + re.split(r"[/\\]", unquote(link))
        if ".." in parts:
            raise UnsafePathError(f"{where}: link {link!r} has a '..' component; links may not climb out of a "
                                  "folder")
        scheme = _SCHEME.match(link)
        if scheme is None and link.startswith("/"):
            uri = os.path.normpath(link)
        elif scheme is None:
            uri = os.path.normpath(os.path.join(self.dataset, link)) if "://" not in self.dataset \
                else f"{self.dataset}/{link[2:] if link.startswith('./') else link}"
        elif scheme.group(1).lower() == "file":
            uri = os.path.normpath(unquote(urlparse(link).path))
        elif _is_s3(link.lower()):
            uri = link
        else:
            raise LinkError(f"{where}: link {link!r}: URL scheme {scheme.group(1)!r} is not supported for links; "
                            "use a path, file:// or s3://")
        for root in self.roots:
            if _is_s3(root) != _is_s3(uri) or not _under(_key(uri), _key(root)):
                continue
            if _is_s3(root):
                return self._storage(root), _key(uri)[len(_key(root)) + 1:]
            real, real_root = os.path.realpath(uri), os.path.realpath(root)
            if not _under(real, real_root):
                raise UnsafePathError(f"{where}: link {link!r} leads through a symbolic link to {real}, outside its "
                                      f"root {root}")
            return self._storage(real_root), os.path.relpath(real, real_root)
        raise UnsafePathError(f"{where}: link {link!r} is outside the allowed roots {list(self.roots)}; pass its "
                              "folder in link_roots=[...] when opening the dataset to allow it")

    def read(self, spec: TensorSpec, link: str | None, *, where: str) -> Any:
        """The content of one link as ``spec.link_to`` says (None for a null link)."""
        if link is None:
            return None
        storage, relpath = self.target(link, where=where)
        try:
            data = storage.read(relpath, max_bytes=MAX_LINK_BYTES)
        except FileNotFoundError as e:
            raise LinkError(f"{where}: linked file {link!r} is missing ({storage.uri_of(relpath)})") from e
        except (IsADirectoryError, StorageError) as e:  # a folder, no permission, unreachable store ...
            raise LinkError(f"{where}: cannot read linked file {link!r}: {e}") from e
        target = f"{where}, link {link!r}"
        if spec.link_to == "image":
            return decode_image(data, probe_image(data, where=target), where=target)
        if spec.link_to == "video":
            container = video_container(data)
            if container is None:
                raise LinkError(f"{target}: the linked file is not a video (first bytes {data[:12]!r})")
            return VideoSample(data, container, None)
        return data

    def read_column(self, spec: TensorSpec, links: Sequence[str | None], *, rows: Sequence[int],
                    dataset: str = "") -> list[Any]:
        """The contents of ``links`` (one per row in ``rows``, for error messages), in order."""
        prefix = f"dataset {dataset or self.dataset}, tensor {spec.name!r}"

        def one(i: int) -> Any:
            return self.read(spec, links[i], where=f"{prefix}, row {int(rows[i])}")

        if len(links) < _PARALLEL_FROM:
            return [one(i) for i in range(len(links))]
        with ThreadPoolExecutor(min(_THREADS, len(links))) as pool:
            return list(pool.map(one, range(len(links))))


def resolve_link_columns(values: dict[str, Any], schema: DatasetSchema, resolver: LinkResolver,
                         rows: np.ndarray | Sequence[int]) -> dict[str, Any]:
    """``values`` ({column: values of ``rows``}, as ``rows.row_values`` gives) with each link column's
    text replaced by the linked content: images stacked into one array when every image has one shape, else
    a list (bytes and videos: always a list)."""
    for name, column in values.items():
        spec = schema.tensors.get(name)
        if spec is None or spec.htype != "link":
            continue
        links = [None if v is None else str(v) for v in list(column)]
        samples = resolver.read_column(spec, links, rows=rows)
        values[name] = stack_samples(samples) if spec.link_to == "image" else samples
    return values
