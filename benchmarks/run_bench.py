"""The main job's time after set-up: ``bash scripts/run.sh`` as the README runs it.

    .venv/bin/python benchmarks/run_bench.py [--repeat 3]

Runs the main job (``scripts/run.sh -q``, each run into its own folder) and, in turn with it,
the same job with ``--no-synth``, so the CDK synth's share is measured in the same phase of
the machine. Prints the median wall time of each, the median of every stage from the run's
``summary.json``, and the target: the whole job in <= 15 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 15.0


def once(out: Path, extra: list[str]) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    subprocess.run(
        ["bash", "scripts/run.sh", "-q", *extra],
        cwd=ROOT,
        env={**os.environ, "OUT": str(out)},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    return wall, json.loads((out / "summary.json").read_text())["stage_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    subprocess.run(["bash", "scripts/setup.sh"], cwd=ROOT, check=True, capture_output=True)
    results: dict[str, list] = {"main job": [], "main job, --no-synth": []}
    with tempfile.TemporaryDirectory(prefix="run-bench-") as tmp:
        for i in range(args.repeat):  # A/B in turn, so both see the same machine
            for name, extra in (("main job", []), ("main job, --no-synth", ["--no-synth"])):
                results[name].append(once(Path(tmp) / f"{i}-{len(extra)}", extra))
    print(f"\nthe main job after set-up, median of {args.repeat} (s)\n")
    for name, runs in results.items():
        walls = [w for w, _ in runs]
        each = ", ".join(f"{w:.1f}" for w in walls)
        print(f"{name:<24}{statistics.median(walls):>7.1f}  (runs: {each})")
        for stage in runs[0][1]:
            median = statistics.median(s[stage] for _, s in runs)
            print(f"    {stage:<72}{median:>6.2f}")
    full = statistics.median(w for w, _ in results["main job"])
    print(f"\nmain job {full:.1f}s: {'ok' if full <= TARGET_S else 'MISSED'} (<= {TARGET_S:.0f} s)")


if __name__ == "__main__":
    main()
