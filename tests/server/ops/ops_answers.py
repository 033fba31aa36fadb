"""Helpers of the ops tests: reading a /metrics answer, checking a JSON error answer."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def error(response: Any, status: int) -> str:
    assert response.status_code == status, response.data
    assert response.content_type == "application/json"
    body = response.get_json()
    assert set(body) == {"correlation_id", "output"}
    message: str = body["output"]["message"]
    return message
