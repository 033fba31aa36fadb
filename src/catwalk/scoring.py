"""Offline scoring (``catwalk predict``): JSON inputs through the model as ``POST /predict`` does.

Each input is what a request's ``input`` field holds. It is parsed like a request body
(integers of any size stay exact), checked against ``schema.input``, given to the model through
its io type, normalised to JSON values and checked against ``schema.output`` — the very calls
the server's :class:`~catwalk.server.envelope.Predictor` makes, without the envelope around
them. JSON lines are scored in order, and each line's outcome is either its output's JSON
bytes or the :class:`~catwalk.errors.CatwalkError` that explains why it has none.

A model with ``batching:`` in model.yml gets up to ``max_batch_size`` valid lines per call, as
the server batches concurrent requests (:func:`catwalk.model_batch.predict_many`:
``predict_batch``, or one DataFrame / joined array for ``predict``). A ``PANDAS_DATA_FRAME``
model gets up to :data:`FRAME_CHUNK` lines per call even without ``batching:``: its
``predict`` takes a DataFrame of any number of rows by contract (test-model sends it all of
its test data as one), and a frame per line costs about as much as a frame of thousands
(10,000 lines of the zoo's scikit-learn pipeline: 84.7 s row by row, 4.2 s in chunks, on a
loaded 2-CPU machine). A model scored one line per call runs its native pools (OpenMP, BLAS)
at one thread, unless ``OMP_NUM_THREADS`` is set. When a batched call fails as a whole (the
model raises, or its output cannot be split back), that chunk's lines are scored again one
by one, so the problem is reported on the line that has it; test-model's step 8 checks that
both paths give the same outputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from threadpoolctl import threadpool_limits

from catwalk.errors import CatwalkError, InvalidRequest, OutputError
from catwalk.json_codec import dumps, loads
from catwalk.model import LoadedModel
from catwalk.model_batch import predict_many

#: Lines per ``predict`` call of a DataFrame model without ``batching:``.
FRAME_CHUNK = 1000


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

    def check_input(self, data: Any) -> Any:
        problems = self.model.input_errors(data)
        if problems:
            raise InvalidRequest("; ".join(problems))
        return data

    def finish(self, output: Any) -> bytes:
        """A JSON output, checked against the output schema, as JSON bytes."""
        problems = self.model.output_errors(output)
        if problems:
            raise OutputError("; ".join(problems))
        try:
            return dumps(output)
        except (TypeError, ValueError) as exc:
            raise OutputError(f"output: cannot be written as JSON ({exc})") from None

    def score_bytes(self, text: bytes) -> bytes:
        """One input's JSON text in, its output's JSON bytes out (one ``predict`` call)."""
        return self.finish(self.model.predict(self.check_input(self.parse(text))))

    def score_lines(self, lines: Iterable[bytes]) -> Iterator[Scored]:
        """Every line's outcome, in order; a failing line does not stop the others."""
        numbered = enumerate(lines, 1)
        size = self.chunk_size()
        if size is None:
            # One row per call: a native pool's threads cost more to wake than one row's work
            # (LightGBM: 10,000 lines in 10.1 s with 2 OpenMP threads, 0.9 s with one). Who
            # sets OMP_NUM_THREADS (a large network, one heavy row at a time) keeps it.
            given = os.environ.get("OMP_NUM_THREADS", "").strip()
            with threadpool_limits(limits=None if given else 1):
                for number, line in numbered:
                    yield self._one(number, line)
            return
        while chunk := list(islice(numbered, size)):
            yield from self._chunk(chunk)

    def chunk_size(self) -> int | None:
        """Lines per model call (None: one ``predict`` per line)."""
        batching = self.model.spec.batching
        if batching is not None:
            return batching.max_batch_size
        return FRAME_CHUNK if self.model.is_dataframe else None

    def _one(self, number: int, line: bytes) -> Scored:
        try:
            return Scored(number, output=self.score_bytes(line))
        except CatwalkError as exc:
            return Scored(number, error=exc)

    def _chunk(self, chunk: list[tuple[int, bytes]]) -> Iterator[Scored]:
        """One batched model call for the chunk's valid lines; outcomes in line order."""
        outcome: dict[int, Scored] = {}
        valid: list[tuple[int, Any]] = []
        for number, line in chunk:
            try:
                valid.append((number, self.check_input(self.parse(line))))
            except CatwalkError as exc:
                outcome[number] = Scored(number, error=exc)
        if valid:
            try:
                outputs = predict_many(self.model, [data for _, data in valid])
            except CatwalkError:
                outputs = None  # the batch as a whole failed: find the line, one at a time
            for i, (number, data) in enumerate(valid):
                try:
                    if outputs is None:
                        output = self.model.predict(data)
                    elif isinstance(outputs[i], CatwalkError):
                        raise outputs[i]
                    else:
                        output = outputs[i]
                    outcome[number] = Scored(number, output=self.finish(output))
                except CatwalkError as exc:
                    outcome[number] = Scored(number, error=exc)
        for number, _ in chunk:
            yield outcome[number]
