"""The envelope without HTTP: Predictor, correlation ids, and catwalk's per-request cost."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import orjson
import pytest

from catwalk.correlation import new_correlation_id
from catwalk.errors import InvalidRequest, ModelError, ModelMismatch, OutputError
from catwalk.model import LoadedModel
from catwalk.server.envelope import PredictFailed, Predictor
from catwalk.server.environ import error_body

RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}
RNG_BODY = orjson.dumps({"input": RNG_INPUT})
Load = Callable[[str], LoadedModel]


def test_handle_returns_the_correlation_id_and_the_body(load: Load) -> None:
    correlation_id, body = Predictor(load("rng")).handle(RNG_BODY)
    answer = orjson.loads(body)
    assert answer["correlation_id"] == correlation_id
    assert answer["output"] == {"score": 0.9417154046806644}


@pytest.mark.parametrize(
    ("body", "error", "given_id"),
    [
        (b"nope", InvalidRequest, False),
        (b'{"correlation_id": "c", "input": {}}', InvalidRequest, True),
        (
            b'{"correlation_id": "c", "model": {"name": "x", "version": "y"}, "input": {}}',
            ModelMismatch,
            True,
        ),
    ],
)
def test_failures_carry_the_error_and_the_correlation_id(
    load: Load, body: bytes, error: type[Exception], given_id: bool
) -> None:
    with pytest.raises(PredictFailed) as caught:
        Predictor(load("rng")).handle(body)
    assert isinstance(caught.value.error, error)
    if given_id:
        assert caught.value.correlation_id == "c"
    else:
        assert uuid.UUID(caught.value.correlation_id).version == 4


def test_model_and_output_errors_keep_their_types(load: Load) -> None:
    with pytest.raises(PredictFailed) as caught:
        Predictor(load("raises")).handle(b'{"input": {"x": 1, "label": "boom"}}')
    assert isinstance(caught.value.error, ModelError)
    assert "Traceback" in caught.value.error.details
    with pytest.raises(PredictFailed) as caught:
        Predictor(load("bad_output")).handle(b'{"input": {"x": 1, "label": "wrong_type"}}')
    assert isinstance(caught.value.error, OutputError)
    assert caught.value.error.status == 500


def test_error_body_shape() -> None:
    assert orjson.loads(error_body("c", "m")) == {"correlation_id": "c", "output": {"message": "m"}}


def test_correlation_ids_are_uuid4_strings_and_unique() -> None:
    ids = [new_correlation_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:200]:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == value


def test_correlation_ids_survive_a_model_seeding_the_global_random(load: Load) -> None:
    predictor = Predictor(load("rng"))  # the RNG model seeds a random.Random of its own...
    import random

    random.seed(0)  # ... but a model may well seed the global one
    first = new_correlation_id()
    random.seed(0)
    assert new_correlation_id() != first
    assert predictor.handle(RNG_BODY)[0] != predictor.handle(RNG_BODY)[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_workers_do_not_repeat_correlation_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a gunicorn worker forked from the master
        os.write(write, new_correlation_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    assert child != new_correlation_id()
