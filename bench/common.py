"""What every benchmark shares: percentiles, the machine's description, writing results."""

from __future__ import annotations

import json
import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; values need not be sorted."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return (
        statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]
        if q < 100
        else ordered[-1]
    )


def machine() -> dict[str, Any]:
    """Enough about this machine to compare results fairly."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
    }


def record(name: str, params: dict[str, Any], figures: dict[str, Any], line: str) -> None:
    """Print the one-line summary and append the full record to ``bench/results/<name>.jsonl``."""
    print(line, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    entry = {
        "bench": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "params": params,
        "figures": figures,
        "summary": line,
    }
    with (RESULTS / f"{name}.jsonl").open("a") as out:
        out.write(json.dumps(entry) + "\n")
