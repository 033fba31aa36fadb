"""Several requests' inputs as one call of the user's model, and its output split back.

How the inputs are joined depends on :attr:`~catwalk.spec.ModelSpec.batch_kind`:

- ``predict_batch`` (PYTHON_DICT, object input): ``Model.predict_batch(Xs)`` gets the list of
  inputs and must return a list with one output per input, in order;
- ``frame`` (PANDAS_DATA_FRAME): the records of every request (one request may bring several)
  become one DataFrame for ``predict``; its result's rows are split back by request;
- ``concat`` (PYTHON_DICT, array input): the requests' arrays are joined into one list for
  ``predict``; its result must have one row per input row and is split back the same way.

:func:`predict_many` returns one entry per input: the output as JSON values, or the
:class:`~catwalk.errors.OutputError` of that input alone (its output cannot be written as
JSON). A model that raises, or an output that cannot be split back (not a list, wrong
length), fails the whole call, because no output can then be trusted to be its request's.
"""

from __future__ import annotations

from typing import Any

from catwalk.errors import CatwalkError, OutputError
from catwalk.model import LoadedModel
from catwalk.normalize import to_json

Result = Any  # a JSON value, or the CatwalkError of that one input


def predict_many(model: LoadedModel, inputs: list[Any]) -> list[Result]:
    """Run the model once on ``inputs`` (validated JSON inputs); see the module docstring."""
    kind = model.spec.batch_kind
    if kind == "predict_batch":
        outputs = model.call(model.instance.predict_batch, inputs, "predict_batch")
        if not isinstance(outputs, list | tuple):
            raise OutputError(
                f"predict_batch must return a list (one output per input), got "
                f"{type(outputs).__name__}"
            )
        if len(outputs) != len(inputs):
            raise OutputError(
                f"predict_batch returned {len(outputs)} outputs for {len(inputs)} inputs "
                f"(one per input, in order)"
            )
        return [_normalised(output) for output in outputs]
    return _predict_rows(model, inputs, kind == "frame")


def _predict_rows(model: LoadedModel, inputs: list[Any], frame: bool) -> list[Result]:
    """``frame``/``concat``: join the rows of every input, predict once, split the rows back."""
    rows: list[Any] = []
    counts: list[int] = []
    for data in inputs:
        records = [data] if isinstance(data, dict) else data
        rows += records
        counts.append(len(records))
    if frame:
        import pandas as pd

        joined: Any = pd.DataFrame(rows)
    else:
        joined = rows
    result = model.call(model.instance.predict, joined)
    sliced = _slicer(result, len(rows))
    answers: list[Result] = []
    start = 0
    for data, count in zip(inputs, counts, strict=True):
        part = sliced(start, start + count)
        start += count
        try:
            value = to_json(part)
        except OutputError as exc:
            answers.append(exc)
            continue
        # One record in (a dict, not a list of one): its one output row, as predict gives it.
        answers.append(value[0] if isinstance(data, dict) and isinstance(value, list) else value)
    return answers


def _slicer(result: Any, rows: int) -> Any:
    """A function ``(start, stop) -> rows of result``; OutputError if result has no rows."""
    if hasattr(result, "iloc"):  # a DataFrame or a Series
        found = len(result)
        slicer = lambda a, b: result.iloc[a:b]  # noqa: E731
    elif isinstance(result, list | tuple) or hasattr(result, "shape"):
        found = len(result)
        slicer = lambda a, b: result[a:b]  # noqa: E731
    else:
        raise OutputError(
            f"predict must return one row per input row (a list, an array or a DataFrame) "
            f"to be batched, got {type(result).__name__}"
        )
    if found != rows:
        raise OutputError(
            f"predict returned {found} rows for the {rows} input rows of a batch "
            f"(one output row per input row, in order)"
        )
    return slicer


def _normalised(output: Any) -> Result:
    try:
        return to_json(output)
    except CatwalkError as exc:
        return exc


def predict_each(model: LoadedModel, inputs: list[Any]) -> list[Result]:
    """:func:`predict_many`, never failing the inputs together for one of them.

    When the call fails as a whole (the model raises, or its output cannot be split back) and
    there were several inputs, each is given to the model again in a batch of its own, so
    that only the input that causes the failure gets it (one bad request does not fail its
    batch-mates); the entry of an input that still fails is its CatwalkError.
    """
    try:
        return predict_many(model, inputs)
    except CatwalkError as exc:
        if len(inputs) == 1:
            return [exc]
    results: list[Result] = []
    for data in inputs:
        try:
            results += predict_many(model, [data])
        except CatwalkError as exc:
            results.append(exc)
    return results
