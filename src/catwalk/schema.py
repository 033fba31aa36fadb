"""OpenAPI 3.0 Schema Objects: checking them, converting them to JSON Schema, validating values.

A model's ``schema.input`` and ``schema.output`` are written in OpenAPI 3.0. They are checked
once (a malformed schema is a spec error), converted to JSON Schema draft 7 with catwalk's
rules applied (listed properties required by default, unlisted properties rejected by
default, ``nullable`` as a ``null`` type) and compiled with fastjsonschema, because one record
is validated on every request. Only when a value fails is the slower ``jsonschema`` library run,
to name every failing field in a readable message.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import fastjsonschema
import jsonschema

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
_MAX_MESSAGES = 10
_MAX_MESSAGE_LEN = 200
_MAX_VALUE_LEN = 80  # a value quoted in a message
_BOUNDS = {
    "minimum": "less than the minimum of",
    "maximum": "greater than the maximum of",
    "exclusiveMinimum": "less than or equal to the minimum of",
    "exclusiveMaximum": "greater than or equal to the maximum of",
}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


_CUSTOM_FORMATS: dict[str, Callable[[str], bool]] = {"uuid": _is_uuid}


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
        out["additionalProperties"] = to_json_schema(
            additional, f"{path}.additionalProperties", problems, annotations=annotations
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
        try:
            re.compile(pattern)
            out["pattern"] = pattern
        except (TypeError, re.error) as exc:
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


def _field(prefix: str, path: Any) -> str:
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_LEN else text[: _MAX_MESSAGE_LEN - 3] + "..."


def _json(value: Any) -> str:
    """``value`` as the user wrote it in JSON (``null``, ``true``, ``"text"``), shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):  # not a JSON value (a model's raw output, say)
        text = repr(value)
    return text if len(text) <= _MAX_VALUE_LEN else text[: _MAX_VALUE_LEN - 3] + "..."


def _types(expected: Any) -> str:
    names = expected if isinstance(expected, list) else [expected]
    return " or ".join(f"'{name}'" for name in names)


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _messages(error: jsonschema.ValidationError, prefix: str, seen: set[Any]) -> list[str]:
    """``<field>: <problem>`` lines for one jsonschema error (none for a repeated one)."""
    where = _field(prefix, error.path)
    if error.validator == "required" and isinstance(error.instance, dict):
        # jsonschema reports each missing property with the same instance and required list;
        # name them all with the first error at this place, in the schema's order.
        key = (where, id(error.schema))
        if key in seen:
            return []
        seen.add(key)
        required: Any = error.validator_value
        missing = [name for name in required if name not in error.instance]
        return [f"{where}: {_json(name)} is a required property" for name in missing]
    return [f"{where}: {_message(error)}"]


def _message(error: jsonschema.ValidationError) -> str:
    """The problem, with the user's values shown as JSON rather than as Python values."""
    kind, value = error.validator, error.instance
    limit: Any = error.validator_value
    shown = _json(value)
    if kind == "type":
        return f"{shown} is not of type {_types(limit)}"
    if kind == "additionalProperties" and isinstance(value, dict):
        listed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extras = [name for name in value if name not in listed]
        verb = "was" if len(extras) == 1 else "were"
        names = ", ".join(_json(name) for name in extras)
        return f"Additional properties are not allowed ({names} {verb} unexpected)"
    if kind == "enum":
        return f"{shown} is not one of {_json(limit)}"
    if kind == "const":
        return f"{_json(limit)} was expected, got {shown}"
    if kind in _BOUNDS:
        return f"{shown} is {_BOUNDS[kind]} {_json(limit)}"
    if kind == "multipleOf":
        return f"{shown} is not a multiple of {_json(limit)}"
    if kind in ("minLength", "maxLength", "minItems", "maxItems"):
        unit = "character" if kind.endswith("Length") else "item"
        if kind.startswith("min"):
            return f"{shown} is too short (at least {_count(limit, unit)})"
        return f"{shown} is too long (at most {_count(limit, unit)})"
    if kind == "pattern":
        return f"{shown} does not match the pattern {limit}"
    if kind == "format":
        return f"{shown} is not a valid {limit}"
    return error.message


def _path_order(error: jsonschema.ValidationError) -> list[tuple[int, int, str]]:
    # Indexes in numeric order, so that row 2 comes before row 10.
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.path]


def _fast_message(error: fastjsonschema.JsonSchemaValueException, prefix: str) -> str:
    """fastjsonschema's message in the ``<field>: <problem>`` form jsonschema's take."""
    name = str(error.name or "data")
    where = prefix + name[len("data") :] if name.startswith("data") else prefix
    if error.rule == "format" and isinstance(error.definition, dict):
        return f"{where}: {_json(error.value)} is not a valid {error.definition.get('format')}"
    problem = str(error.message)
    if problem.startswith(name):
        problem = problem[len(name) :].strip()
    return f"{where}: {problem}"


class SchemaValidator:
    """A compiled validator for one converted schema.

    ``errors`` is the hot path: a value that passes costs one call into fastjsonschema's
    generated code.
    """

    def __init__(self, json_schema: dict[str, Any]) -> None:
        self.json_schema = json_schema
        self._fast = fastjsonschema.compile(json_schema, formats=_CUSTOM_FORMATS)
        self._slow: jsonschema.Draft7Validator | None = None

    def errors(self, value: Any, prefix: str) -> list[str]:
        """Return ``[]`` when ``value`` is valid, else messages like ``input.a: ...``."""
        try:
            self._fast(value)
        except fastjsonschema.JsonSchemaValueException as exc:
            return self._explain(value, prefix, exc)
        return []

    def _explain(
        self, value: Any, prefix: str, fast_error: fastjsonschema.JsonSchemaValueException
    ) -> list[str]:
        if self._slow is None:
            self._slow = jsonschema.Draft7Validator(
                self.json_schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
            )
        found = sorted(self._slow.iter_errors(value), key=_path_order)
        seen: set[Any] = set()
        messages = [_shorten(m) for e in found for m in _messages(e, prefix, seen)]
        if not messages:
            # The two libraries disagree only on corner cases (a format one of them checks);
            # fastjsonschema's own message is still precise.
            messages = [_shorten(_fast_message(fast_error, prefix))]
        if len(messages) > _MAX_MESSAGES:
            extra = len(messages) - _MAX_MESSAGES
            messages = [*messages[:_MAX_MESSAGES], f"... and {extra} more problem(s)"]
        return messages
