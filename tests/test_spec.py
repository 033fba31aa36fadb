"""model.yml -> ModelSpec: valid specs, and every problem named by file, field and cause."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from catwalk.errors import SpecError
from catwalk.spec import ModelSpec, load_spec, load_yaml, parse_spec


def valid() -> dict[str, Any]:
    return {
        "name": "Echo",
        "version": "1.0",
        "contact": {"name": "Tester", "email": "tester@example.com"},
        "schema": {
            "input": {"type": "object", "properties": {"x": {"type": "number"}}},
            "output": {"type": "object", "properties": {"y": {"type": "number"}}},
        },
    }


def problems(data: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data, Path("/nowhere"))
    return info.value.problems


def schema_problems(side: str, schema: Any) -> list[str]:
    data = valid()
    data["schema"][side] = schema
    return problems(data)


def test_valid_spec(model_dir: Callable[[str], Path]) -> None:
    spec = load_spec(model_dir("echo"))
    assert isinstance(spec, ModelSpec)
    assert (spec.name, spec.version) == ("Echo", "1.0")
    assert spec.contact.email == "tester@example.com"
    assert spec.io_type == "PYTHON_DICT"
    assert spec.path == model_dir("echo")
    assert not spec.input.is_batch
    assert spec.info()["schema"]["input"]["properties"]["x"] == {"type": "number"}
    assert spec.input.errors({"x": 1, "label": "a"}, "input") == []


def test_load_spec_accepts_a_relative_path(
    model_dir: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(model_dir("echo"))
    assert load_spec(".").path == model_dir("echo")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("name",), "model.yml: name: required field missing"),
        (("version",), "model.yml: version: required field missing"),
        (("contact",), "model.yml: contact: required field missing"),
        (("contact", "name"), "model.yml: contact.name: required field missing"),
        (("contact", "email"), "model.yml: contact.email: required field missing"),
        (("schema",), "model.yml: schema: required field missing"),
        (("schema", "input"), "model.yml: schema.input: required field missing"),
        (("schema", "output"), "model.yml: schema.output: required field missing"),
    ],
)
def test_each_missing_field_is_named(path: tuple[str, ...], message: str) -> None:
    data = valid()
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    assert problems(data) == [message]


def test_missing_email_fixture(model_dir: Callable[[str], Path]) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(model_dir("missing_email"))
    assert str(info.value) == "model.yml: contact.email: required field missing"


def test_all_problems_in_one_pass() -> None:
    data = valid()
    del data["name"]
    data["version"] = ""
    data["contact"]["email"] = "not-an-address"
    data["io_type"] = "NUMPY"
    data["schema"]["output"] = {"type": "object", "properties": {"y": {"type": "float"}}}
    found = problems(data)
    assert found == [
        "model.yml: name: required field missing",
        "model.yml: version: must not be empty",
        "model.yml: contact.email: 'not-an-address' is not an email address",
        "model.yml: io_type: must be one of PYTHON_DICT, PANDAS_DATA_FRAME, got 'NUMPY'",
        "model.yml: schema.output.properties.y.type: unknown type 'float' "
        "(expected one of string, boolean, integer, number, array, object)",
    ]


def test_unquoted_version_tells_to_quote_it_as_written(model_dir: Callable[[str], Path]) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(model_dir("unquoted_version"))
    (message,) = info.value.problems
    assert message.startswith("model.yml: version: must be a string")
    # YAML turned 1.10 into 1.1; the message quotes what the user wrote.
    assert 'version: "1.10"' in message


@pytest.mark.parametrize(
    ("written", "because"),
    [
        ("2", "YAML reads an unquoted 2 as a number, not text"),
        ("1.5", "YAML reads an unquoted 1.5 as a number (and 1.10 would become 1.1)"),
        ("1.10", "YAML reads an unquoted 1.10 as the number 1.1"),
        ("1_000", "YAML reads an unquoted 1_000 as the number 1000"),
    ],
)
def test_unquoted_number_hint_fits_the_value(tmp_path: Path, written: str, because: str) -> None:
    (tmp_path / "model.py").write_text("")
    text = yaml.safe_dump(valid(), sort_keys=False).replace("version: '1.0'", f"version: {written}")
    (tmp_path / "model.yml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert info.value.problems == [
        f'model.yml: version: must be a string; write it in quotes (version: "{written}"), '
        f"because {because}"
    ]


def test_unquoted_integer_name_is_an_error() -> None:
    data = valid()
    data["name"] = 7
    assert problems(data)[0].startswith("model.yml: name: must be a string; write it in quotes")


def test_non_string_version() -> None:
    data = valid()
    data["version"] = ["1"]
    assert problems(data) == ["model.yml: version: must be a string, got list"]


@pytest.mark.parametrize(
    ("where", "key", "message"),
    [
        ((), "contacts", "model.yml: contacts: unknown field"),
        (("contact",), "phone", "model.yml: contact.phone: unknown field"),
        (("schema",), "inputs", "model.yml: schema.inputs: unknown field"),
    ],
)
def test_unknown_keys_are_rejected(where: tuple[str, ...], key: str, message: str) -> None:
    data = valid()
    section = data
    for part in where:
        section = section[part]
    section[key] = "x"
    (found,) = problems(data)
    assert found.startswith(message)


def test_io_type() -> None:
    data = valid()
    data["io_type"] = "PANDAS_DATA_FRAME"
    assert parse_spec(data, Path("/m")).io_type == "PANDAS_DATA_FRAME"
    data["io_type"] = "pandas"
    assert problems(data) == [
        "model.yml: io_type: must be one of PYTHON_DICT, PANDAS_DATA_FRAME, got 'pandas'"
    ]


def test_description_and_info() -> None:
    data = valid()
    data["description"] = "echoes"
    spec = parse_spec(data, Path("/m"))
    assert spec.info()["description"] == "echoes"
    assert spec.info()["io_type"] == "PYTHON_DICT"
    data["description"] = 3
    assert problems(data) == ["model.yml: description: must be a string"]


def test_not_a_mapping() -> None:
    assert problems(["name"]) == [
        "model.yml: must be a mapping with name, version, contact and schema"
    ]


def test_bad_yaml(model_dir: Callable[[str], Path]) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(model_dir("bad_yaml"))
    (message,) = info.value.problems
    assert message.startswith("model.yml: not valid YAML: ")
    assert "line 4" in message


def test_bad_schema_fixture(model_dir: Callable[[str], Path]) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(model_dir("bad_schema"))
    assert info.value.problems[0].startswith(
        "model.yml: schema.input.properties.x.type: unknown type 'float'"
    )


def test_missing_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="model folder does not exist"):
        load_spec(tmp_path / "absent")
    (tmp_path / "model.yml").write_text(yaml.safe_dump(valid()))
    with pytest.raises(SpecError, match=r"model\.py: required file missing"):
        load_spec(tmp_path)
    with pytest.raises(SpecError, match="not a folder"):
        load_spec(tmp_path / "model.yml")


def test_batch_schema() -> None:
    data = valid()
    data["schema"]["input"] = {"type": "array", "items": data["schema"]["input"]}
    spec = parse_spec(data, Path("/m"))
    assert spec.input.is_batch
    assert spec.input.errors([{"x": 1}, {"x": "a"}], "input") == [
        """input[1].x: "a" is not of type 'number'"""
    ]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"type": "object", "properties": {"x": {"type": "int"}}},
            "schema.input.properties.x.type: unknown type 'int'",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "array"}}},
            "schema.input.properties.x.items: required for an array schema",
        ),
        ({"type": "string"}, "schema.input: must be an object (one record) or an array of objects"),
        (
            {"type": "array", "items": {"type": "number"}},
            "schema.input: must be an object (one record) or an array of objects (a batch), "
            "got type 'array' of 'number'",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "number", "minimun": 0}}},
            "schema.input.properties.x: unknown schema keyword 'minimun'",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "number", "minimum": "0"}}},
            "schema.input.properties.x.minimum: must be a number",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "string", "minLength": -1}}},
            "schema.input.properties.x.minLength: must be a non-negative integer",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "string", "enum": []}}},
            "schema.input.properties.x.enum: must be a non-empty list",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "number", "exclusiveMinimum": 0}}},
            "schema.input.properties.x.exclusiveMinimum: must be true or false (OpenAPI 3.0)",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "string", "pattern": "("}}},
            "schema.input.properties.x.pattern: not a valid regular expression",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["y"]},
            "schema.input.required: 'y' is not a listed property",
        ),
        ({"type": "object", "nullable": "yes"}, "schema.input.nullable: must be true or false"),
        (
            {"type": "object", "properties": {"x": {"type": "number", "multipleOf": 0}}},
            "schema.input.properties.x.multipleOf: must be a number greater than 0",
        ),
        (
            {"type": "object", "properties": {1: {"type": "number"}}},
            "schema.input.properties: property name 1 must be a string (quote it)",
        ),
        ("object", "schema.input: must be a mapping (a schema object), got str"),
    ],
)
def test_malformed_schema(schema: Any, message: str) -> None:
    (found,) = schema_problems("input", schema)
    assert found.startswith("model.yml: " + message)


def test_annotations_and_extensions_are_allowed() -> None:
    data = valid()
    data["schema"]["input"]["properties"]["x"].update(
        {"description": "an x", "example": 1.5, "x-unit": "cm", "format": "double"}
    )
    assert parse_spec(data, Path("/m")).input.errors({"x": 2}, "input") == []


def test_spec_is_frozen(model_dir: Callable[[str], Path]) -> None:
    spec = load_spec(model_dir("echo"))
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


def test_empty_sections_have_their_fields_checked() -> None:
    data = valid()
    data["contact"] = {}
    data["schema"] = {}
    assert problems(data) == [
        "model.yml: contact.name: required field missing",
        "model.yml: contact.email: required field missing",
        "model.yml: schema.input: required field missing",
        "model.yml: schema.output: required field missing",
    ]


def test_sections_must_be_mappings() -> None:
    data = valid()
    data["contact"] = "tester@example.com"
    data["schema"] = None
    assert problems(data) == [
        "model.yml: contact: must be a mapping, got str",
        "model.yml: schema: required field missing",
    ]


def test_empty_schema_side() -> None:
    data = valid()
    data["schema"]["output"] = None
    assert problems(data) == [
        "model.yml: schema.output: must be a mapping (a schema object), got null"
    ]


def test_duplicate_keys_are_errors_naming_path_and_line(
    model_copy: Callable[[str], Path],
) -> None:
    folder = model_copy("echo")
    text = (folder / "model.yml").read_text()
    text = text.replace("name: Echo\n", "name: A\nname: B\n", 1)
    text = text.replace("  email: tester@example.com\n", "  email: a@b.c\n  email: d@e.f\n", 1)
    (folder / "model.yml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(folder)
    lines = text.splitlines()
    name_line = lines.index("name: B") + 1
    email_line = lines.index("  email: d@e.f") + 1
    assert info.value.problems == [
        f"model.yml: name: duplicate key at line {name_line} "
        f"(first set at line {name_line - 1}); keep one",
        f"model.yml: contact.email: duplicate key at line {email_line} "
        f"(first set at line {email_line - 1}); keep one",
    ]


def test_duplicate_keys_are_reported_with_the_other_problems(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text("")
    data = valid()
    del data["contact"]["email"]
    text = yaml.safe_dump(data, sort_keys=False)
    text = text.replace("    properties:\n      x:", "    properties:\n      x: {}\n      x:", 1)
    (tmp_path / "model.yml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    found = info.value.problems
    assert len(found) == 2
    assert found[0].startswith("model.yml: schema.input.properties.x: duplicate key at line ")
    assert found[1] == "model.yml: contact.email: required field missing"


def test_a_merge_key_overridden_is_not_a_duplicate() -> None:
    data, duplicates = load_yaml("base: &b {a: 1, c: 3}\nm:\n  <<: *b\n  a: 2\n")
    assert duplicates == []
    assert data["m"] == {"a": 2, "c": 3}


def test_duplicate_keys_in_flow_mappings_and_lists() -> None:
    _, duplicates = load_yaml("l:\n  - {a: 1, a: 2}\n")
    assert duplicates == ["l[0].a: duplicate key at line 2 (first set at line 2); keep one"]


# ------------------------------------------------------------------ batching ----
def test_batching_is_read_with_defaults_for_what_is_left_out() -> None:
    data = valid()
    data["batching"] = {"max_batch_size": 16, "max_latency_ms": 2.5}
    spec = parse_spec(data, Path("/nowhere"))
    assert spec.batching is not None
    assert (spec.batching.max_batch_size, spec.batching.max_latency_ms) == (16, 2.5)
    assert spec.info()["batching"] == {"max_batch_size": 16, "max_latency_ms": 2.5}
    data["batching"] = {}
    spec = parse_spec(data, Path("/nowhere"))
    assert spec.batching is not None and spec.batching.max_batch_size == 32
    assert parse_spec(valid(), Path("/nowhere")).batching is None
    assert "batching" not in parse_spec(valid(), Path("/nowhere")).info()


@pytest.mark.parametrize(
    ("batching", "expected"),
    [
        ({"max_batch_size": 0}, "model.yml: batching.max_batch_size: must be between 1 and"),
        ({"max_batch_size": 2.5}, "model.yml: batching.max_batch_size: must be a whole number"),
        ({"max_batch_size": True}, "model.yml: batching.max_batch_size: must be a whole number"),
        ({"max_batch_size": "8"}, "model.yml: batching.max_batch_size: must be a whole number"),
        ({"max_latency_ms": 0}, "model.yml: batching.max_latency_ms: must be > 0"),
        ({"max_latency_ms": -1}, "model.yml: batching.max_latency_ms: must be > 0"),
        ({"max_latency_ms": "5ms"}, "model.yml: batching.max_latency_ms: must be a number"),
        ({"max_size": 8}, "model.yml: batching.max_size: unknown field (allowed: max_batch_size"),
        ([8], "model.yml: batching: must be a mapping with max_batch_size and max_latency_ms"),
        (None, "model.yml: batching: must be a mapping"),
    ],
)
def test_bad_batching_is_a_spec_error_naming_the_field(batching: Any, expected: str) -> None:
    data = valid()
    data["batching"] = batching
    found = problems(data)
    assert any(p.startswith(expected) for p in found), found


def test_batch_kind_follows_io_type_and_input_schema() -> None:
    data = valid()
    assert parse_spec(data, Path("/nowhere")).batch_kind == "predict_batch"
    data["io_type"] = "PANDAS_DATA_FRAME"
    assert parse_spec(data, Path("/nowhere")).batch_kind == "frame"
    data = valid()
    data["schema"]["input"] = {"type": "array", "items": data["schema"]["input"]}
    assert parse_spec(data, Path("/nowhere")).batch_kind == "concat"
