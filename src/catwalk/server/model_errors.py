"""What an API client is told when the model raises: short, and naming a null that caused it.

A library's exception text can be a page long: scikit-learn's "Input X contains NaN" comes
with a paragraph of advice and two URLs, written for the model's author, not for the client
of the API. The client's 500 carries the first line of the message (at most
:data:`MAX_CLIENT_MESSAGE` characters); the whole message and the traceback go to the server
log under the same correlation id. When the input holds nulls (fields the schema lets be
null), the message names them: a null that reaches the model as None or NaN is the usual
cause, and it is the model.yml's promise (``nullable``) that the model does not keep.
"""

from __future__ import annotations

from typing import Any

from catwalk.errors import ModelError

MAX_CLIENT_MESSAGE = 300


def for_client(exc: ModelError, data: Any) -> ModelError:
    """``exc`` with a message fit for the API client; the full text stays in its details."""
    first = exc.message.strip().splitlines()[0] if exc.message.strip() else exc.message
    if len(first) > MAX_CLIENT_MESSAGE:
        first = first[: MAX_CLIENT_MESSAGE - 3] + "..."
    nulls = null_fields(data)
    if nulls:
        named = ", ".join(f"input.{name}" for name in nulls)
        first += (
            f" ({named} {'is' if len(nulls) == 1 else 'are'} null: model.yml allows null there "
            "(nullable), but the model does not take it: handle it in predict, or make the "
            "field required and not nullable)"
        )
    if first == exc.message:
        return exc
    details = f"{exc.message}\n{exc.details}" if exc.message != first else exc.details
    return ModelError(first, details)


def null_fields(data: Any) -> list[str]:
    """The top-level fields holding null in a record, or in any of a list of records."""
    records = [data] if isinstance(data, dict) else data if isinstance(data, list) else []
    found: dict[str, None] = {}
    for record in records:
        if isinstance(record, dict):
            found.update((str(key), None) for key, value in record.items() if value is None)
    return list(found)
