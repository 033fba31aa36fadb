"""Prometheus metrics: ``GET /metrics`` in one process (test client), and the merge of a dead
worker's multiprocess files into one archive."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from ops_answers import RNG_INPUT, samples


def test_metrics_count_requests_and_time_the_model(
    make_client: Callable[..., FlaskClient],
) -> None:
    client = make_client("rng")
    for _ in range(3):
        assert client.post("/predict", json={"input": RNG_INPUT}).status_code == 200
    assert client.post("/predict", json={"input": {}}).status_code == 400
    assert client.get("/nope/../x").status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    found = samples(response.get_data(as_text=True))
    requests_total = "catwalk_requests_total"
    assert found[(requests_total, (("endpoint", "/predict"), ("status", "200")))] == 3
    assert found[(requests_total, (("endpoint", "/predict"), ("status", "400")))] == 1
    assert found[(requests_total, (("endpoint", "other"), ("status", "404")))] == 1
    duration = "catwalk_request_duration_seconds_count"
    assert found[(duration, (("endpoint", "/predict"),))] == 4
    assert found[("catwalk_predict_duration_seconds_count", ())] == 3  # 400s never reach it
    assert found[("catwalk_model_info", (("name", "RNGModel"), ("version", "0.0.1")))] == 1
    assert found[("catwalk_in_flight_requests", ())] == 1  # this very /metrics request
    assert found[("catwalk_batch_size_count", ())] == 0


def test_metrics_can_be_turned_off(make_client: Callable[..., FlaskClient]) -> None:
    client = make_client("rng", metrics=False)
    assert client.get("/metrics").status_code == 404
    assert client.post("/predict", json={"input": RNG_INPUT}).status_code == 200


def test_a_batching_model_reports_its_batch_sizes(
    make_client: Callable[..., FlaskClient],
) -> None:
    client = make_client("dataframe")  # model.yml has batching:
    record = {"x1": 1.0, "x2": 2.0, "x3": 3.0}
    for _ in range(3):
        assert client.post("/predict", json={"input": record}).status_code == 200
    found = samples(client.get("/metrics").get_data(as_text=True))
    assert found[("catwalk_batch_size_count", ())] == 3  # one request at a time: batches of 1
    assert found[("catwalk_batch_size_bucket", (("le", "1.0"),))] == 3
    assert found[("catwalk_predict_duration_seconds_count", ())] == 3


def test_a_dead_workers_metric_files_are_merged_exactly_into_one_archive(tmp_path: Path) -> None:
    from prometheus_client.mmap_dict import MmapedDict, mmap_key
    from prometheus_client.multiprocess import MultiProcessCollector

    from catwalk.server.ops.metrics import archive_files

    def write(name: str, values: dict[tuple[str, str, tuple[tuple[str, str], ...]], float]) -> None:
        data = MmapedDict(str(tmp_path / name))
        for (metric, sample, labels), value in values.items():
            key = mmap_key(metric, sample, [k for k, _ in labels], [v for _, v in labels], "h")
            data.write_value(key, value, 0.0)
        data.close()

    ok = (("endpoint", "/predict"), ("status", "200"))
    bucket = (("endpoint", "/predict"), ("le", "0.001"))
    for pid, n in ((101, 3.0), (102, 4.0), (103, 5.0)):  # three workers, 103 still alive
        write(f"counter_{pid}.db", {("catwalk_requests", "catwalk_requests_total", ok): n})
        write(
            f"histogram_{pid}.db",
            {
                ("catwalk_request_duration_seconds", "catwalk_request_duration_seconds_bucket",
                 bucket): n,
                ("catwalk_request_duration_seconds", "catwalk_request_duration_seconds_sum",
                 (("endpoint", "/predict"),)): n / 1000,
            },
        )  # fmt: skip
        write(f"gauge_max_{pid}.db", {("catwalk_model_info", "catwalk_model_info", ()): 1.0})

    def totals() -> dict[str, float]:
        found: dict[str, float] = {}
        for metric in MultiProcessCollector.merge(sorted(map(str, tmp_path.glob("*.db")))):
            for sample in metric.samples:
                found[sample.name] = found.get(sample.name, 0.0) + sample.value
        return found

    before = totals()
    archive_files(str(tmp_path), 101)
    archive_files(str(tmp_path), 102)
    archive_files(str(tmp_path), 999)  # no files: nothing to do
    assert totals() == before
    assert before["catwalk_requests_total"] == 12.0
    assert before["catwalk_request_duration_seconds_count"] == 12.0
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [
        "counter_103.db", "counter_archive.db", "gauge_max_103.db", "gauge_max_archive.db",
        "histogram_103.db", "histogram_archive.db",
    ]  # fmt: skip
