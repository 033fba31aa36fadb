"""``model.yml``: reading it into a frozen, validated :class:`ModelSpec`.

Every problem in the file is collected in one pass and reported together as
``model.yml: <field path>: <problem>``. Unknown keys are errors, because a misspelt key
(``contacts:``, ``io-type:``) would otherwise silently change nothing. So are keys written
twice in one mapping (see :class:`UniqueKeyLoader`), which YAML itself would resolve silently
by keeping the last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from catwalk.errors import SpecError
from catwalk.schema import SchemaValidator, to_json_schema
from catwalk.spec_runtime import Runtime, parse_runtime

SPEC_FILE = "model.yml"
MODEL_FILE = "model.py"
REQUIREMENTS_FILE = "requirements.txt"

IoType = Literal["PYTHON_DICT", "PANDAS_DATA_FRAME"]
IO_TYPES: tuple[IoType, ...] = ("PYTHON_DICT", "PANDAS_DATA_FRAME")

_TOP_KEYS = {"name", "version", "contact", "schema", "io_type", "description", "batching"}
_TOP_KEYS |= {"system_packages", "weights"}  # the image's keys: see "The image" below
# ---- runtime: (threads per worker, warm-up; catwalk.spec_runtime) ----
_TOP_KEYS.add("runtime")
# ---- end runtime: ----
_BATCHING_KEYS = {"max_batch_size", "max_latency_ms"}
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_LATENCY_MS = 10.0
# How a batch of requests becomes one call of the model (see ModelSpec.batch_kind).
BatchKind = Literal["predict_batch", "frame", "concat"]
_CONTACT_KEYS = {"name", "email"}
_SCHEMA_KEYS = {"input", "output"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class Contact:
    name: str
    email: str


@dataclass(frozen=True)
class IoSchema:
    """One side (input or output) of a model's schema."""

    openapi: dict[str, Any]
    validator: SchemaValidator = field(repr=False, compare=False)

    @property
    def is_batch(self) -> bool:
        """True for an array-of-objects schema (the model takes or returns a batch)."""
        return self.openapi.get("type") == "array"

    def errors(self, value: Any, prefix: str) -> list[str]:
        return self.validator.errors(value, prefix)

    def rows_errors(self, rows: list[Any], prefix: str) -> list[str]:
        """Problems of each row of a list checked against this one-record schema."""
        return self.validator.rows_errors(rows, prefix)


@dataclass(frozen=True)
class Batching:
    """``batching:`` in model.yml: up to ``max_batch_size`` requests per model call, the first
    of them waiting at most ``max_latency_ms`` for the others."""

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS

    def info(self) -> dict[str, Any]:
        return {"max_batch_size": self.max_batch_size, "max_latency_ms": self.max_latency_ms}


@dataclass(frozen=True)
class ModelSpec:
    """The validated content of a model folder's ``model.yml``."""

    path: Path
    name: str
    version: str
    contact: Contact
    input: IoSchema
    output: IoSchema
    io_type: IoType = "PYTHON_DICT"
    description: str | None = None
    batching: Batching | None = None
    #: The image's keys (see "The image" below): Debian packages, and large files' patterns.
    system_packages: tuple[str, ...] = ()
    weights: tuple[str, ...] = ()
    runtime: Runtime = field(default_factory=Runtime)  # model.yml's runtime: (spec_runtime)

    @property
    def batch_kind(self) -> BatchKind:
        """How batched requests reach the model.

        ``predict_batch``: a PYTHON_DICT model with an object input gets the inputs as a list
        (``Model.predict_batch(Xs) -> list``). ``frame``: a PANDAS_DATA_FRAME model gets the
        records of all requests as one DataFrame. ``concat``: a PYTHON_DICT model with an array
        input gets the requests' arrays joined into one. The last two call ``predict`` and
        split its rows back by request.
        """
        if self.io_type == "PANDAS_DATA_FRAME":
            return "frame"
        return "concat" if self.input.is_batch else "predict_batch"

    def info(self) -> dict[str, Any]:
        """The spec as served by ``GET /info``: model.yml's content, defaults filled in."""
        info: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "contact": {"name": self.contact.name, "email": self.contact.email},
            "schema": {"input": self.input.openapi, "output": self.output.openapi},
            "io_type": self.io_type,
        }
        if self.description is not None:
            info["description"] = self.description
        if self.batching is not None:
            info["batching"] = self.batching.info()
        return info


def existing_folder(path: str | Path) -> Path:
    """The absolute path of ``-m``'s folder, or SpecError when it is missing or not a folder."""
    folder = Path(path).expanduser().resolve()
    if not folder.exists():
        raise SpecError([f"{path}: model folder does not exist"])
    if not folder.is_dir():
        raise SpecError([f"{path}: not a folder (give the folder that holds model.yml)"])
    return folder


def check_model_folder(path: str | Path) -> Path:
    """Return the folder's absolute path, or raise SpecError if it or a required file is missing."""
    folder = existing_folder(path)
    missing = [name for name in (SPEC_FILE, MODEL_FILE) if not (folder / name).is_file()]
    if missing:
        raise SpecError([f"{folder / name}: required file missing" for name in missing])
    return folder


def load_spec(path: str | Path) -> ModelSpec:
    """Read and validate ``model.yml`` from a model folder."""
    folder = check_model_folder(path)
    spec_file = folder / SPEC_FILE
    try:
        text = spec_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{SPEC_FILE}: cannot be read ({exc})"]) from None
    try:
        data, duplicates = load_yaml(text)
    except yaml.YAMLError as exc:
        raise SpecError([f"{SPEC_FILE}: not valid YAML: {_yaml_problem(exc)}"]) from None
    found = [f"{SPEC_FILE}: {d}" for d in duplicates]
    try:
        spec = parse_spec(data, folder, raw=_raw_numbers(text))
    except SpecError as exc:
        raise SpecError(found + exc.problems) from None
    if found:
        raise SpecError(found)
    return spec


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that notes every key written twice in one mapping.

    Plain YAML keeps the last of two equal keys without a word, so ``name: A`` followed by
    ``name: B`` would silently become ``B``. Each duplicate is recorded in ``found`` as
    ``(line, "<key path>: <problem>")``; a merge key (``<<: *anchor``) overridden by the
    mapping's own key is not a duplicate.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.found: list[tuple[int, str]] = []  # (line, problem)
        self._paths: dict[int, str] = {}

    def construct_document(self, node: yaml.Node) -> Any:
        self._paths = {}
        self._note_paths(node, "")
        return super().construct_document(node)

    def _note_paths(self, node: yaml.Node, path: str) -> None:
        if id(node) in self._paths:  # an alias: the node was reached by another path
            return
        if isinstance(node, yaml.MappingNode):
            self._paths[id(node)] = path
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    self._note_paths(value, f"{path}.{key.value}" if path else str(key.value))
        elif isinstance(node, yaml.SequenceNode):
            self._paths[id(node)] = path
            for i, item in enumerate(node.value):
                self._note_paths(item, f"{path}[{i}]")

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self._check_duplicates(node)
        return super().construct_mapping(node, deep=deep)

    def _check_duplicates(self, node: yaml.MappingNode) -> None:
        prefix = self._paths.get(id(node), "")
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the constructor reports it
                continue
            if first is None:
                seen[key] = line
            else:
                path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
                problem = f"duplicate key at line {line} (first set at line {first}); keep one"
                self.found.append((line, f"{path}: {problem}"))


def load_yaml(text: str) -> tuple[Any, list[str]]:
    """Parse YAML safely; return the data and a problem for every duplicate key.

    Used for both ``model.yml`` and ``application.yml``. Raises ``yaml.YAMLError`` when the
    text is not YAML at all.
    """
    loader = UniqueKeyLoader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    return data, [problem for _, problem in sorted(loader.found)]


def parse_spec(data: Any, folder: Path, *, raw: dict[str, str] | None = None) -> ModelSpec:
    """Validate already-parsed ``model.yml`` content; raise SpecError listing every problem.

    ``raw`` maps field paths (``version``, ``contact.name``) of unquoted numbers to the text
    the user wrote, so that a message can quote ``1.10`` rather than YAML's ``1.1``.
    """
    problems: list[str] = []
    if not isinstance(data, dict):
        raise SpecError([f"{SPEC_FILE}: must be a mapping with name, version, contact and schema"])
    raw = raw or {}

    _unknown(data, _TOP_KEYS, "", problems)
    name = _text(data, "name", "name", problems, raw)
    version = _text(data, "version", "version", problems, raw)

    # A missing section is one problem; a present one (even empty) has its fields checked.
    contact = _section(data, "contact", problems)
    contact_name = email = ""
    if contact is not None:
        _unknown(contact, _CONTACT_KEYS, "contact.", problems)
        contact_name = _text(contact, "name", "contact.name", problems, raw)
        email = _text(contact, "email", "contact.email", problems, raw)
        if email and not _EMAIL.match(email):
            problems.append(f"contact.email: {email!r} is not an email address")

    io_type = data.get("io_type", "PYTHON_DICT")
    if io_type not in IO_TYPES:
        problems.append(f"io_type: must be one of {', '.join(IO_TYPES)}, got {io_type!r}")
        io_type = "PYTHON_DICT"

    description = data.get("description")
    if description is not None and not isinstance(description, str):
        problems.append("description: must be a string")

    batching = _batching(data, problems) if "batching" in data else None
    system_packages = _names(data, "system_packages", _DEBIAN_PACKAGE, _PACKAGE_HINT, problems)
    weights = _names(data, "weights", _WEIGHTS_PATTERN, _WEIGHTS_HINT, problems)
    runtime = parse_runtime(data.get("runtime"), problems)  # runtime: (catwalk.spec_runtime)

    schema = _section(data, "schema", problems)
    sides: dict[str, IoSchema | None] = {"input": None, "output": None}
    if schema is not None:
        _unknown(schema, _SCHEMA_KEYS, "schema.", problems)
        sides = {side: _io_schema(schema, side, problems) for side in sides}

    if problems:
        raise SpecError([f"{SPEC_FILE}: {p}" for p in problems])
    assert sides["input"] is not None and sides["output"] is not None
    return ModelSpec(
        path=folder,
        name=name,
        version=version,
        contact=Contact(name=contact_name, email=email),
        input=sides["input"],
        output=sides["output"],
        io_type=io_type,
        description=description,
        batching=batching,
        system_packages=system_packages,
        weights=weights,
        runtime=runtime,
    )


# --- The image: system_packages and weights ------------------------------------------------
# ``system_packages``: Debian packages the model's image installs (its own layer, first), as
# Cog's and Truss's do. Names follow Debian policy (lower case, digits, ``+ - .``, two
# characters at least), optionally ``=version``: they go into an ``apt-get install`` line, so
# nothing else is accepted. ``weights``: files (glob patterns relative to the model folder)
# that get a layer of their own between the requirements and the code (see
# catwalk.image.context).

_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$")
_PACKAGE_HINT = (
    "is not a Debian package name (lower-case letters, digits, '+', '-', '.', at least two "
    "characters, optionally =version: e.g. libgomp1, libpq5=15.10-0+deb12u1)"
)
_WEIGHTS_PATTERN = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$))[^\0\n]+$")
_WEIGHTS_HINT = "is not a path or glob pattern inside the model folder (e.g. weights/*.bin)"


def _names(
    data: dict[str, Any], key: str, pattern: re.Pattern[str], hint: str, problems: list[str]
) -> tuple[str, ...]:
    """A list of strings in model.yml, each matching ``pattern``; one problem per bad item."""
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(f"{key}: must be a list of strings, got {type(value).__name__}")
        return ()
    good = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not pattern.match(item.strip()):
            problems.append(f"{key}[{index}]: {item!r} {hint}")
        else:
            good.append(item.strip())
    return tuple(dict.fromkeys(good))


# --- end of the image's keys ---------------------------------------------------------------


def _batching(data: dict[str, Any], problems: list[str]) -> Batching | None:
    section = data["batching"]
    if not isinstance(section, dict):
        problems.append(
            "batching: must be a mapping with max_batch_size and max_latency_ms, "
            f"got {type(section).__name__}"
        )
        return None
    _unknown(section, _BATCHING_KEYS, "batching.", problems)
    size = batch_size_problem(section.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE))
    latency = latency_problem(section.get("max_latency_ms", DEFAULT_MAX_LATENCY_MS))
    for key, problem in (("max_batch_size", size), ("max_latency_ms", latency)):
        if problem:
            problems.append(f"batching.{key}: {problem}")
    if size or latency:
        return None
    return Batching(
        int(section.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE)),
        float(section.get("max_latency_ms", DEFAULT_MAX_LATENCY_MS)),
    )


MAX_BATCH_SIZE = 4096
MAX_LATENCY_MS = 10_000


def batch_size_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a max_batch_size (None when it can); shared with application.yml."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a whole number >= 1, got {value!r}"
    if not 1 <= value <= MAX_BATCH_SIZE:
        return f"must be between 1 and {MAX_BATCH_SIZE}, got {value}"
    return None


def latency_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a max_latency_ms (None when it can); shared with application.yml."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return f"must be a number of milliseconds > 0, got {value!r}"
    if not 0 < value <= MAX_LATENCY_MS:
        return f"must be > 0 and at most {MAX_LATENCY_MS} (ms), got {value}"
    return None


def _io_schema(schema: dict[str, Any], side: str, problems: list[str]) -> IoSchema | None:
    path = f"schema.{side}"
    if side not in schema:
        problems.append(f"{path}: required field missing")
        return None
    openapi = schema[side]
    before = len(problems)
    converted = to_json_schema(openapi, path, problems)
    if len(problems) > before:
        return None
    typ = openapi.get("type")
    items = openapi.get("items", {})
    if not (typ == "object" or (typ == "array" and items.get("type") == "object")):
        problems.append(
            f"{path}: must be an object (one record) or an array of objects (a batch), "
            f"got type {typ!r}" + (f" of {items.get('type')!r}" if typ == "array" else "")
        )
        return None
    return IoSchema(openapi=openapi, validator=SchemaValidator(converted))


def _section(data: dict[str, Any], key: str, problems: list[str]) -> dict[str, Any] | None:
    """The mapping under ``key``, or None (and a problem) when it is missing or not a mapping."""
    value = data.get(key)
    if value is None:
        problems.append(f"{key}: required field missing")
        return None
    if not isinstance(value, dict):
        problems.append(f"{key}: must be a mapping, got {type(value).__name__}")
        return None
    return value


def _text(
    data: dict[str, Any], key: str, path: str, problems: list[str], raw: dict[str, str]
) -> str:
    if key not in data or data[key] is None:
        problems.append(f"{path}: required field missing")
        return ""
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            problems.append(_quote_hint(key, path, value, raw.get(path, str(value))))
        else:
            problems.append(f"{path}: must be a string, got {type(value).__name__}")
        return ""
    if not value.strip():
        problems.append(f"{path}: must not be empty")
    return value


def _quote_hint(key: str, path: str, value: float, written: str) -> str:
    """Tell the user to quote an unquoted number, explaining what YAML did with this one."""
    if written != str(value):  # 1.10 -> 1.1, 1_0 -> 10, 0o10 -> 8
        why = f"YAML reads an unquoted {written} as the number {value}"
    elif isinstance(value, float):
        why = f"YAML reads an unquoted {written} as a number (and 1.10 would become 1.1)"
    else:
        why = f"YAML reads an unquoted {written} as a number, not text"
    return f'{path}: must be a string; write it in quotes ({key}: "{written}"), because {why}'


def _unknown(data: dict[str, Any], allowed: set[str], prefix: str, problems: list[str]) -> None:
    for key in data:
        if key not in allowed:
            problems.append(f"{prefix}{key}: unknown field (allowed: {', '.join(sorted(allowed))})")


def _raw_numbers(text: str) -> dict[str, str]:
    """Field paths of the unquoted numbers among the top-level and ``contact`` scalars."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    numbers = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
    found: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            if isinstance(value, yaml.ScalarNode) and value.tag in numbers:
                found[prefix + str(key.value)] = str(value.value)
            elif not prefix and key.value == "contact":
                walk(value, "contact.")

    walk(root, "")
    return found


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(problem)
