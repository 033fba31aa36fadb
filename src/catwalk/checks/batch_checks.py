"""test-model step 8, for a model with ``batching:``: batched answers equal single ones.

The test inputs are sent through the batched path (:func:`catwalk.model_batch.predict_many`,
in batches of ``max_batch_size``) and through ``predict`` one request at a time; every output
must be the same (within the tolerance), or batching would change the model's answers.
A DataFrame or array-input model's test set is one request: here each of its records is a
request of its own, so that the batches really join several requests.
"""

from __future__ import annotations

from typing import Any

from catwalk.checks.report import Report
from catwalk.errors import CatwalkError, ModelError
from catwalk.model import LoadedModel
from catwalk.model_batch import predict_many
from catwalk.normalize import first_difference

STEP = "8. batching"
_MAX_SHOWN = 5


def requests_of(model: LoadedModel, inputs: list[Any], batch: bool) -> list[Any]:
    """The test data as separate requests: one record each when the test set is one batch."""
    if not batch:
        return list(inputs)
    records = inputs[0]
    if model.spec.batch_kind == "concat":
        return [[record] for record in records]
    return list(records)


def check_batching(
    model: LoadedModel, inputs: list[Any], batch: bool, report: Report, tolerance: float
) -> None:
    """Step 8: ``predict_many`` in batches gives what ``predict`` gives request by request."""
    batching = model.spec.batching
    if batching is None:
        return
    requests = requests_of(model, inputs, batch)
    size = batching.max_batch_size
    how = "predict_batch" if model.spec.batch_kind == "predict_batch" else "predict on joined rows"
    problems: list[str] = []
    for start in range(0, len(requests), size):
        chunk = requests[start : start + size]
        try:
            singles = [model.predict(x) for x in chunk]
            batched = predict_many(model, chunk)
        except ModelError as exc:
            report.fail(STEP, f"requests {start}-{start + len(chunk) - 1}: {exc}\n{exc.details}")
            return
        except CatwalkError as exc:
            report.fail(STEP, f"requests {start}-{start + len(chunk) - 1}: {exc}")
            return
        for i, (single, got) in enumerate(zip(singles, batched, strict=True), start):
            if isinstance(got, CatwalkError):
                problems.append(f"request {i}: {got}")
                continue
            diff = first_difference(single, got, tolerance)
            if diff:
                problems.append(f"request {i}: batched output differs from predict's: {diff}")
    if problems:
        shown = problems[:_MAX_SHOWN]
        if len(problems) > _MAX_SHOWN:
            shown.append(f"... and more ({len(problems)} problems in all)")
        report.fail(STEP, "\n".join(shown))
        return
    report.ok(
        STEP,
        f"{len(requests)} request(s) in batches of up to {size} ({how}) equal predict's "
        f"answers one by one",
    )
