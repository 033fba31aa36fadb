"""Offline scoring (``catwalk predict``): JSON inputs through the model as ``POST /predict`` does.

Each input is what a request's ``input`` field holds. It is parsed like a request body
(integers of any size stay exact), checked against ``schema.input``, given to the model through
its io type, normalised to JSON values and checked against ``schema.output`` — the very calls
the server's :class:`~catwalk.server.envelope.Predictor` makes, without the envelope around
them. JSON lines are scored one line at a time, in order, and each line's outcome is either its
output's JSON bytes or the :class:`~catwalk.errors.CatwalkError` that explains why it has none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from catwalk.errors import CatwalkError, InvalidRequest, OutputError
from catwalk.model import LoadedModel
from catwalk.server.envelope import dumps, loads


@dataclass(frozen=True)
class Scored:
    """The outcome of one input line: ``output`` (JSON bytes) or ``error``."""

    line: int  # 1-based, as editors and `sed -n Np` count
    output: bytes | None = None
    error: CatwalkError | None = None


class Scorer:
    """Scores inputs for one loaded model, validating both sides."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model

    def parse(self, text: bytes) -> Any:
        """One input as JSON; InvalidRequest when it is not."""
        text = text.rstrip(b"\r\n")  # a line's end is not part of it (error positions)
        if not text.strip():
            raise InvalidRequest("empty line (expected one JSON input per line)")
        try:
            return loads(text)
        except InvalidRequest as exc:
            raise InvalidRequest(exc.message.removeprefix("body: ")) from None

    def score(self, data: Any) -> Any:
        """The model's JSON output for one parsed input; raises CatwalkError."""
        problems = self.model.input_errors(data)
        if problems:
            raise InvalidRequest("; ".join(problems))
        output = self.model.predict(data)
        problems = self.model.output_errors(output)
        if problems:
            raise OutputError("; ".join(problems))
        return output

    def score_bytes(self, text: bytes) -> bytes:
        """One input's JSON text in, its output's JSON bytes out."""
        output = self.score(self.parse(text))
        try:
            return dumps(output)
        except (TypeError, ValueError) as exc:
            raise OutputError(f"output: cannot be written as JSON ({exc})") from None

    def score_lines(self, lines: Iterable[bytes]) -> Iterator[Scored]:
        """Every line's outcome, in order; a failing line does not stop the others."""
        for number, line in enumerate(lines, 1):
            try:
                yield Scored(number, output=self.score_bytes(line))
            except CatwalkError as exc:
                yield Scored(number, error=exc)
