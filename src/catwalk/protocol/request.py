"""An Open Inference Protocol inference request -> the records it carries, or a 400 naming why.

The body is the JSON inference request, followed by the binary data of the tensors that
carry ``parameters.binary_data_size`` when the ``Inference-Header-Content-Length`` header
gives the JSON part's length (the binary tensor data extension). Each input tensor must be
one of the model's (:mod:`catwalk.protocol.tensors`), of an accepted datatype (one that
converts losslessly), with shape ``[N]`` or ``[N, k]``, the same N for all; its elements
become one field of each of the N records. Requested outputs must exist. Everything else
about the records (ranges, enums, formats...) is the schema validator's job, after this.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import orjson

from catwalk.body_limits import too_deep
from catwalk.correlation import correlation_id_problem
from catwalk.errors import InvalidRequest
from catwalk.json_codec import kind, loads
from catwalk.protocol import binary
from catwalk.protocol.tensors import (
    ACCEPTS,
    DATATYPES,
    FLOAT_TYPES,
    INT_RANGES,
    INTEGER_TYPES,
    Side,
    Tensor,
)

REQUEST_FIELDS = ("id", "parameters", "inputs", "outputs", "model_name", "model_version")
_REQUEST_KEYS = frozenset(REQUEST_FIELDS)
_INPUT_KEYS = frozenset({"name", "shape", "datatype", "parameters", "data"})
_OUTPUT_KEYS = frozenset({"name", "parameters"})
_SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
_MISSING: Any = object()
_NOT_DIGITS = bytes(i for i in range(256) if not 0x30 <= i <= 0x39)
_NO_DATA = memoryview(b"")


@dataclass(frozen=True)
class Requested:
    """An output tensor to send back, and whether as binary data."""

    tensor: Tensor
    binary: bool


class InferRequest:
    """What a decoded request asks: its id (None: none given), records and outputs, and the
    model name and version the body names (KServe's client sends them)."""

    __slots__ = ("id", "model_name", "model_version", "outputs", "records")

    def __init__(
        self,
        request_id: str | None,
        records: list[Any],
        outputs: list[Requested],
        model_name: str | None = None,
        model_version: str | None = None,
    ) -> None:
        self.id = request_id
        self.records = records
        self.outputs = outputs
        self.model_name = model_name
        self.model_version = model_version


class Decoder:
    """Decodes the inference requests of one model (its input and output tensors)."""

    def __init__(self, inputs: Side, outputs: Side, *, max_depth: int) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.max_depth = max_depth
        self._input_names = ", ".join(t.name for t in inputs.tensors)
        self._output_names = ", ".join(t.name for t in outputs.tensors)
        self._all_json = [Requested(t, False) for t in outputs.tensors]
        self._all_binary = [Requested(t, True) for t in outputs.tensors]
        self._required = frozenset(t.name for t in inputs.tensors if t.required)
        # The fast path's tensors: [N] of the declared datatype, JSON data checked by kind.
        self._fast = {
            t.name: (
                t,
                t.datatype,
                _FAST[t.datatype if t.kind == "int" else t.kind],
                _Unpackers(t.datatype) if t.datatype in ("INT64", "FP64") else None,
            )
            for t in inputs.tensors
            if t.width is None and t.kind != "json"
        }

    def decode(self, body: bytes, header_length: str | None) -> InferRequest:
        """The request in ``body``; raises InvalidRequest (400) naming the first problem."""
        if header_length is None:
            header, data = body, _NO_DATA
        else:
            header, data = self._split(body, header_length)
        if too_deep(header, self.max_depth):
            raise InvalidRequest(
                f"body: nested more than {self.max_depth} levels deep (the limit, "
                "server.limits.max_depth)"
            )
        try:  # envelope.loads, its fast path inlined: orjson unless a long run of digits
            request = orjson.loads(header)
            if len(header.translate(None, _NOT_DIGITS)) >= 19:
                request = loads(header)
        except orjson.JSONDecodeError:
            request = loads(header)
        if type(request) is not dict:
            raise InvalidRequest(
                f"body: must be a JSON object (an inference request), got {kind(request)}"
            )
        if not _REQUEST_KEYS.issuperset(request):
            unknown = sorted(k for k in request if k not in _REQUEST_KEYS)
            raise InvalidRequest(
                f"{unknown[0]}: unknown field (allowed: {', '.join(REQUEST_FIELDS)})"
            )
        request_id = request.get("id")
        if request_id is not None:
            problem = correlation_id_problem(request_id)
            if problem is not None:
                raise InvalidRequest("id" + problem[len("correlation_id") :])
        binary_output = False
        if "parameters" in request:
            parameters = _parameters(request["parameters"], "parameters")
            binary_output = parameters.get("binary_data_output", False)
            if type(binary_output) is not bool:
                raise InvalidRequest(
                    "parameters.binary_data_output: must be true or false, got "
                    f"{kind(binary_output)}"
                )
        model_name = request.get("model_name")
        if model_name is not None and type(model_name) is not str:
            raise InvalidRequest(f"model_name: must be a string, got {kind(model_name)}")
        model_version = request.get("model_version")
        if model_version is not None and type(model_version) is not str:
            raise InvalidRequest(f"model_version: must be a string, got {kind(model_version)}")
        records = self._records(request.get("inputs", _MISSING), data)
        if "outputs" in request:
            outputs = self._requested(request["outputs"], binary_output)
        else:
            outputs = self._all_binary if binary_output else self._all_json
        return InferRequest(request_id, records, outputs, model_name, model_version)

    @staticmethod
    def _split(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
        if header_length is None:
            return body, memoryview(b"")
        header_length = header_length.strip()
        if not header_length.isdigit() or not header_length.isascii():
            raise InvalidRequest(
                f"Inference-Header-Content-Length: must be a number of bytes, got "
                f"{header_length[:20]!r}"
            )
        size = int(header_length)
        if size == 0:
            raise InvalidRequest(
                "Inference-Header-Content-Length: 0 (a raw binary request without the JSON "
                "inference header) is not supported: send the header"
            )
        if size > len(body):
            raise InvalidRequest(
                f"Inference-Header-Content-Length: {size} is more than the body's {len(body)} bytes"
            )
        view = memoryview(body)
        return bytes(view[:size]), view[size:]

    def _records(self, inputs: Any, data: memoryview) -> list[Any]:
        if inputs is _MISSING:
            raise InvalidRequest("inputs: required field missing")
        if type(inputs) is not list or not inputs:
            raise InvalidRequest(
                f"inputs: must be a non-empty array of tensors, got {_describe(inputs)}"
            )
        count: int | None = None
        columns: list[tuple[Tensor, list[Any]]] = []
        seen: set[str] = set()
        offset = 0
        for i, item in enumerate(inputs):
            tensor, rows, values, offset = self._input(i, item, data, offset, seen)
            if count is None:
                count = rows
            elif rows != count:
                raise InvalidRequest(
                    f"input tensor {tensor.name}: shape says {rows} records, another tensor "
                    f"{count} (every tensor's first dimension is the number of records)"
                )
            columns.append((tensor, values))
        if offset != len(data):
            raise InvalidRequest(
                f"binary data: {len(data) - offset} bytes after the last tensor's "
                f"(the binary_data_size parameters add up to {offset}, the body holds "
                f"{len(data)} after the JSON header)"
            )
        if not self._required.issubset(seen):
            missing = next(t for t in self.inputs.tensors if t.required and t.name not in seen)
            raise InvalidRequest(
                f"inputs: missing tensor {missing.name} (the model's inputs: {self._input_names})"
            )
        assert count is not None
        if not self.inputs.fields:
            return columns[0][1]
        if count == 1:
            return [{tensor.field: values[0] for tensor, values in columns}]
        records: list[dict[str, Any]] = [{} for _ in range(count)]
        for tensor, values in columns:
            field = tensor.field
            for record, value in zip(records, values, strict=True):
                record[field] = value  # type: ignore[index]
        return records

    def _input(
        self, i: int, item: Any, data: memoryview, offset: int, seen: set[str]
    ) -> tuple[Tensor, int, list[Any], int]:
        """One input tensor: ``(tensor, N, N values, offset after its binary data)``.

        The common case (a known tensor, JSON data of the declared datatype, shape ``[N]``)
        takes a few checks here; anything else goes through :meth:`_checked_input`, which
        names the problem.
        """
        if type(item) is dict and len(item) == 4:  # name, shape, datatype, data: JSON data
            name = item.get("name")
            fast = self._fast.get(name) if type(name) is str else None
            if fast is not None and name not in seen:
                tensor, datatype, check, unpack = fast
                shape = item.get("shape")
                if item.get("datatype") == datatype and type(shape) is list and len(shape) == 1:
                    rows = shape[0]
                    values = item.get("data")
                    if type(values) is list:
                        if len(values) == rows and values and check(values):
                            seen.add(tensor.name)
                            return tensor, rows, values, offset
                    elif unpack is not None and type(rows) is int and rows > 0:
                        # Binary data (tritonclient's default): {"binary_data_size": n} only.
                        parameters = item.get("parameters")
                        size = rows * unpack.size
                        if (
                            type(parameters) is dict
                            and len(parameters) == 1
                            and parameters.get("binary_data_size") == size
                            and offset + size <= len(data)
                        ):
                            values = list(unpack.unpack_from(data, offset, rows))
                            if datatype != "FP64" or all(map(math.isfinite, values)):
                                seen.add(tensor.name)
                                return tensor, rows, values, offset + size
        return self._checked_input(i, item, data, offset, seen)

    def _checked_input(
        self, i: int, item: Any, data: memoryview, offset: int, seen: set[str]
    ) -> tuple[Tensor, int, list[Any], int]:
        where = f"inputs[{i}]"
        if type(item) is not dict:
            raise InvalidRequest(f"{where}: must be an object (a tensor), got {kind(item)}")
        name = item.get("name")
        if type(name) is not str:
            raise InvalidRequest(f"{where}.name: must be a string, got {_describe(name)}")
        tensor = self.inputs.by_name.get(name)
        if tensor is None:
            raise InvalidRequest(
                f"{where}: unknown input tensor {name!r} (the model's inputs: {self._input_names})"
            )
        where = f"input tensor {name}"
        if name in seen:
            raise InvalidRequest(f"{where}: given twice")
        seen.add(name)
        if not _INPUT_KEYS.issuperset(item):
            unknown = sorted(k for k in item if k not in _INPUT_KEYS)
            raise InvalidRequest(
                f"{where}: unknown field {unknown[0]!r} (allowed: name, shape, datatype, "
                "parameters, data)"
            )
        datatype = item.get("datatype")
        if type(datatype) is not str or datatype not in DATATYPES:
            raise InvalidRequest(
                f"{where}: datatype must be one of {', '.join(DATATYPES)}, got "
                f"{_describe(datatype)}"
            )
        if datatype not in ACCEPTS[tensor.datatype]:
            raise InvalidRequest(
                f"{where}: datatype {datatype} does not convert losslessly to its "
                f"{tensor.datatype} (send one of {', '.join(sorted(ACCEPTS[tensor.datatype]))})"
            )
        rows = self._shape(where, item.get("shape", _MISSING), tensor)
        count = rows * (tensor.width or 1)
        parameters = _parameters(item.get("parameters", _MISSING), f"{where}: parameters")
        for key in _SHARED_MEMORY:
            if key in parameters:
                raise InvalidRequest(f"{where}: parameters.{key}: shared memory is not supported")
        size = parameters.get("binary_data_size", _MISSING)
        given = item.get("data", _MISSING)
        if size is not _MISSING:
            if given is not _MISSING:
                raise InvalidRequest(f"{where}: both data and parameters.binary_data_size given")
            if type(size) is not int or size < 0:
                raise InvalidRequest(
                    f"{where}: parameters.binary_data_size must be a non-negative integer"
                )
            if offset + size > len(data):
                raise InvalidRequest(
                    f"{where}: binary_data_size {size} runs past the end of the body "
                    f"({len(data) - offset} bytes of binary data left)"
                )
            try:
                values = binary.unpack(datatype, data[offset : offset + size], count)
            except ValueError as exc:
                raise InvalidRequest(f"{where}: {exc}") from None
            offset += size
            values = self._from_binary(where, tensor, datatype, values)
        elif given is _MISSING:
            raise InvalidRequest(
                f"{where}: no data (give data, or binary data with parameters.binary_data_size)"
            )
        else:
            values = self._from_json(where, tensor, datatype, _flatten(where, given, count))
        if tensor.width is not None:
            k = tensor.width
            values = [values[r * k : r * k + k] for r in range(rows)]
        return tensor, rows, values, offset

    @staticmethod
    def _shape(where: str, shape: Any, tensor: Tensor) -> int:
        expected = "[N]" if tensor.width is None else f"[N, {tensor.width}]"
        if shape is _MISSING:
            raise InvalidRequest(f"{where}: shape: required field missing")
        if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
            raise InvalidRequest(f"{where}: shape must be an array of non-negative integers")
        fits = len(shape) == 1 if tensor.width is None else shape[1:] == [tensor.width]
        if not fits:
            raise InvalidRequest(
                f"{where}: shape {shape} does not fit; expected {expected} for N records"
            )
        if shape[0] == 0:
            raise InvalidRequest(f"{where}: shape {shape}: no records (N must be at least 1)")
        rows: int = shape[0]
        return rows

    def _from_binary(self, where: str, tensor: Tensor, datatype: str, values: list[Any]) -> Any:
        if datatype in FLOAT_TYPES and not all(map(math.isfinite, values)):
            at = next(i for i, v in enumerate(values) if not math.isfinite(v))
            raise InvalidRequest(f"{where}: element {at} is {values[at]}, not a finite number")
        if datatype != "BYTES":
            return values
        if tensor.kind == "str":
            try:
                return [v.decode("utf-8") for v in values]
            except UnicodeDecodeError:
                at = next(i for i, v in enumerate(values) if not _utf8(v))
                raise InvalidRequest(f"{where}: element {at} is not UTF-8 text") from None
        return self._parse_json(where, values)

    def _from_json(self, where: str, tensor: Tensor, datatype: str, values: list[Any]) -> Any:
        if datatype in INTEGER_TYPES:
            # JSON has one number type: -696.0 is the integer -696 (as JSON Schema's
            # "integer" says), taken exactly; 0.5 or 1e300 is no INT64.
            low, high = INT_RANGES[datatype]
            values = [_integral(v) for v in values]
            for at, v in enumerate(values):
                if type(v) is not int or not low <= v <= high:
                    raise InvalidRequest(f"{where}: element {at}: {_element(v)} is not {datatype}")
        elif datatype in FLOAT_TYPES:
            for at, v in enumerate(values):
                if type(v) is not float and type(v) is not int:
                    raise InvalidRequest(f"{where}: element {at}: {_element(v)} is not a number")
        elif datatype == "BOOL":
            for at, v in enumerate(values):
                if type(v) is not bool:
                    raise InvalidRequest(f"{where}: element {at}: {_element(v)} is not a boolean")
        else:  # BYTES: strings in JSON
            for at, v in enumerate(values):
                if type(v) is not str:
                    raise InvalidRequest(f"{where}: element {at}: {_element(v)} is not a string")
            if tensor.kind == "json":
                return self._parse_json(where, values)
        return values

    def _parse_json(self, where: str, texts: list[Any]) -> list[Any]:
        out = []
        for at, text in enumerate(texts):
            raw = text.encode("utf-8") if type(text) is str else text
            if too_deep(raw, self.max_depth):
                raise InvalidRequest(
                    f"{where}: element {at}: nested more than {self.max_depth} levels deep"
                )
            try:
                out.append(loads(raw))
            except InvalidRequest as exc:
                raise InvalidRequest(
                    f"{where}: element {at}: not JSON text ({exc.message.removeprefix('body: ')})"
                ) from None
        return out

    def _requested(self, outputs: Any, binary_output: bool) -> list[Requested]:
        if outputs is _MISSING:
            return self._all_binary if binary_output else self._all_json
        if type(outputs) is not list:
            raise InvalidRequest(f"outputs: must be an array, got {kind(outputs)}")
        requested: list[Requested] = []
        seen: set[str] = set()
        for i, item in enumerate(outputs):
            where = f"outputs[{i}]"
            if type(item) is not dict:
                raise InvalidRequest(f"{where}: must be an object, got {kind(item)}")
            if not _OUTPUT_KEYS.issuperset(item):
                unknown = sorted(k for k in item if k not in _OUTPUT_KEYS)
                raise InvalidRequest(
                    f"{where}: unknown field {unknown[0]!r} (allowed: name, parameters)"
                )
            name = item.get("name")
            if type(name) is not str:
                raise InvalidRequest(f"{where}.name: must be a string, got {_describe(name)}")
            tensor = self.outputs.by_name.get(name)
            if tensor is None:
                raise InvalidRequest(
                    f"{where}: unknown output tensor {name!r} (the model's outputs: "
                    f"{self._output_names})"
                )
            if name in seen:
                raise InvalidRequest(f"output tensor {name}: requested twice")
            seen.add(name)
            parameters = _parameters(item.get("parameters", _MISSING), f"{where}.parameters")
            for key in (*_SHARED_MEMORY, "classification"):
                if key in parameters and parameters[key] not in (0, False):
                    raise InvalidRequest(f"output tensor {name}: parameters.{key} is not supported")
            as_binary = parameters.get("binary_data", binary_output)
            if type(as_binary) is not bool:
                raise InvalidRequest(
                    f"output tensor {name}: parameters.binary_data must be true or false"
                )
            requested.append(Requested(tensor, as_binary))
        return requested


class _Unpackers:
    """``struct`` unpackers of N elements of a datatype, made once per N (a few N are used).

    Looks like one ``struct.Struct`` to the fast path: ``size`` is per element, and
    ``unpack_from`` takes the N from the buffer it is given.
    """

    __slots__ = ("code", "size", "structs")

    def __init__(self, datatype: str) -> None:
        self.code = binary.CODES[datatype]
        self.size = struct.calcsize("<" + self.code)
        self.structs: dict[int, struct.Struct] = {}

    def unpack_from(self, data: memoryview, offset: int, rows: int) -> tuple[Any, ...]:
        found = self.structs.get(rows)
        if found is None:
            found = struct.Struct(f"<{rows}{self.code}")
            if len(self.structs) < 64:
                self.structs[rows] = found
        return found.unpack_from(data, offset)


def _ints_within(low: int, high: int) -> Any:
    def check(values: list[Any]) -> bool:
        for v in values:  # noqa: SIM110 - a loop is faster than all() over a generator
            if type(v) is not int or not low <= v <= high:
                return False
        return True

    return check


def _integral(value: Any) -> Any:
    """A float with no fractional part as the int it equals; any other value as it is."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _all_numbers(values: list[Any]) -> bool:
    for v in values:  # noqa: SIM110
        if type(v) is not float and type(v) is not int:
            return False
    return True


def _all_of(kind: type) -> Any:
    def check(values: list[Any]) -> bool:
        for v in values:  # noqa: SIM110
            if type(v) is not kind:
                return False
        return True

    return check


# The fast path's check of JSON data, by datatype (integers) or kind: True means valid as it
# is; anything else takes the checked path, which names the problem.
_FAST: dict[str, Any] = {
    "INT64": _ints_within(*INT_RANGES["INT64"]),
    "INT32": _ints_within(*INT_RANGES["INT32"]),
    "float": _all_numbers,
    "bool": _all_of(bool),
    "str": _all_of(str),
}


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is _MISSING:
        return {}
    if type(value) is not dict:
        raise InvalidRequest(f"{where}: must be an object, got {kind(value)}")
    return value


def _flatten(where: str, data: Any, count: int) -> list[Any]:
    """The elements of ``data`` (flat or nested arrays, row-major); exactly ``count``."""
    if type(data) is not list:
        raise InvalidRequest(f"{where}: data must be an array, got {kind(data)}")
    flat = data
    if any(type(v) is list for v in data):
        flat = []
        stack = [iter(data)]
        while stack:
            for v in stack[-1]:
                if type(v) is list:
                    stack.append(iter(v))
                    break
                flat.append(v)
                if len(flat) > count:
                    break
            else:
                stack.pop()
                continue
            if len(flat) > count:
                break
    if len(flat) != count:
        more = "more than" if len(flat) > count else ""
        raise InvalidRequest(
            f"{where}: data holds {more} {len(flat)} elements, the shape says {count}".replace(
                "  ", " "
            )
        )
    return flat


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _describe(value: Any) -> str:
    return repr(value)[:40] if type(value) is str else kind(value)


def _element(value: Any) -> str:
    text = repr(value) if type(value) in (int, float, bool, str) else kind(value)
    return text if len(text) <= 40 else text[:37] + "..."
