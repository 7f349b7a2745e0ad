"""Tags: names for versions (``ds.tag("v1.0")``, ``open(path, tag="v1.0")``), kept from vacuum.

A tag is one small JSON file ``_deeplake/tags/<name>.json`` (``{"format": 1, "name", "version",
"created"}``) in the dataset folder, next to the Delta table (Delta itself has no tags; delta-spark
and delta-rs ignore ``_``-prefixed folders). A tag is never silently overwritten, on local disks and
on S3 alike, without relying on conditional writes, which pyarrow's S3 client cannot send:

1. the creator writes a claim ``_deeplake/tag_claims/<name>/<random id>.json`` (a new key, so no
   write ever replaces another's);
2. it lists the claims of that name: when its own is the only one it has won, otherwise it removes
   its claim and fails (the tag exists, or another creator runs at the same time);
3. the winner writes ``_deeplake/tags/<name>.json``. Its claim stays as long as the tag does.

Of two creators at most one wins: the later of the two claims to be written is listed by neither
creator before its own write, so its creator lists both. Listings and reads after writes are
strongly consistent on local disks, AWS S3 and SeaweedFS/MinIO. A creator that died between its
claim and the tag file leaves a claim that blocks the name until :func:`delete_tag` clears it.
"""

from __future__ import annotations

import json
import re
import time
import uuid

from deeplake_spark.errors import CommitConflict, CorruptDatasetError, InvalidOptionError, VersionNotFound
from deeplake_spark.storage import Storage

TAGS_DIR = "_deeplake/tags"
CLAIMS_DIR = "_deeplake/tag_claims"
TAG_FORMAT = 1
#: A tag name: letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit; at most 128 characters.
TAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SUFFIX = ".json"


def check_tag_name(name: object, *, dataset: str) -> str:
    """``name`` when it is a valid tag name (so also a safe file name: no ``/``, no ``..`` prefix)."""
    if not isinstance(name, str) or not TAG_NAME.fullmatch(name):
        raise InvalidOptionError(
            f"dataset {dataset}: invalid tag name {repr(name)[:80]}; a tag name has 1 to 128 letters, digits, '.', '_' "
            "or '-' and starts with a letter or digit (e.g. 'v1.0', 'train-2026-01')")
    return name


def tag_path(name: str) -> str:
    return f"{TAGS_DIR}/{name}{_SUFFIX}"


def _parse(storage: Storage, relpath: str, text: bytes) -> tuple[str, int]:
    try:
        record = json.loads(text)
    except ValueError as e:
        raise CorruptDatasetError(f"dataset {storage.uri}: tag file {relpath} is not JSON ({e})") from e
    name = record.get("name") if isinstance(record, dict) else None
    version = record.get("version") if isinstance(record, dict) else None
    if (not isinstance(name, str) or relpath != tag_path(name) or isinstance(version, bool)
            or not isinstance(version, int) or version < 0):
        raise CorruptDatasetError(f"dataset {storage.uri}: tag file {relpath} does not hold a tag record "
                                  "{\"name\": <its file name>, \"version\": <int >= 0>}")
    return name, version


def read_tags(storage: Storage) -> dict[str, int]:
    """Every tag of the dataset: {name: version}, sorted by name."""
    tags = {}
    for entry in storage.list(TAGS_DIR, recursive=False):
        filename = entry.path.rsplit("/", 1)[-1]
        if not filename.endswith(_SUFFIX) or not TAG_NAME.fullmatch(filename[: -len(_SUFFIX)]):
            continue  # a temp file of a write in progress, or not ours
        try:
            name, version = _parse(storage, entry.path, storage.read(entry.path))
        except FileNotFoundError:
            continue  # deleted since the listing
        tags[name] = version
    return dict(sorted(tags.items()))


def tag_version(storage: Storage, name: str) -> int:
    """The version tag ``name`` points to; VersionNotFound naming the tags there are when it does not exist."""
    check_tag_name(name, dataset=storage.uri)
    try:
        return _parse(storage, tag_path(name), storage.read(tag_path(name)))[1]
    except FileNotFoundError:
        known = list(read_tags(storage))
        raise VersionNotFound(f"dataset {storage.uri} has no tag {name!r}; its tags: {known or 'none'}") from None


def _claims(storage: Storage, name: str) -> list[str]:
    return sorted(e.path for e in storage.list(f"{CLAIMS_DIR}/{name}", recursive=False)
                  if e.path.endswith(_SUFFIX) and not e.path.rsplit("/", 1)[-1].startswith("."))


def create_tag(storage: Storage, name: str, version: int) -> None:
    """Record tag ``name`` -> ``version``; InvalidOptionError when the tag exists, CommitConflict
    when another process creates it at the same moment (or an interrupted creation left its claim)."""
    check_tag_name(name, dataset=storage.uri)
    if storage.exists(tag_path(name)):
        raise InvalidOptionError(f"dataset {storage.uri}: tag {name!r} already exists (version "
                                 f"{tag_version(storage, name)}); tags are never overwritten: "
                                 f"delete_tag({name!r}) first to move it")
    record = json.dumps({"format": TAG_FORMAT, "name": name, "version": version,
                         "created": int(time.time() * 1000)}).encode()
    claim = f"{CLAIMS_DIR}/{name}/{uuid.uuid4().hex}{_SUFFIX}"
    storage.write(claim, record)
    others = [c for c in _claims(storage, name) if c != claim]
    if others:
        storage.delete(claim)
        if storage.exists(tag_path(name)):
            raise InvalidOptionError(f"dataset {storage.uri}: tag {name!r} already exists (created concurrently); "
                                     f"delete_tag({name!r}) first to move it")
        raise CommitConflict(f"dataset {storage.uri}: tag {name!r} is being created by another process, or an "
                             f"interrupted creation left its claim {others[0]}; retry, or delete_tag({name!r}) "
                             "to clear it")
    storage.write(tag_path(name), record)


def delete_tag(storage: Storage, name: str) -> int | None:
    """Remove tag ``name`` (and its claims); the version it pointed to (None when only a claim of an
    interrupted creation was left). VersionNotFound when there is no such tag."""
    check_tag_name(name, dataset=storage.uri)
    try:
        version: int | None = _parse(storage, tag_path(name), storage.read(tag_path(name)))[1]
    except FileNotFoundError:
        version = None
    claims = _claims(storage, name)
    if version is None and not claims:
        raise VersionNotFound(f"dataset {storage.uri} has no tag {name!r}; its tags: "
                              f"{list(read_tags(storage)) or 'none'}")
    storage.delete(tag_path(name))  # the tag first: a claim left by a crash here only blocks the name
    for claim in claims:
        storage.delete(claim)
    return version
