"""``deeplake-spark``: inspect, look at, vacuum, restore and import datasets from the shell.

    deeplake-spark info PATH [--version N] [--json]
    deeplake-spark history PATH [--limit N] [--json]
    deeplake-spark show PATH --out grid.png [-n N] [--columns C ...]
    deeplake-spark vacuum PATH --retention-hours H [--dry-run] [--force]
    deeplake-spark restore PATH VERSION [-m MESSAGE]
    deeplake-spark tag PATH NAME [--version N] [--delete]
    deeplake-spark tags PATH [--json]
    deeplake-spark import-folder DIR PATH [--engine spark|python]
    deeplake-spark import-deeplake SRC PATH [--skip COLUMN ...] [--src-cred KEY=VALUE ...]
    deeplake-spark import-coco IMAGES_DIR ANNOTATIONS_JSON PATH [--masks binary|segment|none]

Exit status: 0 success, 1 a library error (one line on stderr naming what went wrong), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from deeplake_spark._version import __version__
from deeplake_spark.errors import DeepLakeSparkError, InvalidOptionError

log = logging.getLogger(__name__)
PROG = "deeplake-spark"


def _storage_options(args: argparse.Namespace) -> dict[str, str] | None:
    pairs = getattr(args, "storage_option", None) or []
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidOptionError(f"--storage-option {pair!r}: expected KEY=VALUE")
        options[key] = value
    return options or None


def _open(args: argparse.Namespace, version: int | None = None, *, latest: bool = False) -> Any:
    """The dataset at ``version``, else at ``--tag`` (where the command has it and not ``latest``)."""
    import deeplake_spark as dls

    tag = None if latest else getattr(args, "tag", None)
    if tag is not None and version is not None:
        raise InvalidOptionError("pass either --version or --tag, not both")
    return dls.open(args.path, version=version, storage_options=_storage_options(args), tag=tag)


def _size(nbytes: float) -> str:
    if nbytes < 1024:
        return f"{nbytes:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        nbytes /= 1024
        if nbytes < 1024:
            return f"{nbytes:.1f} {unit}"
    return f"{nbytes / 1024:.1f} TiB"


def _when(ms: Any) -> str:
    if ms is None:
        return "?"
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


# -------------------------------------------------------------- import-folder
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class ImportResult:
    path: str
    rows: int
    classes: list[str]
    version: int
    engine: str
    note: str = ""


def scan_folder(folder: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names (sorted sub-folder names) and ``(path relative to folder, class index)`` per image."""
    if not os.path.isdir(folder):
        raise InvalidOptionError(f"import-folder: {folder} is not a folder")
    classes = sorted(d for d in os.listdir(folder) if not d.startswith(".") and os.path.isdir(os.path.join(folder, d)))
    files = []
    for label, name in enumerate(classes):
        for root, dirs, names in os.walk(os.path.join(folder, name)):
            dirs.sort()
            for file_name in sorted(names):
                if file_name.lower().endswith(IMAGE_SUFFIXES) and not file_name.startswith("."):
                    files.append((os.path.relpath(os.path.join(root, file_name), folder).replace(os.sep, "/"), label))
    if not files:
        raise InvalidOptionError(f"import-folder: {folder} has no class sub-folders holding "
                                 f"{'/'.join(IMAGE_SUFFIXES)} files")
    return classes, files


def _import_schema(classes: list[str]) -> dict[str, Any]:
    import deeplake_spark as dls

    # label: a class_label tensor (a plain int column, so SQL filters and groups by it) naming its classes
    return {"image": dls.tensor("image"), "label": dls.tensor("class_label", class_names=classes),
            "label_name": "string", "filename": "string"}


def _import_python(folder: str, path: str, classes: list[str], files: list[tuple[str, int]], *, batch_size: int,
                   quiet: bool, storage_options: dict[str, str] | None) -> int:
    import deeplake_spark as dls
    from deeplake_spark.errors import StorageError

    ds = dls.create(path, _import_schema(classes), storage_options=storage_options)
    with tqdm(total=len(files), unit="img", desc="import", disable=quiet, file=sys.stderr) as bar:
        for start in range(0, len(files), batch_size):
            batch = files[start:start + batch_size]
            images = []
            for relpath, _ in batch:
                try:
                    with open(os.path.join(folder, relpath), "rb") as f:
                        images.append(f.read())
                except OSError as e:
                    raise StorageError(f"import-folder: cannot read {os.path.join(folder, relpath)}: {e}") from e
            ds.append({"image": images, "label": [label for _, label in batch],
                       "label_name": [classes[label] for _, label in batch],
                       "filename": [relpath for relpath, _ in batch]})
            bar.update(len(batch))
    return ds.version


def _spark_writer_missing() -> str | None:
    """Why the Spark engine cannot run here, or None when it can."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'deeplake-spark[spark]')"
    for module in ("deeplake_spark.spark.source", "deeplake_spark.spark.writer"):
        if importlib.util.find_spec(module) is None:
            return f"this build has no {module} module"
    return None


def _import_spark(folder: str, path: str, classes: list[str], *, quiet: bool,
                  storage_options: dict[str, str] | None) -> tuple[int, int]:
    """binaryFile source -> image/label/label_name/filename columns -> ``df.write.format("deeplake")``."""
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    import deeplake_spark as dls
    from deeplake_spark.spark import spark_session

    existing = SparkSession.getActiveSession()
    spark = existing or spark_session()
    try:
        root = os.path.abspath(folder).rstrip("/") + "/"
        files = (spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(root)
                 .withColumn("filename", F.regexp_replace("path", r"^file:(//)?" + re.escape(root), ""))
                 .where(F.lower("filename").rlike(r"^[^./][^/]*/(.*/)?[^./][^/]*\.(jpg|jpeg|png)$")))
        label_of = F.create_map(*[F.lit(x) for i, name in enumerate(classes) for x in (name, i)])
        df = (files.withColumn("label_name", F.element_at(F.split("filename", "/"), 1))
              .select(F.col("content").alias("image"), label_of[F.col("label_name")].cast("int").alias("label"),
                      "label_name", "filename")
              .orderBy("filename"))
        if not quiet:
            print(f"import: writing {folder} with Spark {spark.version} ...", file=sys.stderr)
        writer = (df.write.format("deeplake").mode("append").option("saveMode", "errorifexists")
                  .option("tensor.label.htype", "class_label").option("tensor.label.classNames", json.dumps(classes)))
        for key, value in (storage_options or {}).items():
            writer = writer.option(f"storage.{key}", value)
        try:
            writer.save(path)
        except PySparkException as e:
            lines = [line for line in str(e).splitlines() if "Error:" in line] or str(e).splitlines()[:1]
            raise DeepLakeSparkError(f"import-folder: Spark write to {path} failed: {lines[-1].strip()}") from e
    finally:
        if existing is None:
            spark.stop()
    ds = dls.open(path, storage_options=storage_options)
    return ds.version, len(ds)


def _check_absent(path: str, storage_options: dict[str, str] | None) -> None:
    import deeplake_spark as dls
    from deeplake_spark.errors import DatasetExistsError, DatasetNotFoundError

    try:
        dls.open(path, storage_options=storage_options)
    except DatasetNotFoundError:
        return
    raise DatasetExistsError(f"import-folder: {path} already holds a dataset; choose a new path")


def target_inside_source(folder: str, path: str) -> str | None:
    """Why a dataset at ``path`` may not be imported from ``folder`` (it lies inside it), or None.

    Real paths are compared, so ``pets/../pets/x`` and symbolic links count. A dataset inside its
    source would be read back as images of a class, and vacuum or a later import could touch the
    source files.
    """
    from deeplake_spark.storage import normalize_uri

    local = normalize_uri(path)  # file:// URIs and ~ are local paths too
    if "://" in local:
        return None
    source = os.path.realpath(folder)
    target = os.path.realpath(local)
    if target == source or target.startswith(source.rstrip(os.sep) + os.sep):
        return (f"the dataset path {path} ({target}) lies inside the image folder {folder} ({source}); "
                "choose a path outside it")
    return None


def import_folder(folder: str, path: str, *, engine: str = "auto", batch_size: int = 1000, quiet: bool = False,
                  storage_options: dict[str, str] | None = None) -> ImportResult:
    """Create a dataset at ``path`` from ``folder/<class>/<image>`` files (see ``import-folder --help``)."""
    if batch_size < 1:
        raise InvalidOptionError(f"--batch-size must be >= 1, not {batch_size}")
    inside = target_inside_source(folder, path)
    if inside is not None:
        raise InvalidOptionError(f"import-folder: {inside}")
    classes, files = scan_folder(folder)
    _check_absent(path, storage_options)
    from deeplake_spark.dataset.create_target import check_create_target

    check_create_target(path, storage_options)  # a non-empty folder too, before Spark starts
    note = ""
    if engine in ("auto", "spark"):
        reason = _spark_writer_missing()
        if reason is None:
            version, rows = _import_spark(folder, path, classes, quiet=quiet, storage_options=storage_options)
            if rows != len(files):  # e.g. file names Spark spells differently (URL-encoded characters)
                note = f"warning: Spark imported {rows} of the {len(files)} image files found in {folder}"
            return ImportResult(path, rows, classes, version, "spark", note)
        if engine == "spark":
            raise InvalidOptionError(f"import-folder --engine spark: {reason}")
        note = f"note: imported with the Python API because the Spark deeplake writer is not usable: {reason}"
    version = _import_python(folder, path, classes, files, batch_size=batch_size, quiet=quiet,
                             storage_options=storage_options)
    return ImportResult(path, len(files), classes, version, "python", note)


# ------------------------------------------------------------------- commands
def cmd_info(args: argparse.Namespace) -> int:
    """Schema, row count, size on disk and versions."""
    from deeplake_spark.dataset import delta_files
    from deeplake_spark.dataset.refs import TENSORS_DIR

    ds = _open(args, args.version)
    # a table loaded at an old version only knows the commits up to it
    history = (ds if args.version is None and args.tag is None else _open(args, latest=True)).history()
    versions = sorted(int(c["version"]) for c in history)
    # Only the dataset's own files count: the folder may also hold a user's files or a nested
    # dataset. Listings never follow symbolic links, so a link loop cannot count a file twice.
    log_files = ds.storage.list(delta_files.LOG_DIR)
    chunk_files = ds.storage.list(TENSORS_DIR)
    latest = versions[-1] if versions else ds.version
    data_files = delta_files.existing_files(ds.storage, delta_files.logged_data_files(ds.storage,
                                                                                       up_to_version=latest))
    files = log_files + chunk_files + list(data_files.values())
    log_bytes = sum(f.size for f in log_files)
    table_bytes = sum(f.size for f in data_files.values())
    chunks_by_tensor: dict[str, list[int]] = {}
    for f in chunk_files:
        chunks_by_tensor.setdefault(f.path.split("/")[1], []).append(f.size)
    columns = []
    for name in ds.schema.order:
        if name in ds.schema.tensors:
            spec = ds.schema.tensors[name]
            sizes = chunks_by_tensor.get(name, [])
            columns.append({"name": name, "kind": "tensor", "htype": spec.htype, "dtype": spec.dtype,
                            "shape": None if spec.shape is None else list(spec.shape),
                            "storage": "inline" if name in ds.schema.inline else "chunks",
                            "compression": spec.compression, "chunk_files": len(sizes), "chunk_bytes": sum(sizes),
                            "class_names": None if spec.class_names is None else list(spec.class_names)})
        else:
            columns.append({"name": name, "kind": "tabular", "type": str(ds.schema.tabular.field(name).type)})
    info = {
        "path": ds.path, "version": ds.version, "latest_version": versions[-1] if versions else ds.version,
        "rows": len(ds), "versions": versions, "columns": columns, "partition_columns": ds.partition_columns,
        "size_bytes": sum(f.size for f in files), "table_bytes": table_bytes,
        "chunk_bytes": sum(f.size for f in chunk_files), "log_bytes": log_bytes, "tags": ds.tags(),
    }
    if args.json:
        _print_json(info)
        return 0
    shown = f"{info['version']}" + ("" if info["version"] == info["latest_version"] else
                                    f" (latest is {info['latest_version']})")
    print(f"dataset   {info['path']}")
    print(f"version   {shown}")
    print(f"rows      {info['rows']}")
    print(f"size      {_size(info['size_bytes'])} on disk, all versions (chunks {_size(info['chunk_bytes'])}, "
          f"Parquet {_size(table_bytes)}, Delta log {_size(log_bytes)})")
    span = f"{versions[0]}..{versions[-1]}" if versions else "-"
    print(f"versions  {span} ({len(versions)} commits in the log)")
    if info["tags"]:
        print("tags      " + ", ".join(f"{name}={version}" for name, version in info["tags"].items()))
    if info["partition_columns"]:
        print(f"partitioned by {', '.join(info['partition_columns'])} ({len(data_files)} Parquet files)")
    print("columns")
    width = max((len(c["name"]) for c in columns), default=4)
    for c in columns:
        if c["kind"] == "tensor":
            shape = "ragged" if c["shape"] is None else "(" + ", ".join("?" if d is None else str(d) for d in c["shape"]) + ")"
            names = "" if c["class_names"] is None else f"  classes {_class_list(c['class_names'])}"
            if c["storage"] == "inline":
                old = f", {c['chunk_files']} chunk files of older versions" if c["chunk_files"] else ""
                print(f"  {c['name']:<{width}}  tensor {c['htype']} {c['dtype']} {shape} inline  "
                      f"[values in the Parquet rows{old}]{names}")
            else:
                print(f"  {c['name']:<{width}}  tensor {c['htype']} {c['dtype']} {shape} {c['compression']}  "
                      f"[{c['chunk_files']} chunk files, {_size(c['chunk_bytes'])}]{names}")
        else:
            print(f"  {c['name']:<{width}}  {c['type']}")
    return 0


def _class_list(names: list[str], shown: int = 10) -> str:
    """``0=cat 1=dog ...``: the first ``shown`` class names with their label values."""
    listed = " ".join(f"{i}={name}" for i, name in enumerate(names[:shown]))
    return listed + (f" ... ({len(names)} classes)" if len(names) > shown else "")


def _commit_details(commit: dict[str, Any]) -> str:
    params = commit.get("operationParameters") or {}
    metrics = commit.get("operationMetrics") or {}
    parts = []
    for key in ("num_added_rows", "num_deleted_rows", "num_updated_rows", "num_copied_rows"):
        if metrics.get(key):
            parts.append(f"{key.removeprefix('num_').replace('_', ' ')}: {metrics[key]}")
    for key in ("mode", "predicate", "version", "timestamp"):
        if params.get(key) not in (None, "", "[]"):
            parts.append(f"{key}: {params[key]}")
    return ", ".join(parts)


def cmd_history(args: argparse.Namespace) -> int:
    """Commits, newest first."""
    ds = _open(args)
    commits = ds.history(args.limit)
    if args.json:
        _print_json(commits)
        return 0
    tagged: dict[int, list[str]] = {}
    for name, version in ds.tags().items():
        tagged.setdefault(version, []).append(name)
    print(f"{'VERSION':>7}  {'TIMESTAMP (UTC)':<19}  {'OPERATION':<14}  DETAILS")
    for c in commits:
        operation = c.get("deeplake.operation") or c.get("operation") or "?"
        details = _commit_details(c)
        if c.get("message"):
            details = f"{json.dumps(c['message'], ensure_ascii=False)}" + (f"  ({details})" if details else "")
        names = tagged.get(c.get("version"), [])
        if names:
            details += f"  [tag: {', '.join(names)}]"
        print(f"{c.get('version', '?'):>7}  {_when(c.get('timestamp')):<19}  {operation:<14}  {details}")
    return 0


def _split_columns(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [name for value in values for name in value.split(",") if name]


def cmd_show(args: argparse.Namespace) -> int:
    """Write a PNG grid of the first rows."""
    from deeplake_spark import viz

    ds = _open(args, args.version)
    layout = viz.save_grid(ds, args.out, n=args.n, columns=_split_columns(args.columns), image=args.image,
                           bbox_format=args.bbox_format, bbox_normalized=args.bbox_normalized,
                           tile_size=args.tile_size, per_row=args.per_row)
    if not args.quiet:
        print(f"wrote {layout.path} ({layout.size[0]}x{layout.size[1]} px, {min(args.n, len(ds))} samples)")
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    """Delete files no retained version needs; prints each file deleted (or that would be)."""
    from deeplake_spark.dataset.vacuum import DEFAULT_RETENTION_HOURS
    from deeplake_spark.errors import StorageError

    if args.retention_hours < DEFAULT_RETENTION_HOURS and not args.force:
        raise InvalidOptionError(
            f"--retention-hours {args.retention_hours:g} is below the {DEFAULT_RETENTION_HOURS} h safety minimum; "
            "readers of older versions and running writers may lose files. Pass --force if none exist"
        )
    ds = _open(args)
    try:
        result = ds.vacuum(args.retention_hours, dry_run=args.dry_run, enforce_retention_duration=not args.force)
    except OSError as e:
        if isinstance(e, DeepLakeSparkError):
            raise
        # an I/O failure no layer below named: still one line naming the dataset, not a traceback
        raise StorageError(f"vacuum {ds.path}: {e}") from e
    for path in result.files:
        print(path)
    if not args.quiet:
        verb = "would delete" if args.dry_run else "deleted"
        print(f"vacuum {ds.path}: {verb} {len(result.files)} files ({len(result.parquet_files)} Parquet, "
              f"{len(result.chunk_files)} chunk); versions still readable: {result.retained_versions}",
              file=sys.stderr)
    return 0


def _version_or_timestamp(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def cmd_restore(args: argparse.Namespace) -> int:
    """Make an old version (or timestamp) the content of a new version."""
    ds = _open(args)
    before = ds.version
    new_version = ds.restore(_version_or_timestamp(args.version), message=args.message)
    if not args.quiet:
        print(f"restored {ds.path} to {args.version}: new version {new_version} (was {before})")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    """Tag a version (default the latest), or remove a tag with --delete."""
    ds = _open(args)
    if args.delete:
        if args.version is not None:
            raise InvalidOptionError("tag --delete takes no --version")
        ds.delete_tag(args.name)
        if not args.quiet:
            print(f"deleted tag {args.name} of {ds.path}")
        return 0
    version = ds.tag(args.name, args.version)
    if not args.quiet:
        print(f"tagged version {version} of {ds.path} as {args.name}")
    return 0


def cmd_tags(args: argparse.Namespace) -> int:
    """Tags and the versions they name."""
    tags = _open(args).tags()
    if args.json:
        _print_json(tags)
        return 0
    for name, version in tags.items():
        print(f"{name}\t{version}")
    return 0


def cmd_import_folder(args: argparse.Namespace) -> int:
    """Images in class sub-folders -> a dataset with image, label, label_name and filename columns."""
    inside = target_inside_source(args.dir, args.path)
    if inside is not None:  # bad usage (exit 2), refused before anything is read or written
        print(f"{PROG} import-folder: error: {inside}", file=sys.stderr)
        return 2
    result = import_folder(args.dir, args.path, engine=args.engine, batch_size=args.batch_size, quiet=args.quiet,
                           storage_options=_storage_options(args))
    if not args.quiet:
        print(f"imported {result.rows} images in {len(result.classes)} classes {result.classes} into {result.path} "
              f"(version {result.version}, engine {result.engine})")
    if result.note and (not args.quiet or result.note.startswith("warning")):
        print(result.note, file=sys.stderr)
    return 0


def cmd_import_deeplake(args: argparse.Namespace) -> int:
    """A Deep Lake 4 dataset -> a new dataset (docs/IMPORT.md)."""
    from deeplake_spark.interop import from_deeplake

    creds = {}
    for pair in args.src_cred or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidOptionError(f"--src-cred {pair!r}: expected KEY=VALUE")
        creds[key] = value
    notes: list[str] = []
    ds = from_deeplake(args.src, args.path, storage_options=_storage_options(args), skip=_split_columns(args.skip) or (),
                       src_creds=creds or None, batch_rows=args.batch_rows, progress=False if args.quiet else None,
                       notes=notes)
    if not args.quiet:
        for line in notes:
            print(line)
        print(f"imported {len(ds)} rows, columns {list(ds.schema.order)}, from {args.src} into {ds.path} "
              f"(version {ds.version})")
    return 0


def cmd_import_coco(args: argparse.Namespace) -> int:
    """A COCO-layout folder (images + instances JSON) -> a new dataset (docs/IMPORT.md)."""
    from deeplake_spark.interop import from_coco

    ds = from_coco(args.images_dir, args.annotations, args.path, storage_options=_storage_options(args),
                   masks=args.masks, batch_rows=args.batch_rows, progress=False if args.quiet else None)
    if not args.quiet:
        print(f"imported {len(ds)} images with columns {list(ds.schema.order)} into {ds.path} (version {ds.version})")
    return 0


# --------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """Usage errors go through ``error`` (exit 2) in every sub-command too."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars or summaries (data output such as file lists stays)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log INFO messages")
    common.add_argument("--storage-option", action="append", metavar="KEY=VALUE", default=argparse.SUPPRESS,
                        help="storage option for s3:// and other object stores (repeatable)")

    parser = _Parser(prog=PROG, description="Inspect and maintain deeplake-spark datasets.", parents=[common])
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    p = sub.add_parser("info", parents=[common], help="schema, tensors, rows, size on disk, versions",
                       description="Schema, tensors, rows, size on disk and versions of a dataset.")
    p.add_argument("path", help="dataset path or URI")
    p.add_argument("--version", type=int, default=None, help="inspect this version (default latest)")
    p.add_argument("--tag", default=None, help="inspect the version of this tag")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("history", parents=[common], help="commits, newest first",
                       description="Commits of a dataset, newest first.")
    p.add_argument("path", help="dataset path or URI")
    p.add_argument("--limit", type=int, default=None, help="only the newest N commits")
    p.add_argument("--json", action="store_true", help="the raw Delta commit infos as JSON")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("show", parents=[common], help="write a PNG grid of samples",
                       description="Write a PNG grid of the first samples (images with boxes, masks, labels).")
    p.add_argument("path", help="dataset path or URI")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("-n", type=int, default=16, help="number of rows (default 16)")
    p.add_argument("--columns", nargs="+", default=None, help="columns to show (space or comma separated)")
    p.add_argument("--version", type=int, default=None, help="show this version (default latest)")
    p.add_argument("--tag", default=None, help="show the version of this tag")
    p.add_argument("--image", default=None, help="column drawn as the picture (default the first image)")
    p.add_argument("--bbox-format", default="xywh", choices=("xywh", "xyxy", "cxcywh"), help="box layout")
    p.add_argument("--bbox-normalized", action="store_true", help="box coordinates are fractions of the image size")
    p.add_argument("--tile-size", type=int, default=192, help="pixels of the longer image side (default 192)")
    p.add_argument("--per-row", type=int, default=4, help="samples per grid row (default 4)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("vacuum", parents=[common], help="delete files no retained version needs",
                       description="Delete Parquet and chunk files that no version inside the retention window "
                                   "needs. Prints every file it deletes (or, with --dry-run, would delete).")
    p.add_argument("path", help="dataset path or URI")
    p.add_argument("--retention-hours", type=float, required=True, help="keep versions readable for this long")
    p.add_argument("--dry-run", action="store_true", help="only list the files")
    p.add_argument("--force", action="store_true", help="allow a retention below the 168 h safety minimum")
    p.set_defaults(func=cmd_vacuum)

    p = sub.add_parser("restore", parents=[common], help="make an old version the latest",
                       description="Commit a new version whose content is an old version (or timestamp).")
    p.add_argument("path", help="dataset path or URI")
    p.add_argument("version", help="version number or ISO 8601 timestamp")
    p.add_argument("-m", "--message", default=None, help="commit message of the restore")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("tag", parents=[common], help="name a version (kept from vacuum)",
                       description="Tag a version (default the latest); a tag is never overwritten.")
    p.add_argument("path", help="dataset path or URI")
    p.add_argument("name", help="tag name: letters, digits, '.', '_', '-'")
    p.add_argument("--version", type=int, default=None, help="version to tag (default latest)")
    p.add_argument("--delete", action="store_true", help="remove the tag instead")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("tags", parents=[common], help="list tags and their versions")
    p.add_argument("path", help="dataset path or URI")
    p.add_argument("--json", action="store_true", help="{name: version} as JSON")
    p.set_defaults(func=cmd_tags)

    p = sub.add_parser("import-folder", parents=[common], help="images in class sub-folders -> dataset",
                       description="Create a dataset from DIR/<class>/<image>.(jpg|jpeg|png): columns image "
                                   "(JPEG/PNG bytes kept as they are), label (class_label: the class index in "
                                   "sorted folder name order, the folder names as its class names), label_name "
                                   "and filename (relative to DIR).")
    p.add_argument("dir", help="folder with one sub-folder per class")
    p.add_argument("path", help="dataset path or URI to create")
    p.add_argument("--engine", choices=("auto", "spark", "python"), default="auto",
                   help="spark: binaryFile source + deeplake writer; python: the Python API; "
                        "auto: spark when its deeplake writer is available (default)")
    p.add_argument("--batch-size", type=int, default=1000, help="images per commit with --engine python")
    p.set_defaults(func=cmd_import_folder)

    p = sub.add_parser("import-deeplake", parents=[common], help="Deep Lake 4 dataset -> dataset",
                       description="Create a dataset from a Deep Lake 4 dataset (needs the deeplake 4 package): one "
                                   "row per row in the same order, JPEG/PNG bytes passed through, class names kept; "
                                   "a column type without a counterpart is refused by name (leave it out with "
                                   "--skip). One commit: nothing is visible at PATH until the import is complete.")
    p.add_argument("src", help="Deep Lake 4 dataset URL or path")
    p.add_argument("path", help="dataset path or URI to create")
    p.add_argument("--skip", nargs="+", default=None, metavar="COLUMN", help="columns to leave out")
    p.add_argument("--src-cred", action="append", default=None, metavar="KEY=VALUE",
                   help="Deep Lake 4 creds for SRC, e.g. aws_access_key_id=... endpoint_url=... (repeatable; "
                        "--storage-option is for PATH)")
    p.add_argument("--batch-rows", type=int, default=256, help="rows read and written per step (default 256)")
    p.set_defaults(func=cmd_import_deeplake)

    p = sub.add_parser("import-coco", parents=[common], help="COCO images + instances JSON -> dataset",
                       description="Create a dataset with one row per image of a COCO instances file: image (file "
                                   "bytes passed through), image_id, file_name, height, width, boxes (bbox, COCO "
                                   "xywh pixels), categories (class_label per box, class names from the file), "
                                   "iscrowd, and masks decoded from polygons and RLE.")
    p.add_argument("images_dir", help="folder holding the images (file_name is relative to it)")
    p.add_argument("annotations", help="COCO instances JSON file")
    p.add_argument("path", help="dataset path or URI to create")
    p.add_argument("--masks", choices=("binary", "segment", "none"), default="binary",
                   help="binary: (H, W, N) bool per instance (default); segment: (H, W) int32 of category ids; "
                        "none: no mask column")
    p.add_argument("--batch-rows", type=int, default=16, help="images read and written per step (default 16)")
    p.set_defaults(func=cmd_import_coco)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deeplake-spark`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # the shared options may come before or after the command; SUPPRESS keeps a later parser from
    # resetting an earlier match, so fill in the defaults here
    for name, default in (("quiet", False), ("verbose", False), ("storage_option", None)):
        if not hasattr(args, name):
            setattr(args, name, default)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except DeepLakeSparkError as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"{PROG} {args.command}: error: {type(e).__name__}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
