"""SQL over a dataset's rows without Spark, through DuckDB: ``query`` (rows -> a view), ``sql`` (any
result -> an Arrow table) and the SQL text form of ``filter`` (a WHERE condition -> a view).

What SQL sees is one table, ``ds``: the rows of the dataset version or view, in their order, with the
tabular columns, the scalar tensors stored inline, and for each tensor stored in chunks its metadata
only, a struct ``{shape: BIGINT[], ndim: BIGINT, nbytes: BIGINT}`` (``img.shape``, ``img.ndim``,
``img.nbytes``, or the macros ``shape(img)``, ``ndim(img)``, ``nbytes(img)``; DuckDB lists count from 1:
``shape(img)[1]`` is the first dimension). No chunk is read. The rows are handed to DuckDB as an Arrow
table (no copy) with a hidden row-position column, which turns a result back into view positions.

The SQL is user text, so it runs locked down: an in-memory DuckDB of this thread and process (no table
left registered between calls) with external access off (no files, no URLs, no ATTACH), no extension
install/autoload and the configuration locked. Before it
runs, DuckDB's own parser gives the statement tree (``json_serialize_sql``), which must be one SELECT
whose tables are ``ds`` only (``sql`` also allows subqueries, joins, set operations and WITH over
``ds``); table functions (``read_csv``, ``duckdb_settings()`` ...) and every other statement (COPY,
ATTACH, INSTALL, PRAGMA, SET, DDL) are refused with :class:`InvalidOptionError` naming the query.
Spark-style `` `name` `` quoting is accepted and read as ``"name"``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deeplake_spark.errors import InvalidOptionError, SchemaError

#: The table name SQL text uses for the rows.
TABLE = "ds"
#: Prefixes of the hidden column of the rows' positions (0..n-1 in view order) and of query()'s appended
#: output column; each call adds a random suffix, so no column or alias of the user's can take their place.
_ROW = "__dls_row_"
_POSITION = "__dls_position_"
#: The most terms one AND/OR chain may have: a guard beyond the filter pushdown that is off (see ``_CONFIG``),
#: under what was measured safe (50,000); a long list of values belongs in ``col IN (...)``.
MAX_CONDITION_TERMS = 20000
#: Fields of a chunked tensor's metadata struct, as SQL sees it.
TENSOR_FIELDS = ("shape", "ndim", "nbytes")

_CONFIG = {
    "enable_external_access": False,  # no file/URL/ATTACH/COPY, no Python object scans but the one registered
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,  # SET cannot undo the above (SET is refused anyway)
    # DuckDB 1.4 pushes a WHERE's OR chain / string IN list into the Arrow scan recursively and overflows
    # its stack (SIGSEGV: the whole process) from ~9000 terms; without the pushdown 100,000 terms are fine
    # (measured: 1M-row filters cost 2-3 ms more, 4.6 -> 6.9 ms, 11 -> 13 ms)
    "disabled_optimizers": "filter_pushdown",
}
_MACROS = tuple(f"CREATE MACRO {name}(t) AS t.{name}" for name in TENSOR_FIELDS)


@dataclass(frozen=True)
class SqlRows:
    """The rows a SQL text runs over.

    ``columns``: the columns SQL sees, in order; ``chunked``: those that are tensors stored in chunks
    (refs, shown as metadata); ``fetch(names)``: an Arrow table of those columns of the rows, in row
    order (chunked tensors as ref structs); ``where``: the view/dataset named in errors;
    ``class_names``: the names of class_label tensors' values, for hints in errors.
    """

    columns: tuple[str, ...]
    chunked: frozenset[str]
    fetch: Callable[[Sequence[str]], pa.Table]
    where: str
    class_names: Mapping[str, Sequence[str]] = field(default_factory=dict)  # class_label tensor -> its names


# ------------------------------------------------------------------ entry points
def query_positions(rows: SqlRows, sql: str) -> np.ndarray:
    """Positions (into ``rows``) of the rows ``sql`` selects, in the query's order (ties of ORDER BY,
    and a query without one, keep row order). ``sql`` is one ``SELECT ... FROM ds ...`` whose result
    rows are rows of ``ds``: no GROUP BY, aggregates, plain DISTINCT, set operations, WITH, joins or
    subqueries in FROM (run those through :func:`sql_table`)."""
    where = f"{rows.where}: query({sql!r})"
    text = _check_text(sql, where)
    with _connection() as con:
        node = _parse(con, text, where)
        _check_tables(node, where, rows_only=True)
        _check_rows(node, where)
        order = next((m for m in node["modifiers"] if m["type"] == "ORDER_MODIFIER"), None)
        _order_by_all(node, order, where)
        if _plain_star(node, order):  # SELECT * ...: the values are not needed, only the positions
            node["select_list"] = []
        row = _ROW + secrets.token_hex(8)
        _register(con, rows, _referenced(node), row=row)
        node["select_list"].append(_column_ref(row, alias=_POSITION + secrets.token_hex(8)))
        if order is None:
            order = {"type": "ORDER_MODIFIER", "orders": []}
            kinds = [m["type"] for m in node["modifiers"]]  # DISTINCT, ORDER, LIMIT as DuckDB's parser puts them
            node["modifiers"].insert(kinds.index("LIMIT_MODIFIER") if "LIMIT_MODIFIER" in kinds else len(kinds), order)
        order["orders"].append({"type": "ASCENDING", "null_order": "ORDER_DEFAULT", "expression": _column_ref(row)})
        # DuckDB 1.4.4 aborts the process (not an error) on some ORDER BY ... LIMIT 0 plans over an Arrow scan
        # (seen with a macro in ORDER BY): run LIMIT 1 instead, so errors still surface, and keep no row
        none = _limit_zero_to_one(node)
        result = _execute(con, _to_sql(con, node), rows, node, where, lambda r: r.fetch_arrow_table())
    if none:
        return np.zeros(0, dtype=np.int64)
    return result.column(result.num_columns - 1).to_numpy().astype(np.int64)


def _limit_zero_to_one(node: dict[str, Any]) -> bool:
    """True (and the limit made 1) when ``node``'s own LIMIT is the constant 0."""
    for modifier in node["modifiers"]:
        if modifier.get("type") != "LIMIT_MODIFIER":
            continue
        limit = modifier.get("limit") or {}
        value = limit.get("value") if limit.get("class") == "CONSTANT" else None
        if isinstance(value, dict) and not value.get("is_null") and value.get("value") == 0:
            value["value"] = 1
            return True
    return False


def sql_table(rows: SqlRows, sql: str) -> pa.Table:
    """The result of ``sql``, any one SELECT over ``ds`` (aggregates, GROUP BY, subqueries, joins and
    WITH over ``ds`` included), as an Arrow table; chunked tensors come out as metadata structs."""
    where = f"{rows.where}: sql({sql!r})"
    text = _check_text(sql, where)
    with _connection() as con:
        node = _parse(con, text, where)
        _check_tables(node, where, rows_only=False)
        _register(con, rows, _referenced(node), row=None)
        return _execute(con, text, rows, node, where, lambda r: r.fetch_arrow_table())


def filter_positions(rows: SqlRows, condition: str, *, where: str) -> np.ndarray:
    """Positions (into ``rows``, ascending) of the rows for which the SQL condition ``condition`` (the
    text of a WHERE clause) is TRUE; NULL counts as false, as in SQL."""
    text = _check_text(condition, where)
    prefix = f"SELECT 1 FROM {TABLE} WHERE "
    with _connection() as con:
        node = _parse(con, prefix + text, where, offset=len(prefix), shown=condition)
        if not _only_where(node):
            raise InvalidOptionError(f"{where}: a filter is one condition (the text of a WHERE clause); use "
                                     "query() for ORDER BY, LIMIT, GROUP BY or a full SELECT")
        _check_tables(node, where, rows_only=False)
        row = _ROW + secrets.token_hex(8)
        _register(con, rows, _referenced(node), row=row)
        # the condition as a projection, one value per row (which also shows its type), next to the row's
        # position: DuckDB does not keep the rows' order for every plan (a subquery in the condition joins,
        # and the Arrow scan's batches can come out swapped), so values are placed by position, not order
        projection = _to_sql(con, {**node, "select_list": [node["where_clause"], _column_ref(row)],
                                   "where_clause": None})
        kind, values, positions = _execute(con, projection, rows, node, where, _booleans)
    if values is None:
        raise InvalidOptionError(f"{where}: the condition gives {kind} values, not true/false")
    return np.sort(positions[values]).astype(np.int64)


def _booleans(result: duckdb.DuckDBPyConnection) -> tuple[str, np.ndarray | None, np.ndarray]:
    """The type of the result's first column, its values with NULL as False when BOOLEAN (else None),
    and the second column's values (the rows' positions)."""
    kind = str(result.description[0][1])
    if kind != "BOOLEAN":
        return kind, None, np.zeros(0, dtype=np.int64)
    values, positions = result.fetchnumpy().values()
    values = values.filled(False) if isinstance(values, np.ma.MaskedArray) else np.asarray(values)
    return kind, values.astype(bool), np.asarray(positions)


# --------------------------------------------------------------------- the rows
def tensor_metadata(refs: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """A chunked tensor's ref column as SQL sees it: ``struct{shape, ndim, nbytes}`` (null where the
    ref is null), sharing the refs' shape and nbytes buffers."""
    if isinstance(refs, pa.Array):
        refs = pa.chunked_array([refs])
    pieces = []
    for chunk in refs.chunks:
        fields = dict(zip([f.name for f in chunk.type], chunk.flatten()))  # flatten applies offset and nulls
        shape = fields["shape"]
        ndim = pc.list_value_length(shape).cast(pa.int64())
        mask = chunk.is_null() if chunk.null_count else None
        pieces.append(pa.StructArray.from_arrays([shape, ndim, fields["nbytes"]], names=list(TENSOR_FIELDS),
                                                 mask=mask))
    metadata_type = pa.struct([("shape", pa.list_(pa.int64())), ("ndim", pa.int64()), ("nbytes", pa.int64())])
    return pa.chunked_array(pieces, type=metadata_type)


def _register(con: duckdb.DuckDBPyConnection, rows: SqlRows, referenced: set[str] | None, *,
              row: str | None) -> None:
    """Registers table ``ds``: the referenced columns of the rows (all when None), then, when ``row`` names
    it, a column of the row positions."""
    names = [c for c in rows.columns if referenced is None or c.lower() in referenced] or list(rows.columns[:1])
    table = rows.fetch(names)
    for name in names:
        if name in rows.chunked:
            table = table.set_column(table.schema.get_field_index(name), name, tensor_metadata(table.column(name)))
    if row is not None:
        table = table.append_column(row, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    con.register(TABLE, table)


# ---------------------------------------------------------------- the statement
_LOCAL = threading.local()


@contextmanager
def _connection() -> Iterator[duckdb.DuckDBPyConnection]:
    """This thread's locked-down DuckDB (one per thread and process: a forked child makes its own and
    never touches its parent's), with no table registered once the block ends."""
    con = getattr(_LOCAL, "connections", {}).get(os.getpid())
    if con is None:
        con = duckdb.connect(":memory:", config=_CONFIG)
        for macro in _MACROS:
            con.execute(macro)
        _LOCAL.connections = {**getattr(_LOCAL, "connections", {}), os.getpid(): con}
    try:
        yield con
    finally:
        con.unregister(TABLE)


def _check_text(sql: Any, where: str) -> str:
    if not isinstance(sql, str):
        raise InvalidOptionError(f"{where}: expected a SQL text, got {type(sql).__name__}")
    if not sql.strip():
        raise InvalidOptionError(f"{where}: empty SQL text")
    return _spark_quotes(sql)


def _spark_quotes(sql: str) -> str:
    """Spark-style `` `name` `` quoting rewritten as ``"name"``: only backticks DuckDB's own tokenizer finds
    outside string literals (``'...'``, ``$$...$$``) and comments (``--``, nested ``/* */``). The text is
    tokenized again after each name, as a quote inside a backticked name misleads the tokenizer past it."""
    data = sql.encode("utf-8")  # duckdb.tokenize gives byte offsets; a backtick is one byte in UTF-8
    while b"`" in data:
        try:
            tokens = duckdb.tokenize(data.decode("utf-8"))
        except (duckdb.Error, RuntimeError, ValueError):  # untokenizable: the parser reports it
            break
        start = next((pos for pos, _ in tokens if data[pos:pos + 1] == b"`"), None)
        if start is None:
            break  # the backticks left are inside literals or comments
        name, end = bytearray(), start + 1
        while end < len(data) and not (data[end:end + 1] == b"`" and data[end + 1:end + 2] != b"`"):
            step = 2 if data[end:end + 2] == b"``" else 1  # `` inside a name is one backtick
            name += data[end:end + 1]
            end += step
        if end >= len(data):
            break  # unterminated: left for the parser to report
        data = data[:start] + b'"' + bytes(name).replace(b'"', b'""') + b'"' + data[end + 1:]
    return data.decode("utf-8")


def _parse(con: duckdb.DuckDBPyConnection, text: str, where: str, *, offset: int = 0,
           shown: str | None = None) -> dict[str, Any]:
    """DuckDB's tree of ``text``, which must be exactly one SELECT (positions in errors count from
    ``offset``, into ``shown``)."""
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0])
    except RecursionError as e:
        raise InvalidOptionError(f"{where}: the SQL text is nested too deeply") from e
    statements = tree.get("statements", [])
    if tree.get("error") and tree.get("error_type") == "not implemented":  # not a SELECT, or not only SELECTs
        statements = con.extract_statements(text)
    if len(statements) > 1:
        raise InvalidOptionError(f"{where}: expected one SQL statement, found {len(statements)}")
    if tree.get("error"):
        message = tree.get("error_message", "")
        if tree.get("error_type") == "not implemented":
            raise InvalidOptionError(f"{where}: only a SELECT over {TABLE} is allowed")
        if "position" in tree:
            position = int(tree["position"]) - offset
            message += f" at position {position} of {shown if shown is not None else text!r}"
        raise InvalidOptionError(f"{where}: {message}")
    node = tree["statements"][0]["node"]
    longest = max((len(d["children"]) for d in _walk(node) if d.get("class") == "CONJUNCTION"), default=0)
    if longest > MAX_CONDITION_TERMS:
        raise InvalidOptionError(f"{where}: a condition of {longest} terms joined by AND/OR; at most "
                                 f"{MAX_CONDITION_TERMS} (MAX_CONDITION_TERMS): put many values in one "
                                 "`column IN (...)` instead")
    return node


def _walk(tree: Any) -> Iterator[dict[str, Any]]:
    """Every dict in ``tree`` (iteratively: a deeply nested expression must not exhaust Python's stack)."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _check_tables(node: dict[str, Any], where: str, *, rows_only: bool) -> None:
    """Every table the statement reads is ``ds`` (or, unless ``rows_only``, a WITH name, a subquery,
    a join or a set operation of those)."""
    ctes = {entry["key"].lower() for d in _walk(node) if "cte_map" in d for entry in d["cte_map"]["map"]}
    for d in _walk(node):
        if "from_table" in d:
            _check_ref(d["from_table"], ctes, where)
    if rows_only:
        if node["type"] != "SELECT_NODE":
            raise InvalidOptionError(f"{where}: a {node['type'].removesuffix('_NODE').replace('_', ' ').lower()} "
                                     "does not give rows of ds; use sql() for it")
        if node["cte_map"]["map"]:
            raise InvalidOptionError(f"{where}: WITH is not supported by query(); use sql()")
        if node["from_table"]["type"] != "BASE_TABLE":
            raise InvalidOptionError(f"{where}: query() selects rows FROM {TABLE} itself (no join or subquery in "
                                     "FROM); use sql() for other results")


def _check_ref(ref: dict[str, Any], ctes: set[str], where: str) -> None:
    kind = ref.get("type")
    if kind == "BASE_TABLE":
        name = ref["table_name"]
        if ref["schema_name"] or ref["catalog_name"] or name.lower() not in {TABLE, *ctes}:
            full = ".".join(p for p in (ref["catalog_name"], ref["schema_name"], name) if p)
            raise InvalidOptionError(f"{where}: unknown table {full!r}; the rows are the table {TABLE}")
        if ref.get("at_clause") is not None:
            raise InvalidOptionError(f"{where}: AT (time travel) is not supported; open the version instead")
    elif kind == "JOIN":
        _check_ref(ref["left"], ctes, where)
        _check_ref(ref["right"], ctes, where)
    elif kind == "TABLE_FUNCTION":
        raise InvalidOptionError(f"{where}: table functions ({_function_name(ref)}) are not allowed; only the "
                                 f"table {TABLE}")
    elif kind == "EMPTY":
        raise InvalidOptionError(f"{where}: a SELECT without FROM {TABLE}")
    elif kind != "SUBQUERY":  # a subquery's own SELECT is walked by _check_tables
        raise InvalidOptionError(f"{where}: {str(kind).replace('_', ' ').lower()} in FROM is not allowed; "
                                 f"only the table {TABLE}")


def _plain_star(node: dict[str, Any], order: dict[str, Any] | None) -> bool:
    """Whether the select list is a bare ``*`` that ORDER BY does not point into (``ORDER BY 2``,
    ``ORDER BY ALL``), so the rows' positions alone give the same result."""
    items = node["select_list"]
    star = len(items) == 1 and items[0]["class"] == "STAR" and not items[0]["columns"] and not any(
        items[0].get(k) for k in ("relation_name", "exclude_list", "replace_list", "expr", "rename_list",
                                  "qualified_exclude_list"))
    return star and not any(o["expression"]["class"] in ("CONSTANT", "STAR") for o in (order or {}).get("orders", []))


def _order_by_all(node: dict[str, Any], order: dict[str, Any] | None, where: str) -> None:
    """``ORDER BY ALL`` as ordinals of the select list: DuckDB writes it back as ``ORDER BY COLUMNS(*)``,
    which means the columns of ``ds``, so a select list of expressions keeps its meaning this way."""
    orders = (order or {}).get("orders", [])
    if not any(o["expression"]["class"] == "STAR" and o["expression"]["columns"] for o in orders):
        return
    items = node["select_list"]
    if any(item["class"] == "STAR" for item in items):
        if _plain_star(node, None):
            return  # SELECT * ... ORDER BY ALL: the columns of ds are the select list
        raise InvalidOptionError(f"{where}: ORDER BY ALL over * and expressions; name the ORDER BY columns")
    (entry,) = orders  # DuckDB's parser allows ALL only alone
    order["orders"] = [{**entry, "expression": {"class": "CONSTANT", "type": "VALUE_CONSTANT", "alias": "",
                                                "query_location": 0,
                                                "value": {"type": {"id": "INTEGER", "type_info": None},
                                                          "is_null": False, "value": k}}}
                       for k in range(1, len(items) + 1)]


def _check_rows(node: dict[str, Any], where: str) -> None:
    """The SELECT gives rows of ds (query()): no grouping or plain DISTINCT."""
    if node["group_expressions"] or node["group_sets"] or node["having"] is not None:
        raise InvalidOptionError(f"{where}: GROUP BY/HAVING gives groups, not rows of {TABLE}; use sql() for it")
    for modifier in node["modifiers"]:
        if modifier["type"] == "DISTINCT_MODIFIER" and not modifier["distinct_on_targets"]:
            raise InvalidOptionError(f"{where}: SELECT DISTINCT gives values, not rows of {TABLE}; use sql() "
                                     "(or DISTINCT ON (...) for one row per value)")


def _function_name(ref: dict[str, Any]) -> str:
    function = ref.get("function") or {}
    return str(function.get("function_name") or "a table function")


def _referenced(node: dict[str, Any]) -> set[str] | None:
    """Lower-cased names the statement may mean as columns (None: it needs every column, a ``*``)."""
    if any(d.get("class") in ("STAR", "POSITIONAL_REFERENCE") for d in _walk(node)):
        return None
    return _names(node)


def _names(node: dict[str, Any]) -> set[str]:
    """Lower-cased parts of every column reference in the statement (``img.shape``: img and shape)."""
    return {str(n).lower() for d in _walk(node) if d.get("class") == "COLUMN_REF" for n in d["column_names"]}


def _column_ref(name: str, alias: str = "") -> dict[str, Any]:
    return {"class": "COLUMN_REF", "type": "COLUMN_REF", "alias": alias, "query_location": 0, "column_names": [name]}


def _only_where(node: dict[str, Any]) -> bool:
    """Whether ``node``, the tree of ``SELECT 1 FROM ds WHERE <text>``, got nothing from the text but its WHERE."""
    return (node["type"] == "SELECT_NODE" and not node["modifiers"] and not node["cte_map"]["map"]
            and not node["group_expressions"] and not node["group_sets"] and node["having"] is None
            and node["qualify"] is None and node["sample"] is None and node["from_table"]["type"] == "BASE_TABLE"
            and node["aggregate_handling"] == "STANDARD_HANDLING")


def _to_sql(con: duckdb.DuckDBPyConnection, node: dict[str, Any]) -> str:
    tree = {"error": False, "statements": [{"node": node, "named_param_map": []}]}
    try:
        text = json.dumps(tree)
    except RecursionError as e:
        raise InvalidOptionError("the SQL text is nested too deeply") from e
    return str(con.execute("SELECT json_deserialize_sql(?::JSON)", [text]).fetchone()[0])


def _execute(con: duckdb.DuckDBPyConnection, text: str, rows: SqlRows, node: dict[str, Any], where: str,
             fetch: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
    """``fetch`` of ``text``'s result; DuckDB's errors as typed errors naming ``where``."""
    try:
        return fetch(con.execute(text))
    except duckdb.Error as e:
        raise _engine_error(e, rows, node, where) from e


def _engine_error(error: duckdb.Error, rows: SqlRows, node: dict[str, Any], where: str) -> Exception:
    """A typed error for DuckDB's ``error`` (its first line: the rest points into the rewritten text)."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    missing = re.search(r'Referenced column "([^"]+)" not found', text)
    if missing is not None:
        return SchemaError(f"{where}: unknown column {missing.group(1)!r}; the columns of {TABLE} are "
                           f"{list(rows.columns)}")
    if isinstance(error, duckdb.BinderException) and "must appear in the GROUP BY clause" in text:
        return InvalidOptionError(f"{where}: the SELECT aggregates rows (count, sum, ...), so it does not give rows "
                                  f"of {TABLE}; use sql() for it")
    referenced = _names(node)
    chunked = [c for c in rows.columns if c in rows.chunked and c.lower() in referenced]
    hint = "".join(f"; column {c!r} is a tensor stored in chunks: SQL sees its metadata only "
                   f"({c}.shape, {c}.ndim, {c}.nbytes)" for c in chunked)
    if isinstance(error, duckdb.ConversionException):  # most likely label = 'cat' on a class_label tensor
        labels = [c for c in rows.columns if rows.class_names.get(c) and c.lower() in referenced]
        hint += "".join(f"; {c!r} holds class indices, not names: "
                        f"{dict(list(zip(rows.class_names[c], range(len(rows.class_names[c]))))[:8])}"
                        for c in labels)
    return InvalidOptionError(f"{where}: {text}{hint}")
