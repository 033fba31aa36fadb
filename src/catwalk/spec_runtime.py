"""``runtime:`` in model.yml: how the server runs this model (threads, warm-up).

```yaml
runtime:
  threads_per_worker: 1   # threads of the model's native pools (OpenMP, BLAS, torch) per
                          # server worker; default: the usable CPUs / the workers
  warmup_examples: 10     # test-data examples each worker predicts before it takes traffic
                          # (0: no warm-up)
```

A deployment's ``server.threads_per_worker`` (application.yml, ``SERVER_THREADS_PER_WORKER``)
overrides the model's ``threads_per_worker``: the platform team knows the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RUNTIME_KEYS = {"threads_per_worker", "warmup_examples"}
DEFAULT_WARMUP_EXAMPLES = 10
MAX_THREADS = 1024
MAX_WARMUP_EXAMPLES = 10_000


@dataclass(frozen=True)
class Runtime:
    """The model's ``runtime:`` section, defaults filled in."""

    threads_per_worker: int | None = None  # None: the server sizes it from the CPUs
    warmup_examples: int = DEFAULT_WARMUP_EXAMPLES

    def info(self) -> dict[str, Any]:
        return {
            "threads_per_worker": self.threads_per_worker,
            "warmup_examples": self.warmup_examples,
        }


def parse_runtime(section: Any, problems: list[str]) -> Runtime:
    """Validate ``runtime:`` (its problems are appended, each naming the key)."""
    if section is None:
        return Runtime()
    if not isinstance(section, dict):
        problems.append(
            "runtime: must be a mapping with threads_per_worker and/or warmup_examples, "
            f"got {type(section).__name__}"
        )
        return Runtime()
    for key in section:
        if key not in RUNTIME_KEYS:
            problems.append(
                f"runtime.{key}: unknown key (allowed: {', '.join(sorted(RUNTIME_KEYS))})"
            )
    threads = section.get("threads_per_worker")
    if threads is not None and not _whole(threads, 1, MAX_THREADS):
        problems.append(
            f"runtime.threads_per_worker: must be a whole number from 1 to {MAX_THREADS}"
        )
        threads = None
    warmup = section.get("warmup_examples", DEFAULT_WARMUP_EXAMPLES)
    if not _whole(warmup, 0, MAX_WARMUP_EXAMPLES):
        problems.append(
            f"runtime.warmup_examples: must be a whole number from 0 to {MAX_WARMUP_EXAMPLES}"
        )
        warmup = DEFAULT_WARMUP_EXAMPLES
    return Runtime(threads_per_worker=threads, warmup_examples=warmup)


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
