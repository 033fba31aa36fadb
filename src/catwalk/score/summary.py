"""What a finished scoring job tells: rows, rows with errors, speed, and model loads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Summary:
    engine: str
    rows: int
    errors: int
    seconds: float
    loads: int  # models loaded, over all worker processes (one per process is the goal)
    workers: int  # worker processes (local), Ray actors, or Spark's default parallelism
    output: str

    def line(self) -> str:
        rate = f"{self.rows / self.seconds:,.0f} rows/s" if self.seconds > 0 else "-"
        errors = f"{self.errors} with errors" if self.errors else "no errors"
        return (
            f"score: {self.rows} row(s), {errors}, in {self.seconds:.1f}s ({rate}) on "
            f"{self.engine} with {self.workers} worker(s); model loaded {self.loads} time(s); "
            f"output {self.output}"
        )
