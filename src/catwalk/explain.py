"""Why a value fails its schema, in ``<field>: <problem>`` lines: bounded work, whatever the value.

This runs only after the fast validator (fastjsonschema) has rejected a value, on the converted
JSON Schema draft 7 that catwalk produces (:func:`catwalk.schema.to_json_schema`). It walks the
value once, in the order a reader expects (a field's own problems, then its children, array
rows in order, object fields alphabetically), and is bounded by construction:

- cheap checks come first: a value of the wrong type, an array outside ``minItems``/
  ``maxItems`` or an object outside ``minProperties``/``maxProperties`` is reported as a whole
  and not descended into (a 500,000-item array against ``maxItems: 1000`` is one message);
- at most :data:`MAX_MESSAGES` messages are built; further problems are only counted, and the
  walk stops after :data:`MAX_PROBLEMS` problems or :data:`MAX_STEPS` schema checks;
- ``uniqueItems`` and ``enum`` compare canonical, hashable forms (linear, not pairwise);
- string formats and patterns are linear (:mod:`catwalk.formats`), ``multipleOf`` is exact
  and cannot overflow.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from catwalk.formats import FORMATS, compile_pattern

MAX_MESSAGES = 10
MAX_PROBLEMS = 1000
MAX_STEPS = 100_000
MAX_MESSAGE_LEN = 200
MAX_VALUE_LEN = 80  # a value quoted in a message
_BOUNDS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "minimum": ("less than the minimum of", operator.lt),
    "maximum": ("greater than the maximum of", operator.gt),
    "exclusiveMinimum": ("less than or equal to the minimum of", operator.le),
    "exclusiveMaximum": ("greater than or equal to the maximum of", operator.ge),
}


def canonical(value: Any) -> Any:
    """A hashable form of a JSON value; equal forms mean equal JSON values (1 == 1.0, not true).

    Booleans are tagged so that ``true`` differs from ``1``; objects become frozensets.
    """
    kind = type(value)
    if kind is bool:
        return (bool, value)
    if kind is float and value.is_integer():
        return int(value)
    if kind is list or kind is tuple:
        return tuple(canonical(v) for v in value)
    if kind is dict:
        return (dict, frozenset((k, canonical(v)) for k, v in value.items()))
    return value


def multiple_of(value: int | float, step: int | float) -> bool:
    """Whether ``value`` is a multiple of ``step``: exact for any size, never an OverflowError.

    Floats are compared through their shortest decimal form (``19.01`` is a multiple of
    ``0.01``), as fastjsonschema does.
    """
    if isinstance(value, int) and isinstance(step, int):
        return value % step == 0
    try:
        return Fraction(repr(value)) % Fraction(repr(step)) == 0
    except (ValueError, OverflowError):  # inf / nan cannot come from JSON; be safe anyway
        return False


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "integer": (int,),  # and a float with no fraction, as in JSON Schema draft 7
    "number": (int, float),
}


@dataclass
class Node:
    """One compiled schema: its checks grouped so that the cheap ones run first."""

    schema: dict[str, Any]
    types: tuple[str, ...] = ()
    py_types: frozenset[type] = frozenset()
    whole_floats: bool = False  # "integer" without "number": a float passes if whole
    combines: bool = False
    enum: frozenset[Any] | None = None
    bounds: tuple[tuple[str, Any], ...] = ()
    multiple: int | float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: Callable[[str], bool] | None = None
    format_check: Callable[[str], bool] | None = None
    min_items: int | None = None
    max_items: int | None = None
    unique: bool = False
    items: Node | None = None
    min_props: int | None = None
    max_props: int | None = None
    required: tuple[str, ...] = ()
    properties: dict[str, Node] = field(default_factory=dict)
    additional: Node | bool = True
    all_of: tuple[Node, ...] = ()
    any_of: tuple[Node, ...] = ()
    one_of: tuple[Node, ...] = ()
    not_: Node | None = None


def compile_node(schema: dict[str, Any]) -> Node:
    """Compile a converted (draft 7) schema for :class:`Explainer`."""
    node = Node(schema)
    typ = schema.get("type")
    if typ is not None:
        node.types = tuple(typ) if isinstance(typ, list) else (typ,)
        node.py_types = frozenset(t for name in node.types for t in _PY_TYPES.get(name, ()))
        node.whole_floats = "integer" in node.types and float not in node.py_types
    if "enum" in schema:
        node.enum = frozenset(canonical(v) for v in schema["enum"])
    node.bounds = tuple((k, schema[k]) for k in _BOUNDS if k in schema)
    node.multiple = schema.get("multipleOf")
    node.min_length, node.max_length = schema.get("minLength"), schema.get("maxLength")
    if "pattern" in schema:
        node.pattern = compile_pattern(schema["pattern"])
    node.format_check = FORMATS.get(schema.get("format", ""))
    node.min_items, node.max_items = schema.get("minItems"), schema.get("maxItems")
    node.unique = bool(schema.get("uniqueItems", False))
    if "items" in schema:
        node.items = compile_node(schema["items"])
    node.min_props, node.max_props = schema.get("minProperties"), schema.get("maxProperties")
    node.required = tuple(schema.get("required", ()))
    node.properties = {k: compile_node(v) for k, v in schema.get("properties", {}).items()}
    additional = schema.get("additionalProperties", True)
    node.additional = additional if isinstance(additional, bool) else compile_node(additional)
    node.all_of = tuple(compile_node(s) for s in schema.get("allOf", ()))
    node.any_of = tuple(compile_node(s) for s in schema.get("anyOf", ()))
    node.one_of = tuple(compile_node(s) for s in schema.get("oneOf", ()))
    if "not" in schema:
        node.not_ = compile_node(schema["not"])
    node.combines = bool(node.all_of or node.any_of or node.one_of or node.not_)
    return node


def shorten(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_LEN else text[: MAX_MESSAGE_LEN - 3] + "..."


def preview(value: Any) -> str:
    """``value`` as the user wrote it in JSON (``null``, ``true``, ``"text"``), shortened.

    Only the first characters are ever built: a 500,000-item array costs no more than a small one.
    """
    text = _preview(value, MAX_VALUE_LEN + 1)
    return text if len(text) <= MAX_VALUE_LEN else text[: MAX_VALUE_LEN - 3] + "..."


def _preview(value: Any, room: int) -> str:
    kind = type(value)
    if kind is str:
        return json.dumps(value[:room], ensure_ascii=False)
    if kind is list or kind is dict:
        opening, closing = ("[", "]") if kind is list else ("{", "}")
        parts: list[str] = []
        used = 1
        pairs = value.items() if kind is dict else ((None, v) for v in value)
        for key, item in pairs:
            if used > room:
                break
            text = _preview(item, room - used)
            if kind is dict:
                text = f"{_preview(key, room - used)}: {text}"
            parts.append(text)
            used += len(text) + 2
        return opening + ", ".join(parts) + closing
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):  # not a JSON value (a model's raw output, say)
        return repr(value)[:room]


def _types(names: tuple[str, ...]) -> str:
    return " or ".join(f"'{name}'" for name in names)


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


class _Stop(Exception):
    """The walk has done enough: the budget of problems or steps is spent."""


class Explainer:
    """Explains one value; ``quiet`` mode only answers valid / invalid (for anyOf, oneOf, not)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.messages: list[str] = []
        self.problems = 0
        self.steps = 0
        self.stopped = False

    def explain(self, node: Node, value: Any) -> list[str]:
        """The messages, with a last line saying how many more problems there are."""
        try:
            self._check(node, value, (), False)
        except _Stop:
            self.stopped = True
        messages = self.messages
        extra = self.problems - len(messages)
        if not messages:
            return []  # the budget ran out before a problem was found
        if self.stopped:
            messages.append(f"... and more problems (the first {len(messages)} are shown)")
        elif extra > 0:
            messages.append(f"... and {extra} more problem(s)")
        return messages

    def _want(self, quiet: bool) -> bool:
        """Count a problem; True when its message is to be built (quiet mode: never)."""
        if quiet:
            return False
        self.problems += 1
        if len(self.messages) < MAX_MESSAGES:
            return True
        if self.problems >= MAX_PROBLEMS:
            raise _Stop
        return False

    def _say(self, path: tuple[Any, ...], text: str) -> None:
        self.messages.append(shorten(f"{self._where(path)}: {text}"))

    def _where(self, path: tuple[Any, ...]) -> str:
        out = self.prefix
        for part in path:
            out += f"[{part}]" if isinstance(part, int) else f".{part}"
        return out

    def valid(self, node: Node, value: Any) -> bool:
        """Whether ``value`` passes ``node``, building no message (shares the step budget)."""
        return self._check(node, value, (), True)

    def _check(self, node: Node, value: Any, path: tuple[Any, ...], quiet: bool) -> bool:
        """Check ``value``; in quiet mode stop at the first problem. False when invalid."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _Stop
        kind = type(value)
        if (
            node.types
            and kind not in node.py_types
            and not (node.whole_floats and kind is float and value.is_integer())
        ):
            if self._want(quiet):
                self._say(path, f"{preview(value)} is not of type {_types(node.types)}")
            return False
        ok = True
        if node.enum is not None and canonical(value) not in node.enum:
            enum = node.schema["enum"]
            if self._want(quiet):
                self._say(path, f"{preview(value)} is not one of {preview(enum)}")
            if quiet:
                return False
            ok = False
        if kind is int or kind is float:
            ok = self._number(node, value, path, quiet) and ok
        elif kind is str:
            ok = self._string(node, value, path, quiet) and ok
        elif kind is list:
            ok = self._array(node, value, path, quiet) and ok
        elif kind is dict:
            ok = self._object(node, value, path, quiet) and ok
        if not node.combines or (not ok and quiet):
            return ok
        return self._combinators(node, value, path, quiet) and ok

    def _size(
        self,
        bounds: tuple[int | None, int | None, str],
        n: int,
        value: Any,
        path: tuple[Any, ...],
        quiet: bool,
    ) -> bool:
        """``minLength``/``maxLength`` or ``minItems``/``maxItems``: False when outside."""
        low, high, unit = bounds
        if low is not None and n < low:
            if self._want(quiet):
                self._say(path, f"{preview(value)} is too short (at least {_count(low, unit)})")
            return False
        if high is not None and n > high:
            if self._want(quiet):
                self._say(path, f"{preview(value)} is too long (at most {_count(high, unit)})")
            return False
        return True

    def _number(self, node: Node, value: float, path: tuple[Any, ...], quiet: bool) -> bool:
        ok = True
        for key, bound in node.bounds:
            words, fails = _BOUNDS[key]
            if fails(value, bound):
                if self._want(quiet):
                    self._say(path, f"{preview(value)} is {words} {preview(bound)}")
                if quiet:
                    return False
                ok = False
        step = node.multiple
        if step is not None and not multiple_of(value, step):
            if self._want(quiet):
                self._say(path, f"{preview(value)} is not a multiple of {step}")
            ok = False
        return ok

    def _string(self, node: Node, value: str, path: tuple[Any, ...], quiet: bool) -> bool:
        size = (node.min_length, node.max_length, "character")
        if not self._size(size, len(value), value, path, quiet):
            return False
        ok = True
        if node.pattern is not None and not node.pattern(value):
            pattern = node.schema["pattern"]
            if self._want(quiet):
                self._say(path, f"{preview(value)} does not match the pattern {pattern}")
            if quiet:
                return False
            ok = False
        if node.format_check is not None and not node.format_check(value):
            fmt = node.schema["format"]
            if self._want(quiet):
                self._say(path, f"{preview(value)} is not a valid {fmt}")
            ok = False
        return ok

    def _array(self, node: Node, value: list[Any], path: tuple[Any, ...], quiet: bool) -> bool:
        n = len(value)
        # Rejected as a whole: its items are not looked at.
        if not self._size((node.min_items, node.max_items, "item"), n, value, path, quiet):
            return False
        ok = True
        if node.unique and len({canonical(v) for v in value}) < n:
            if self._want(quiet):
                self._say(path, f"{preview(value)} has non-unique elements")
            if quiet:
                return False
            ok = False
        items = node.items
        if items is not None:
            for i, item in enumerate(value):
                if not self._check(items, item, (*path, i), quiet):
                    if quiet:
                        return False
                    ok = False
        return ok

    def _object(
        self, node: Node, value: dict[str, Any], path: tuple[Any, ...], quiet: bool
    ) -> bool:
        n = len(value)
        if node.min_props is not None and n < node.min_props:
            low = node.min_props
            if self._want(quiet):
                self._say(
                    path, f"{preview(value)} does not have enough properties (at least {low})"
                )
            return False
        if node.max_props is not None and n > node.max_props:
            high = node.max_props
            if self._want(quiet):
                self._say(path, f"{preview(value)} has too many properties (at most {high})")
            return False
        ok = True
        for name in node.required:
            if name not in value:
                if self._want(quiet):
                    self._say(path, f"{preview(name)} is a required property")
                if quiet:
                    return False
                ok = False
        props, additional = node.properties, node.additional
        if additional is False:
            extras = [name for name in value if name not in props]
            if extras:
                if self._want(quiet):
                    self._say(path, _unexpected(extras))
                if quiet:
                    return False
                ok = False
        for name in sorted(value):
            sub = props.get(name)
            if sub is None:
                if additional is True or additional is False:
                    continue
                sub = additional
            if not self._check(sub, value[name], (*path, name), quiet):
                if quiet:
                    return False
                ok = False
        return ok

    def _combinators(self, node: Node, value: Any, path: tuple[Any, ...], quiet: bool) -> bool:
        ok = True
        for sub in node.all_of:
            if not self._check(sub, value, path, quiet):
                if quiet:
                    return False
                ok = False
        if node.any_of and not any(self._check(sub, value, (), True) for sub in node.any_of):
            if self._want(quiet):
                self._say(path, f"{preview(value)} is not valid under any of the given schemas")
            ok = False
        if node.one_of:
            passing = 0
            for sub in node.one_of:
                passing += self._check(sub, value, (), True)
                if passing > 1:
                    break
            if passing != 1:
                how = "any" if passing == 0 else "more than one"
                if self._want(quiet):
                    self._say(
                        path, f"{preview(value)} is not valid under {how} of the given schemas"
                    )
                ok = False
        if node.not_ is not None and self._check(node.not_, value, (), True):
            schema = node.not_.schema
            if self._want(quiet):
                self._say(path, f"{preview(value)} must not be valid under {preview(schema)}")
            ok = False
        return ok


def _unexpected(extras: list[str]) -> str:
    verb = "was" if len(extras) == 1 else "were"
    names = ", ".join(preview(name) for name in extras[:20])
    more = f" and {len(extras) - 20} more" if len(extras) > 20 else ""
    return f"Additional properties are not allowed ({names}{more} {verb} unexpected)"
