"""OpenAPI 3.0 Schema Objects: checking them, converting them to JSON Schema, validating values.

A model's ``schema.input`` and ``schema.output`` are written in OpenAPI 3.0. They are checked
once (a malformed schema is a spec error), converted to JSON Schema draft 7 with catwalk's
rules applied (listed properties required by default, unlisted properties rejected by
default, ``nullable`` as a ``null`` type) and compiled with fastjsonschema, because one record
is validated on every request. Only when a value fails is it walked again, by catwalk's bounded
explainer (:mod:`catwalk.explain`), to name the failing fields in a readable message. String
formats and patterns are checked in linear time by both (:mod:`catwalk.formats`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema

from catwalk.explain import Explainer, Node, compile_node, preview, shorten
from catwalk.formats import FORMATS, compile_pattern

TYPES = ("string", "boolean", "integer", "number", "array", "object")

# Keywords that take part in validation, and keywords that only annotate.
_ANNOTATIONS = {"description", "example", "title", "default", "deprecated", "readOnly", "writeOnly"}
_KEYWORDS = {
    "type",
    "properties",
    "items",
    "required",
    "nullable",
    "format",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "additionalProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
} | _ANNOTATIONS

_INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# String formats that are checked; every other format (float, double, byte, binary, password,
# or a custom name) is an annotation, as the OpenAPI specification allows.
_CHECKED_FORMATS = {"date", "date-time", "email", "ipv4", "ipv6", "hostname", "uri", "uuid"}
_PATTERN_FORMAT = "x-catwalk-pattern-"  # the custom formats standing for patterns


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def to_json_schema(
    schema: Any, path: str, problems: list[str], *, annotations: bool = False
) -> dict[str, Any]:
    """Check an OpenAPI 3.0 Schema Object and return its JSON Schema draft 7 equivalent.

    Every problem found is appended to ``problems`` as ``"<path>: <problem>"``. With
    ``annotations`` the result keeps ``description``, ``title``, ``default``, ``deprecated``,
    ``readOnly`` and ``writeOnly``, and ``example`` becomes JSON Schema's ``examples``: the
    OpenAPI document (:mod:`catwalk.server.openapi`) shows them; validators need not.
    """
    if not isinstance(schema, dict):
        problems.append(f"{path}: must be a mapping (a schema object), got {_kind(schema)}")
        return {}
    out: dict[str, Any] = {}
    for key in schema:
        if not isinstance(key, str) or (key not in _KEYWORDS and not key.startswith("x-")):
            problems.append(f"{path}: unknown schema keyword {key!r}")

    typ = schema.get("type")
    if typ is not None and typ not in TYPES:
        problems.append(f"{path}.type: unknown type {typ!r} (expected one of {', '.join(TYPES)})")
        typ = None
    nullable = schema.get("nullable", False)
    if not isinstance(nullable, bool):
        problems.append(f"{path}.nullable: must be true or false")
        nullable = False
    if typ is not None:
        out["type"] = [typ, "null"] if nullable else typ

    if typ == "object" or "properties" in schema:
        _convert_object(schema, path, problems, out, annotations)
    if typ == "array" or "items" in schema:
        if "items" not in schema:
            problems.append(f"{path}.items: required for an array schema")
        else:
            out["items"] = to_json_schema(
                schema["items"], f"{path}.items", problems, annotations=annotations
            )

    _convert_scalars(schema, path, problems, out, typ)

    if "enum" in schema:
        enum = schema["enum"]
        if not isinstance(enum, list) or not enum:
            problems.append(f"{path}.enum: must be a non-empty list")
        else:
            out["enum"] = [*enum, None] if nullable and None not in enum else list(enum)

    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema:
            subs = schema[combinator]
            if not isinstance(subs, list) or not subs:
                problems.append(f"{path}.{combinator}: must be a non-empty list of schemas")
            else:
                out[combinator] = [
                    to_json_schema(
                        s, f"{path}.{combinator}[{i}]", problems, annotations=annotations
                    )
                    for i, s in enumerate(subs)
                ]
    if "not" in schema:
        out["not"] = to_json_schema(schema["not"], f"{path}.not", problems, annotations=annotations)
    if annotations:
        for key in _ANNOTATIONS:
            if key in schema:
                out["examples" if key == "example" else key] = (
                    [schema[key]] if key == "example" else schema[key]
                )
    return out


def _convert_object(
    schema: dict[str, Any],
    path: str,
    problems: list[str],
    out: dict[str, Any],
    annotations: bool = False,
) -> None:
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        problems.append(f"{path}.properties: must be a mapping of property names to schemas")
        props = {}
    for name in [name for name in props if not isinstance(name, str)]:
        # YAML reads an unquoted 1 or true as a number or boolean; JSON keys are strings.
        problems.append(f"{path}.properties: property name {name!r} must be a string (quote it)")
        props = {k: v for k, v in props.items() if k != name}
    out["properties"] = {
        name: to_json_schema(sub, f"{path}.properties.{name}", problems, annotations=annotations)
        for name, sub in props.items()
    }
    # catwalk's rule: every listed property is required unless the schema lists its own.
    required = schema.get("required", list(props))
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        problems.append(f"{path}.required: must be a list of property names")
        required = []
    for name in required:
        if name not in props and schema.get("additionalProperties", False) is False:
            problems.append(f"{path}.required: {name!r} is not a listed property")
    if required:
        out["required"] = list(required)
    additional = schema.get("additionalProperties", False)
    if isinstance(additional, bool):
        out["additionalProperties"] = additional
    else:
        # An empty schema allows anything: written as true, which fastjsonschema also reads
        # as "allowed" (it takes an empty {} for false when checking `required`).
        out["additionalProperties"] = (
            to_json_schema(
                additional, f"{path}.additionalProperties", problems, annotations=annotations
            )
            or True
        )
    for key in ("minProperties", "maxProperties"):
        if key in schema:
            if _is_count(schema[key]):
                out[key] = schema[key]
            else:
                problems.append(f"{path}.{key}: must be a non-negative integer")


def _convert_scalars(
    schema: dict[str, Any], path: str, problems: list[str], out: dict[str, Any], typ: str | None
) -> None:
    for key in ("minimum", "maximum"):
        if key in schema:
            if _is_number(schema[key]):
                out[key] = schema[key]
            else:
                problems.append(f"{path}.{key}: must be a number")
    if "multipleOf" in schema:
        # Zero would be a division by zero on every request.
        if _is_number(schema["multipleOf"]) and schema["multipleOf"] > 0:
            out["multipleOf"] = schema["multipleOf"]
        else:
            problems.append(f"{path}.multipleOf: must be a number greater than 0")
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if key in schema:
            # OpenAPI 3.0: a boolean that makes minimum/maximum exclusive.
            if not isinstance(schema[key], bool):
                problems.append(f"{path}.{key}: must be true or false (OpenAPI 3.0)")
            elif schema[key]:
                if bound not in schema:
                    problems.append(f"{path}.{key}: needs {bound}")
                elif bound in out:
                    out[key] = out.pop(bound)
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        if key in schema:
            if _is_count(schema[key]):
                out[key] = schema[key]
            else:
                problems.append(f"{path}.{key}: must be a non-negative integer")
    if "uniqueItems" in schema:
        if isinstance(schema["uniqueItems"], bool):
            out["uniqueItems"] = schema["uniqueItems"]
        else:
            problems.append(f"{path}.uniqueItems: must be true or false")
    if "pattern" in schema:
        pattern = schema["pattern"]
        if not isinstance(pattern, str):
            problems.append(f"{path}.pattern: must be a string (a regular expression)")
        else:
            try:
                compile_pattern(pattern)
                out["pattern"] = pattern
            except ValueError as exc:
                problems.append(f"{path}.pattern: not a valid regular expression ({exc})")
    if "format" in schema:
        fmt = schema["format"]
        if not isinstance(fmt, str):
            problems.append(f"{path}.format: must be a string")
        elif typ == "integer" and fmt in _INT_BOUNDS:
            low, high = _INT_BOUNDS[fmt]
            out.setdefault("minimum", low)
            out.setdefault("maximum", high)
        elif fmt in _CHECKED_FORMATS:
            out["format"] = fmt


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _fast_message(error: fastjsonschema.JsonSchemaValueException, prefix: str) -> str:
    """fastjsonschema's message in the ``<field>: <problem>`` form of the explainer's."""
    name = str(error.name or "data")
    where = prefix + name[len("data") :] if name.startswith("data") else prefix
    if error.rule == "format" and isinstance(error.definition, dict):
        fmt = str(error.definition.get("format"))
        if fmt.startswith(_PATTERN_FORMAT):
            pattern = error.definition.get(fmt, "")
            return shorten(f"{where}: {preview(error.value)} does not match the pattern {pattern}")
        return shorten(f"{where}: {preview(error.value)} is not a valid {fmt}")
    if error.rule == "multipleOf" and isinstance(error.definition, dict):
        # fastjsonschema's own words here are "inifinity reached" (the quotient overflows).
        step = error.definition.get("multipleOf")
        return shorten(f"{where}: {preview(error.value)} is not a multiple of {step}")
    problem = str(error.message)
    if problem.startswith(name):
        problem = problem[len(name) :].strip()
    return shorten(f"{where}: {problem}")


def _fast_schema(schema: Any, formats: dict[str, Callable[[str], bool]]) -> Any:
    """``schema`` for fastjsonschema, each ``pattern`` turned into a custom (RE2) format.

    fastjsonschema matches patterns with Python's backtracking ``re``; a custom format is its
    documented way to plug in another check. Both apply to strings only.
    """
    if isinstance(schema, list):
        return [_fast_schema(s, formats) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: v if k in ("enum", "required", "pattern") else _fast_schema(v, formats)
        for k, v in schema.items()
    }
    if "properties" in schema:  # names, not schemas: copied as they are, values converted
        out["properties"] = {k: _fast_schema(v, formats) for k, v in schema["properties"].items()}
    if "pattern" in out:
        pattern = out.pop("pattern")
        name = f"{_PATTERN_FORMAT}{len(formats)}"
        formats[name] = compile_pattern(pattern)
        # The pattern kept under the format's name, for the fallback message.
        out.setdefault("allOf", []).append({"format": name, name: pattern})
    return out


class SchemaValidator:
    """A compiled validator for one converted schema.

    ``errors`` is the hot path: a value that passes costs one call into fastjsonschema's
    generated code. Only a value that fails is walked again by the bounded explainer
    (:mod:`catwalk.explain`) to name its problems.
    """

    def __init__(self, json_schema: dict[str, Any]) -> None:
        self.json_schema = json_schema
        formats = dict(FORMATS)
        self._fast = fastjsonschema.compile(_fast_schema(json_schema, formats), formats=formats)
        self._slow: Node | None = None
        self._rows: Node | None = None

    def errors(self, value: Any, prefix: str) -> list[str]:
        """Return ``[]`` when ``value`` is valid, else messages like ``input.a: ...``."""
        try:
            self._fast(value)
        except fastjsonschema.JsonSchemaValueException as exc:
            return self._explain(value, prefix, exc)
        except (ArithmeticError, ValueError, TypeError, RecursionError):
            # fastjsonschema's generated code fails on some values it did not foresee (a float
            # multipleOf against an integer beyond a float's range: OverflowError). The
            # explainer is exact on those: it decides.
            return self._explain(value, prefix, None)
        return []

    def rows_errors(self, rows: list[Any], prefix: str) -> list[str]:
        """Like :meth:`errors` for each of ``rows`` (``prefix[i]...``), explained as one walk.

        One bounded explanation for the whole list: 500,000 bad rows cost no more than a few.
        """
        fast = self._fast
        first: fastjsonschema.JsonSchemaValueException | None = None
        at = 0
        for i, row in enumerate(rows):
            try:
                fast(row)
            except fastjsonschema.JsonSchemaValueException as exc:
                first, at = exc, i
                break
            except (ArithmeticError, ValueError, TypeError, RecursionError):
                break  # the explainer decides, as in errors()
        else:
            return []
        if self._rows is None:
            self._rows = compile_node({"type": "array", "items": self.json_schema})
        messages = Explainer(prefix).explain(self._rows, rows)
        if not messages and first is not None:
            messages = [_fast_message(first, f"{prefix}[{at}]")]
        return messages

    def _explain(
        self,
        value: Any,
        prefix: str,
        fast_error: fastjsonschema.JsonSchemaValueException | None,
    ) -> list[str]:
        if self._slow is None:
            self._slow = compile_node(self.json_schema)
        explainer = Explainer(prefix)
        try:
            messages = explainer.explain(self._slow, value)
        except RecursionError:  # a value nested deeper than the interpreter allows
            messages = [f"{prefix}: nested too deeply to be checked"]
        exact = fast_error is not None and fast_error.rule in ("uniqueItems", "multipleOf")
        if not messages and exact and not explainer.stopped:
            # fastjsonschema compares true as the string "True" (["True", true] would not be
            # unique), and gives up on a multipleOf whose quotient overflows a float: the
            # explainer's exact checks, run to the end, decide.
            return []
        if not messages and fast_error is not None:
            # The two walks disagree only on corner cases, or the explainer's budget ran out
            # before it reached the problem fastjsonschema found: its message is still precise.
            messages = [_fast_message(fast_error, prefix)]
        return messages
