"""The alert rule language: parsing a rule and compiling it, safely, into a test of one finding.

The language (conditions, comparisons, values, names, types, missing values and
what is refused) is described in :mod:`journeylab.actions.alerts`.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from journeylab.core.errors import DataError, ParameterError, did_you_mean
from journeylab.maps.findings import FINDING_FIELDS, KINDS

__all__ = [
    "FIELD_TYPES",
    "MAX_LENGTH",
    "MAX_DEPTH",
    "AlertExpressionError",
    "AlertRule",
    "parse_alert",
]


MAX_LENGTH = 1000
MAX_DEPTH = 40

_NUMBER_FIELDS = {
    "rank", "reached", "value", "benchmark", "difference", "difference_ci_low", "difference_ci_high",
    "p_value", "q_value", "value_at_stake", "value_at_stake_ci_low", "value_at_stake_ci_high",
}  # fmt: skip
_BOOL_FIELDS = {"counted"}
#: The type of each field an alert may name: ``number``, ``text`` or ``bool``.
FIELD_TYPES: dict[str, str] = {
    name: "number" if name in _NUMBER_FIELDS else "bool" if name in _BOOL_FIELDS else "text"
    for name in FINDING_FIELDS
}
_ORDER_OPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_OP_TEXT = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_REFUSED = {
    ast.Call: "a call", ast.Attribute: "attribute access", ast.Subscript: "a subscript",
    ast.BinOp: "arithmetic", ast.Lambda: "a lambda", ast.IfExp: "a conditional expression",
    ast.NamedExpr: "an assignment", ast.JoinedStr: "an f-string", ast.Dict: "a dict", ast.Set: "a set",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension", ast.Starred: "unpacking", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "a slice",
}  # fmt: skip
_HELP = (
    "allowed: field comparisons (==, !=, <, <=, >, >=, in, not in) with numbers, quoted text, "
    "bare words or lists, joined by and / or / not"
)


class AlertExpressionError(ParameterError):
    """An ``--alert`` expression that is not valid, with where and why.

    Attributes
    ----------
    expression : str
    reason : str
        What is wrong.
    offset : int or None
        0-based character position of the offending part.
    name : str or None
        The unknown name or word, for a typo.
    suggestion : str or None
        The closest field or kind, for a typo.
    """

    def __init__(
        self,
        expression: str,
        reason: str,
        *,
        offset: int | None = None,
        length: int = 1,
        name: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.expression = expression
        self.reason = reason
        self.offset = offset
        self.name = name
        self.suggestion = suggestion
        lines = [f"--alert {reason}"]
        if offset is not None and "\n" not in expression and len(expression) <= 200:
            lines += [f"    {expression}", "    " + " " * offset + "^" * max(1, length)]
        else:
            lines.append(f"    in: {expression[:200]}")
        lines.append(f"  {_HELP}; fields: {', '.join(FIELD_TYPES)}.")
        super().__init__("\n".join(lines))


def _suggest(name: str, candidates: Iterable[str]) -> tuple[str, str | None]:
    hint = did_you_mean(name, candidates)
    return hint, (hint.split("'")[1] if hint else None)


# -- compiling ----------------------------------------------------------------
@dataclass(frozen=True)
class _Operand:
    kind: str  # "field" or "literal"
    type: str  # number / text / bool / none / list
    value: Any = None  # the field name, or the literal
    node: ast.AST | None = None
    items: tuple[_Operand, ...] = ()  # the elements of a list


class _Compiler:
    def __init__(self, expression: str) -> None:
        self.expression = expression

    def error(self, node: ast.AST | None, reason: str, **kw) -> AlertExpressionError:
        offset = length = None
        if node is not None and hasattr(node, "col_offset"):
            offset = node.col_offset
            end = getattr(node, "end_col_offset", None)
            length = (
                (end - offset)
                if end is not None and getattr(node, "end_lineno", 1) == node.lineno
                else 1
            )
        return AlertExpressionError(
            self.expression, reason, offset=offset, length=length or 1, **kw
        )

    def refuse(self, node: ast.AST) -> AlertExpressionError:
        what = _REFUSED.get(type(node), f"{type(node).__name__}")
        snippet = ast.get_source_segment(self.expression, node) or ""
        return self.error(
            node, f"refuses {what}: {snippet!r} (alerts compare finding fields only)."
        )

    # conditions ---------------------------------------------------------
    def condition(self, node: ast.AST, depth: int = 0) -> Callable[[Mapping[str, Any]], bool]:
        if depth > MAX_DEPTH:
            raise self.error(node, f"is nested deeper than {MAX_DEPTH} levels.")
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(v, depth + 1) for v in node.values]
            if isinstance(node.op, ast.And):
                return lambda r: all(p(r) for p in parts)
            return lambda r: any(p(r) for p in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.condition(node.operand, depth + 1)
            return lambda r: not inner(r)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):
            operand = self.operand(node, bare_word_for=None)
            if operand.type != "bool":
                example = f"{node.id} > 0" if operand.type == "number" else f"{node.id} == 'x'"
                raise self.error(
                    node,
                    f"uses {node.id!r} alone, which is not a condition; compare it "
                    f"(e.g. {example}).",
                )
            name = operand.value
            return lambda r: _get(r, name) is True
        if isinstance(node, ast.Constant):
            raise self.error(
                node, f"has the bare value {node.value!r} as a condition; compare a field."
            )
        raise self.refuse(node)

    def compare(self, node: ast.Compare) -> Callable[[Mapping[str, Any]], bool]:
        steps = []
        left_node = node.left
        left = self.operand(left_node, bare_word_for=None)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            bare_for = (
                left
                if (left.kind == "field" and isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)))
                else None
            )
            right = self.operand(
                right_node, bare_word_for=bare_for, in_list=isinstance(op, (ast.In, ast.NotIn))
            )
            steps.append(self.pair(left, op, right, left_node, right_node))
            left, left_node = right, right_node
        return lambda r: all(s(r) for s in steps)

    def pair(self, left: _Operand, op: ast.cmpop, right: _Operand, left_node, right_node):
        sign = _OP_TEXT[type(op)]
        span = ast.Compare(left=left_node, ops=[op], comparators=[right_node])
        ast.copy_location(span, left_node)
        span.end_lineno, span.end_col_offset = right_node.end_lineno, right_node.end_col_offset
        if left.kind == "literal" and right.kind == "literal":
            raise self.error(
                span,
                f"compares two values ({ast.get_source_segment(self.expression, span)!r}) "
                "and names no field.",
            )
        if isinstance(op, (ast.In, ast.NotIn)):
            return self._membership(left, op, right, span)
        if isinstance(op, _ORDER_OPS):
            for side in (left, right):
                if side.type != "number":
                    what = (
                        f"the {side.type} field {side.value!r}"
                        if side.kind == "field"
                        else f"{side.value!r}"
                    )
                    raise self.error(span, f"uses {sign} on {what}; {sign} compares numbers.")
            fn = {
                ast.Lt: lambda a, b: a < b,
                ast.LtE: lambda a, b: a <= b,
                ast.Gt: lambda a, b: a > b,
                ast.GtE: lambda a, b: a >= b,
            }[type(op)]
            a, b = _reader(left), _reader(right)

            def order(r: Mapping[str, Any]) -> bool:
                x, y = a(r), b(r)
                return x is not None and y is not None and fn(x, y)

            return order
        # == and !=
        if "none" not in (left.type, right.type) and left.type != right.type:
            raise self.error(
                span, f"compares {_describe(left)} with {_describe(right)}; compare like with like."
            )
        self._check_kind(left, right)
        a, b = _reader(left), _reader(right)
        if isinstance(op, ast.Eq):
            return lambda r: a(r) == b(r)
        return lambda r: a(r) != b(r)

    def _membership(self, left: _Operand, op, right: _Operand, span):
        negate = isinstance(op, ast.NotIn)
        if right.type == "list":
            if left.kind != "field":
                raise self.error(
                    span, "puts a value on the left of 'in' a list; the left must be a field."
                )
            for item in right.items:
                if item.type != "none" and item.type != left.type:
                    raise self.error(
                        item.node,
                        f"lists {item.value!r} for {_describe(left)}; "
                        f"list {left.type} values only.",
                    )
                self._check_kind(left, item)
            options = tuple(right.value)
            a = _reader(left)
            return (lambda r: a(r) not in options) if negate else (lambda r: a(r) in options)
        if right.kind == "field" and right.type == "text" and left.type == "text":
            a, b = _reader(left), _reader(right)

            def contains(r: Mapping[str, Any]) -> bool:
                x, y = a(r), b(r)
                found = x is not None and y is not None and x in y
                return not found if negate else found

            return contains
        raise self.error(
            span,
            "needs a list on the right of 'in' (kind in [timing, segment_gap]), "
            "or text in a text field ('mobile' in text).",
        )

    def _check_kind(self, left: _Operand, right: _Operand) -> None:
        for field_side, value_side in ((left, right), (right, left)):
            if (
                field_side.kind == "field"
                and field_side.value == "kind"
                and value_side.kind == "literal"
                and isinstance(value_side.value, str)
                and value_side.value not in KINDS
            ):
                hint, best = _suggest(value_side.value, KINDS)
                raise self.error(
                    value_side.node,
                    f"names the unknown kind {value_side.value!r}{hint}; "
                    f"kinds are {', '.join(KINDS)}.",
                    name=value_side.value,
                    suggestion=best,
                )

    # operands -----------------------------------------------------------
    def operand(
        self, node: ast.AST, *, bare_word_for: _Operand | None, in_list: bool = False
    ) -> _Operand:
        if isinstance(node, ast.Name):
            name = node.id
            if name.startswith("__"):
                raise self.error(node, f"refuses the dunder name {name!r}.")
            if name in FIELD_TYPES:
                return _Operand("field", FIELD_TYPES[name], name, node)
            if bare_word_for is not None and bare_word_for.type == "text":
                return _Operand("literal", "text", name, node)
            if (
                bare_word_for is not None
                and bare_word_for.type == "bool"
                and name.lower() in ("true", "false")
            ):
                return _Operand("literal", "bool", name.lower() == "true", node)
            hint, best = _suggest(name, FIELD_TYPES)
            if bare_word_for is not None:
                reason = (
                    f"uses {name!r}, which is no field{hint}; a bare word compares only with a text "
                    f"field, and {bare_word_for.value!r} is a {bare_word_for.type}."
                )
            else:
                reason = f"names the unknown field {name!r}{hint}."
            raise self.error(node, reason, name=name, suggestion=best)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
                if isinstance(value, float) and not math.isfinite(value):
                    raise self.error(node, f"uses the number {value!r}; use a finite number.")
                return _Operand("literal", _type_of(value), value, node)
            raise self.error(node, f"refuses the value {value!r} ({type(value).__name__}).")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = node.operand
            if (
                isinstance(inner, ast.Constant)
                and isinstance(inner.value, (int, float))
                and not isinstance(inner.value, bool)
            ):
                return _Operand(
                    "literal",
                    "number",
                    -inner.value if isinstance(node.op, ast.USub) else inner.value,
                    node,
                )
            raise self.error(node, "refuses arithmetic: a sign applies to a number only.")
        if isinstance(node, (ast.List, ast.Tuple)):
            if not in_list:
                raise self.error(node, "uses a list outside 'in' / 'not in'.")
            items = []
            for elt in node.elts:
                if isinstance(elt, (ast.List, ast.Tuple)):
                    raise self.error(elt, "nests a list in a list.")
                item = self.operand(elt, bare_word_for=bare_word_for)
                if item.kind != "literal":
                    raise self.error(
                        elt, f"lists the field {item.value!r}; a list holds values only."
                    )
                items.append(item)
            return _Operand("literal", "list", [i.value for i in items], node, tuple(items))
        raise self.refuse(node)


def _type_of(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "text"


def _describe(operand: _Operand) -> str:
    if operand.kind == "field":
        return f"the {operand.type} field {operand.value!r}"
    return f"the {operand.type} {operand.value!r}"


def _get(record: Mapping[str, Any], name: str) -> Any:
    value = record[name]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _reader(operand: _Operand) -> Callable[[Mapping[str, Any]], Any]:
    if operand.kind == "literal":
        value = operand.value
        return lambda r: value
    name, kind = operand.value, operand.type

    def read(r: Mapping[str, Any]) -> Any:
        value = _get(r, name)
        if value is None:
            return None
        ok = {
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "text": isinstance(value, str),
        }[kind]
        if not ok:
            raise DataError(
                f"Finding {r.get('id')!r} has {name} == {value!r}, which is not a {kind}.",
                column=name,
                hint="the findings of metrics.json follow the report's schema (journeylab.reports.monthly).",
            )
        return value

    return read


# -- the rule -----------------------------------------------------------------
@dataclass(frozen=True)
class AlertRule:
    """A parsed, validated alert expression. Build one with :func:`parse_alert`.

    Attributes
    ----------
    expression : str
        The text as given.
    fields : tuple of str
        The finding fields it reads.
    """

    expression: str
    fields: tuple[str, ...]
    _predicate: Callable[[Mapping[str, Any]], bool] = field(repr=False, compare=False)

    def matches(self, finding: Mapping[str, Any]) -> bool:
        """Return whether one finding record matches the rule."""
        missing = [f for f in self.fields if f not in finding]
        if missing:
            raise DataError(
                f"Finding {finding.get('id')!r} lacks the field(s) {missing} the alert reads "
                f"({self.expression!r}).",
                column=missing[0],
                missing_columns=missing,
                hint="evaluate the findings list of a report's metrics.json, which carries every field.",
            )
        return bool(self._predicate(finding))

    def filter(self, findings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Return the findings that match, in their order."""
        return [dict(f) for f in findings if self.matches(f)]

    def __str__(self) -> str:
        return self.expression


def parse_alert(expression: str) -> AlertRule:
    """Parse and check an alert expression over finding fields; nothing is evaluated.

    Parameters
    ----------
    expression : str
        E.g. ``"value_at_stake > 10000 or kind == change_vs_previous"``.

    Returns
    -------
    AlertRule

    Raises
    ------
    AlertExpressionError
        For anything outside the grammar (see the module docstring), with the
        position and, for a misspelt field or kind, the closest one.

    Examples
    --------
    >>> rule = parse_alert("value_at_stake > 10000 or kind == change_vs_previous")
    >>> rule.matches({"value_at_stake": 500.0, "kind": "change_vs_previous"})
    True
    >>> parse_alert("value_at_stak > 10")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    journeylab.actions.alert_rules.AlertExpressionError: --alert names the unknown field
    'value_at_stak' (did you mean 'value_at_stake'?).
    ...
    """
    if not isinstance(expression, str):
        raise ParameterError(f"An alert expression is text; got {type(expression).__name__}.")
    text = expression.strip()
    if not text:
        raise AlertExpressionError(
            expression, "is empty; give a condition such as 'value_at_stake > 10000'."
        )
    if len(text) > MAX_LENGTH:
        raise AlertExpressionError(
            text[:200] + " …", f"is {len(text):,} characters long; at most {MAX_LENGTH:,}."
        )
    if "\n" in text or "\r" in text:
        raise AlertExpressionError(
            text.replace("\n", " "), "spans several lines; write it on one line."
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        hint = ""
        if "=" in text and "==" not in text and not any(s in text for s in ("<=", ">=", "!=")):
            hint = " Compare with '==', not '='."
        elif any(s in text for s in ("&&", "||", " AND ", " OR ")):
            hint = " Join conditions with 'and', 'or', 'not'."
        offset = (exc.offset - 1) if exc.offset else None
        raise AlertExpressionError(
            text, f"is not a valid expression ({exc.msg}).{hint}", offset=offset
        ) from None
    except (RecursionError, MemoryError):
        raise AlertExpressionError(text, f"is nested deeper than {MAX_DEPTH} levels.") from None
    compiler = _Compiler(text)
    for node in ast.walk(tree):
        name = getattr(node, "id", None) or getattr(node, "attr", None)
        if isinstance(name, str) and name.startswith("__"):
            raise compiler.error(node, f"refuses the dunder name {name!r}.")
    try:
        predicate = compiler.condition(tree.body)
    except RecursionError:
        raise AlertExpressionError(text, f"is nested deeper than {MAX_DEPTH} levels.") from None
    used = tuple(
        dict.fromkeys(
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in FIELD_TYPES
        )
    )
    return AlertRule(text, used, predicate)
