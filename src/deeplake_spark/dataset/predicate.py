"""``pyarrow.compute.Expression`` predicates for ``filter(...)``, evaluated by Arrow over the rows'
tabular columns and inline scalar tensors (no Spark, no chunk read). SQL text predicates go through
DuckDB instead (:mod:`deeplake_spark.dataset.query`).

Positions are found by evaluating the expression as a projection, so the row order never depends
on a query engine's plan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

from deeplake_spark.errors import InvalidOptionError, SchemaError


def expression_positions(table: pa.Table, expression: pc.Expression, chunked: Sequence[str], *,
                         where: str) -> np.ndarray:
    """Positions (into ``table``, the filterable columns: tabular and inline scalar tensors) of the rows
    for which ``expression`` is true; NULL counts as false. A column missing from ``table`` raises
    :class:`InvalidOptionError` when it is one of the ``chunked`` tensors, else :class:`SchemaError`;
    a non-boolean or ill-typed expression :class:`InvalidOptionError`, each naming ``where``."""
    try:
        values = pds.dataset(table).to_table(columns={"selected": expression}).column("selected")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise _evaluation_error(e, table.schema, chunked, where) from e
    if not pa.types.is_boolean(values.type):
        raise InvalidOptionError(f"{where}: the predicate gives {values.type} values, not true/false")
    mask = pc.fill_null(values, False).to_numpy(zero_copy_only=False)
    return np.flatnonzero(mask).astype(np.int64)


def _evaluation_error(error: Exception, schema: pa.Schema, chunked: Sequence[str], where: str) -> Exception:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    missing = re.search(r"FieldRef\.Name\(([^)]*)\)", text)
    if missing is not None:
        name = missing.group(1)
        if name in chunked:
            return InvalidOptionError(f"{where}: column {name!r} is a tensor stored in chunks; Arrow expressions "
                                      f"work on tabular columns and scalar tensors stored inline: {schema.names} "
                                      f"(a SQL text filter sees its metadata: {name}.shape, {name}.ndim, "
                                      f"{name}.nbytes)")
        return SchemaError(f"{where}: unknown column {name!r}; filterable columns: {schema.names}")
    return InvalidOptionError(f"{where}: the predicate cannot be evaluated over the columns' types ({text})")
