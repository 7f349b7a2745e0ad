"""Row predicates for ``ds.filter(...)``: a SQL ``WHERE`` text or a ``pyarrow.compute.Expression``,
evaluated by Arrow over the rows' tabular columns and inline scalar tensors (no Spark, no chunk read).

The SQL subset: comparisons (``=``, ``==``, ``!=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``), ``AND``,
``OR``, ``NOT``, parentheses, ``IS [NOT] NULL``, ``[NOT] IN (...)``, ``[NOT] BETWEEN a AND b``,
``[NOT] LIKE 'pat%'``, ``+ - * /`` and literals (numbers, ``'text'`` with ``''`` for a quote,
``TRUE``, ``FALSE``, ``NULL``). Columns are bare names (matched exactly, else case-insensitively as
SQL does) or ``"quoted"``/`` `quoted` ``. A text literal compared with a date or timestamp column is
cast to the column's type. As in SQL, a row whose predicate is NULL is not selected.

Positions are found by evaluating the expression as a projection, so the row order never depends
on a query engine's plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

from deeplake_spark.errors import InvalidOptionError, SchemaError

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")*"|`(?:[^`]|``)*`)
  | (?P<op><=|>=|<>|!=|==|=|<|>|\(|\)|,|\+|-|\*|/)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)

_KEYWORDS = {"AND", "OR", "NOT", "IS", "NULL", "IN", "BETWEEN", "LIKE", "TRUE", "FALSE"}
_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "=": pc.equal, "==": pc.equal, "!=": pc.not_equal, "<>": pc.not_equal,
    "<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal,
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": pc.add_checked, "-": pc.subtract_checked, "*": pc.multiply_checked, "/": pc.divide_checked,
}


@dataclass(frozen=True)
class _Token:
    kind: str  # number | string | quoted | op | word | end
    text: str
    pos: int


@dataclass(frozen=True)
class _Operand:
    """An expression, with the column type when it is a bare column and the value when a literal."""

    expr: pc.Expression
    column_type: pa.DataType | None = None
    literal: Any = None
    is_literal: bool = False


@dataclass(frozen=True)
class Predicate:
    """A compiled predicate: the Arrow expression and the columns it reads (None: not known)."""

    expression: pc.Expression
    columns: tuple[str, ...] | None


def _tokens(text: str, where: str) -> list[_Token]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InvalidOptionError(f"{where}: unexpected character {text[pos]!r} at position {pos} of {text!r}")
        if m.lastgroup != "space":
            out.append(_Token(m.lastgroup or "", m.group(), pos))
        pos = m.end()
    out.append(_Token("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str, columns: pa.Schema, chunked: Sequence[str], where: str) -> None:
        self.text = text
        self.columns = columns
        self.chunked = list(chunked)
        self.where = where
        self.tokens = _tokens(text, where)
        self.i = 0
        self.used: list[str] = []

    # ---------------------------------------------------------------- tokens
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _is(self, *words: str) -> bool:
        t = self.tok
        return (t.kind == "word" and t.text.upper() in words) or (t.kind == "op" and t.text in words)

    def _take(self, *words: str) -> bool:
        if self._is(*words):
            self.i += 1
            return True
        return False

    def _expect(self, word: str) -> None:
        if not self._take(word):
            self._fail(f"expected {word}")

    def _fail(self, what: str) -> None:
        t = self.tok
        found = "the end" if t.kind == "end" else repr(t.text)
        raise InvalidOptionError(f"{self.where}: {what} at position {t.pos} of {self.text!r}, found {found}")

    # --------------------------------------------------------------- grammar
    def parse(self) -> pc.Expression:
        if self.tok.kind == "end":
            raise InvalidOptionError(f"{self.where}: empty predicate")
        out = self._or().expr
        if self.tok.kind != "end":
            self._fail("expected AND, OR or the end of the predicate")
        return out

    def _or(self) -> _Operand:
        left = self._and()
        while self._take("OR"):
            left = _Operand(pc.or_kleene(left.expr, self._and().expr))
        return left

    def _and(self) -> _Operand:
        left = self._not()
        while self._take("AND"):
            left = _Operand(pc.and_kleene(left.expr, self._not().expr))
        return left

    def _not(self) -> _Operand:
        if self._take("NOT"):
            return _Operand(pc.invert(self._not().expr))
        return self._comparison()

    def _comparison(self) -> _Operand:
        left = self._additive()
        t = self.tok
        if t.kind == "op" and t.text in _COMPARISONS:
            self.i += 1
            right = self._additive()
            a, b = _coerce(left, right, self.where), _coerce(right, left, self.where)
            return _Operand(_COMPARISONS[t.text](a, b))
        if self._take("IS"):
            negate = self._take("NOT")
            self._expect("NULL")
            test = pc.is_null(left.expr)
            return _Operand(pc.invert(test) if negate else test)
        negate = self._take("NOT")
        if self._take("IN"):
            test = self._in(left)
        elif self._take("BETWEEN"):
            low = self._additive()
            self._expect("AND")
            high = self._additive()
            test = pc.and_kleene(pc.greater_equal(left.expr, _coerce(low, left, self.where)),
                                 pc.less_equal(left.expr, _coerce(high, left, self.where)))
        elif self._take("LIKE"):
            if self.tok.kind != "string":
                self._fail("expected a 'pattern' after LIKE")
            pattern = self.tok.text[1:-1].replace("''", "'")
            self.i += 1
            test = pc.match_like(left.expr, pattern)
        else:
            if negate:
                self._fail("expected IN, BETWEEN or LIKE after NOT")
            return left
        return _Operand(pc.invert(test) if negate else test)

    def _in(self, left: _Operand) -> pc.Expression:
        if not self._take("("):
            self._fail("expected ( after IN")
        values = [self._literal_only()]
        while self._take(","):
            values.append(self._literal_only())
        if not self._take(")"):
            self._fail("expected , or ) in the IN list")
        target = left.column_type
        try:
            value_set = pa.array([v for v in values if v is not None], type=target) if target is not None \
                else pa.array([v for v in values if v is not None])
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
            raise InvalidOptionError(f"{self.where}: the IN list {values} does not fit the column's type "
                                     f"{target} ({e})") from e
        test = pc.is_in(left.expr, value_set=value_set)
        # SQL: x IN (1, NULL) is NULL, not FALSE, when x is not 1
        return pc.if_else(test, True, pa.scalar(None, pa.bool_())) if None in values else test

    def _literal_only(self) -> Any:
        operand = self._unary()
        if not operand.is_literal:
            self._fail("expected a literal value in the IN list")
        return operand.literal

    def _additive(self) -> _Operand:
        left = self._term()
        while self._is("+", "-"):
            op = self.tok.text
            self.i += 1
            left = _Operand(_ARITHMETIC[op](left.expr, self._term().expr))
        return left

    def _term(self) -> _Operand:
        left = self._unary()
        while self._is("*", "/"):
            op = self.tok.text
            self.i += 1
            left = _Operand(_ARITHMETIC[op](left.expr, self._unary().expr))
        return left

    def _unary(self) -> _Operand:
        if self._take("-"):
            inner = self._unary()
            if inner.is_literal and isinstance(inner.literal, (int, float)) and not isinstance(inner.literal, bool):
                return _literal(-inner.literal)
            return _Operand(pc.negate_checked(inner.expr))
        return self._primary()

    def _primary(self) -> _Operand:
        t = self.tok
        if self._take("("):
            inner = self._or()
            if not self._take(")"):
                self._fail("expected )")
            return inner
        if t.kind == "number":
            self.i += 1
            is_int = re.fullmatch(r"\d+", t.text) is not None
            return _literal(int(t.text) if is_int else float(t.text))
        if t.kind == "string":
            self.i += 1
            return _literal(t.text[1:-1].replace("''", "'"))
        if t.kind == "quoted":
            self.i += 1
            quote = t.text[0]
            return self._column(t.text[1:-1].replace(quote * 2, quote), exact=True, pos=t.pos)
        if t.kind == "word":
            word = t.text.upper()
            if word in ("TRUE", "FALSE"):
                self.i += 1
                return _literal(word == "TRUE")
            if word == "NULL":
                self.i += 1
                return _literal(None)
            if word not in _KEYWORDS:
                self.i += 1
                return self._column(t.text, exact=False, pos=t.pos)
        self._fail("expected a column, a literal or (")
        raise AssertionError("unreachable")  # _fail raises

    def _column(self, name: str, *, exact: bool, pos: int) -> _Operand:
        names = self.columns.names
        found = name if name in names else None
        if found is None and not exact:
            folded = [n for n in names if n.lower() == name.lower()]
            found = folded[0] if len(folded) == 1 else None
        if found is None:
            chunked = [c for c in self.chunked if c == name or (not exact and c.lower() == name.lower())]
            if chunked:
                raise InvalidOptionError(
                    f"{self.where}: column {chunked[0]!r} (position {pos}) is a tensor stored in chunks; predicates "
                    f"work on tabular columns and scalar tensors stored inline: {names}")
            raise SchemaError(f"{self.where}: unknown column {name!r} at position {pos} of {self.text!r}; "
                              f"filterable columns: {names}")
        if found not in self.used:
            self.used.append(found)
        return _Operand(pc.field(found), column_type=self.columns.field(found).type)


def _literal(value: Any) -> _Operand:
    return _Operand(pc.scalar(value), literal=value, is_literal=True)


def _coerce(operand: _Operand, other: _Operand, where: str) -> pc.Expression:
    """A text literal compared with a date/time/decimal column becomes a value of that column's type."""
    target = other.column_type
    if not (operand.is_literal and isinstance(operand.literal, str) and target is not None):
        return operand.expr
    if pa.types.is_string(target) or pa.types.is_large_string(target) or pa.types.is_dictionary(target):
        return operand.expr
    try:
        return pc.scalar(pa.scalar(operand.literal).cast(target))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise InvalidOptionError(f"{where}: the literal {operand.literal!r} is not a {target} value ({e})") from e


def compile_predicate(predicate: str | pc.Expression, columns: pa.Schema, chunked: Sequence[str], *,
                      where: str) -> Predicate:
    """The Arrow expression for ``predicate`` over ``columns`` (the filterable columns: tabular and
    inline scalar tensors); ``chunked`` names the tensor columns that may not appear in it.

    Raises :class:`InvalidOptionError` for bad syntax or a chunked tensor column and
    :class:`SchemaError` for an unknown column, each naming ``where``, the column or the position.
    """
    if isinstance(predicate, pc.Expression):
        return Predicate(predicate, None)
    if not isinstance(predicate, str):
        raise InvalidOptionError(f"{where}: predicate {predicate!r}: expected a SQL text or a "
                                 "pyarrow.compute.Expression")
    parser = _Parser(predicate, columns, chunked, where)
    expression = parser.parse()
    return Predicate(expression, tuple(parser.used))


def matching_positions(table: pa.Table, predicate: Predicate, chunked: Sequence[str], *, where: str) -> np.ndarray:
    """Positions (into ``table``) of the rows for which ``predicate`` is true; NULL counts as false."""
    try:
        values = pds.dataset(table).to_table(columns={"selected": predicate.expression}).column("selected")
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
            return InvalidOptionError(f"{where}: column {name!r} is a tensor stored in chunks; predicates work on "
                                      f"tabular columns and scalar tensors stored inline: {schema.names}")
        return SchemaError(f"{where}: unknown column {name!r}; filterable columns: {schema.names}")
    return InvalidOptionError(f"{where}: the predicate cannot be evaluated over the columns' types ({text})")
