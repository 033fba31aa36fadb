"""Prometheus metrics (``GET /metrics``), correct across every gunicorn worker.

Metrics (all prefixed ``catwalk_``):

- ``requests_total{endpoint,status}``: counter of answered requests; ``endpoint`` is one of
  the server's routes (``/predict``, ``/status``, ``/ready``, ``/info``, ``/metrics``,
  ``/openapi.json``, ``/docs``, the Open Inference Protocol's operations ``/v2``,
  ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models``, ``/v2/models/ready``,
  ``/v2/models/infer``) or ``other``, so a client cannot create series at will;
- ``request_duration_seconds{endpoint}``: histogram of the time the app took per request;
- ``predict_duration_seconds``: histogram of the model's own time (its ``predict`` call);
- ``in_flight_requests``: gauge of the requests being answered now;
- ``batch_size``: histogram of the number of requests in each batch given to the model, for a
  model with ``batching:`` (:meth:`Metrics.time_batches` wraps the batcher's model call);
- ``model_info{name,version}``: gauge, always 1.

Production mode runs several gunicorn worker processes: each writes its numbers to files in
a private folder of the run folder (prometheus-client's multiprocess mode,
``PROMETHEUS_MULTIPROC_DIR``, set by :mod:`catwalk.server.worker.wsgi` before anything imports
prometheus-client), and ``/metrics`` — whichever worker answers it — sums them all. When a
worker exits (restarted after a timeout, ``max_requests``...), gunicorn's ``child_exit`` hook
(:func:`worker_exited`, in the master) drops its in-flight gauge and merges its files into
one archive file per kind (``counter_archive.db``...), so that its counts stay in the sums,
exact, while the folder keeps a bounded number of files and a scrape its speed however often
workers are replaced. A scrape reads the folder under a shared lock, the merge writes under
an exclusive one: no scrape sees a worker's counts twice or not at all. In debug mode (one
process) the numbers live in memory.

Errors nginx answers itself (413 body too large, 502, 504) never reach the app: they are not
in these counters but in nginx's log (see docs/serving.md).
"""

from __future__ import annotations

import fcntl
import glob
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from catwalk.protocol import paths
from catwalk.server.environ import StartResponse, WsgiApp
from catwalk.spec import ModelSpec

METRICS_PATH = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ENDPOINTS = {
    "/predict": "/predict",
    "/status": "/status",
    "/ready": "/ready",
    "/info": "/info",
    "/metrics": "/metrics",
    "/openapi.json": "/openapi.json",
    "/docs": "/docs",
}
# Seconds: from a fast model's half a millisecond to a slow one's minute.
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def keep_process_id() -> None:
    """Have prometheus-client's multiprocess values read this process's id from memory.

    Each increment checks it (a forked child must write files of its own): a system call per
    increment, seven per request. The id is kept instead, and renewed in a forked child. Call
    before any metric is made, with ``PROMETHEUS_MULTIPROC_DIR`` set (the gunicorn master).
    """
    values.ValueClass = values.MultiProcessValue(process_identifier=ProcessId())  # type: ignore[no-untyped-call]


class ProcessId:
    """``os.getpid()`` without a system call: kept, and renewed after a fork."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        os.register_at_fork(after_in_child=self._renew)

    def _renew(self) -> None:
        self.pid = os.getpid()

    def __call__(self) -> int:
        return self.pid


def endpoint_of(path: str) -> str:
    """The bounded ``endpoint`` label of a request path."""
    found = ENDPOINTS.get(path)
    if found is not None:
        return found
    if paths.is_v2(path):
        return paths.endpoint_label(path)
    return "/docs" if path.startswith("/docs/") else "other"


class Metrics:
    """The metrics of one served model, and their exposition."""

    def __init__(self, spec: ModelSpec) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        # Multiprocess mode: values go to files whatever the registry; a private registry
        # otherwise, so that several apps in one process (tests) do not collide.
        self.registry = CollectorRegistry()
        registry = None if self.multiprocess_dir else self.registry
        self.requests = Counter(
            "catwalk_requests_total",
            "Requests answered by the app, by endpoint and HTTP status.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "catwalk_request_duration_seconds",
            "Time the app took to answer a request, by endpoint.",
            ["endpoint"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.predict_duration = Histogram(
            "catwalk_predict_duration_seconds",
            "Time spent in the model's predict (with catwalk's conversion of its output).",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "catwalk_in_flight_requests",
            "Requests being answered now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.batch_size = Histogram(
            "catwalk_batch_size",
            "Number of requests (records) in each batch given to the model.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.info = info = Gauge(
            "catwalk_model_info",
            "The model served (always 1).",
            ["name", "version"],
            registry=registry,
            multiprocess_mode="max",
        )
        info.labels(spec.name, spec.version).set(1)
        # Label children looked up once: the hot path skips prometheus-client's label lock.
        self._counted: dict[tuple[str, str], Any] = {}
        labels = {*ENDPOINTS.values(), *paths.LABELS}
        self._timed = {name: self.request_duration.labels(name) for name in labels}
        self._timed["other"] = self.request_duration.labels("other")

    def observe_request(self, endpoint: str, status: str, seconds: float) -> None:
        child = self._counted.get((endpoint, status))
        if child is None:
            child = self._counted[(endpoint, status)] = self.requests.labels(endpoint, status)
        child.inc()
        self._timed[endpoint].observe(seconds)

    def time_predict(self, predict: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``predict`` wrapped so that each call's duration is observed."""
        return timed(predict, self.predict_duration.observe)

    def time_batches(
        self, run: Callable[[list[Any]], list[Any]]
    ) -> Callable[[list[Any]], list[Any]]:
        """A batcher's ``run`` (one model call per batch) timed, its batch sizes observed."""
        observe_time = self.predict_duration.observe
        observe_size = self.batch_size.observe

        def timed(inputs: list[Any]) -> list[Any]:
            observe_size(len(inputs))
            started = perf_counter()
            try:
                return run(inputs)
            finally:
                observe_time(perf_counter() - started)

        return timed

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric, summed over all worker processes."""
        if self.multiprocess_dir:
            registry = CollectorRegistry()
            _multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            with _locked(self.multiprocess_dir, fcntl.LOCK_SH):
                return generate_latest(registry)
        return generate_latest(self.registry)


def timed(predict: Callable[[Any], Any], observe: Callable[[float], Any]) -> Callable[[Any], Any]:
    """``predict`` wrapped so that each call's duration (seconds) goes to ``observe``."""

    def timed_predict(data: Any) -> Any:
        started = perf_counter()
        try:
            return predict(data)
        finally:
            observe(perf_counter() - started)

    return timed_predict


def answer_metrics(
    metrics: Metrics, environ: dict[str, Any], start_response: StartResponse
) -> Iterable[bytes]:
    """The WSGI answer of ``GET /metrics``."""
    body = metrics.exposition()
    start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Cache-Control", "no-store")])
    return [body]


class CountRequests:
    """WSGI middleware: counts and times every request and keeps the in-flight gauge."""

    def __init__(self, app: WsgiApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._inc = metrics.in_flight.inc
        self._dec = metrics.in_flight.dec

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = perf_counter()
        status = "500"  # an exception that escapes the app becomes gunicorn's 500

        def counted_start_response(line: str, headers: Any, exc_info: Any = None) -> Any:
            nonlocal status
            status = line[:3]
            return start_response(line, headers, exc_info)

        self._inc()
        try:
            return self.app(environ, counted_start_response)
        finally:
            self._dec()
            self.metrics.observe_request(
                endpoint_of(environ.get("PATH_INFO", "")), status, perf_counter() - started
            )


def worker_exited(pid: int) -> None:
    """gunicorn's ``child_exit`` hook: drop a dead worker's live gauges and merge the rest of
    its files into the archive (its counts are kept, exact)."""
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        _multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
        archive_files(folder, pid)


def archive_files(folder: str, pid: int) -> None:
    """Merge the files of the dead process ``pid`` into ``<kind>_archive.db``, one per kind
    (``counter``, ``histogram``, ``gauge_max``...), and remove them."""
    with _locked(folder, fcntl.LOCK_EX):
        by_kind: dict[str, list[str]] = {}
        for path in glob.glob(os.path.join(folder, f"*_{pid}.db")):
            kind = os.path.basename(path)[: -len(f"_{pid}.db")]
            by_kind.setdefault(kind, []).append(path)
        for kind, dead in sorted(by_kind.items()):
            archive = os.path.join(folder, f"{kind}_{ARCHIVE}.db")
            sources = [archive, *dead] if os.path.exists(archive) else dead
            # accumulate=False: bucket counts stay per bucket, as the files hold them.
            merged = _multiprocess.MultiProcessCollector.merge(sources, accumulate=False)  # type: ignore[no-untyped-call]
            partial = archive + ".partial"  # not *.db: no scrape reads it half written
            values = MmapedDict(partial)  # type: ignore[no-untyped-call]
            try:
                for metric in merged:
                    for sample in metric.samples:
                        key = mmap_key(
                            metric.name,
                            sample.name,
                            list(sample.labels),
                            list(sample.labels.values()),
                            metric.documentation,
                        )
                        values.write_value(key, sample.value, sample.timestamp or 0.0)  # type: ignore[no-untyped-call]
            finally:
                values.close()  # type: ignore[no-untyped-call]
            os.replace(partial, archive)
            for path in dead:
                os.remove(path)


# The "pid" of the merged files of exited workers (their file names end in _archive.db).
ARCHIVE = "archive"


@contextmanager
def _locked(folder: str, how: int) -> Iterator[None]:
    """The metrics folder's lock: shared for a scrape, exclusive for a merge."""
    fd = os.open(os.path.join(folder, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, how)
        yield
    finally:
        os.close(fd)  # releases the lock
