"""Local endpoint under load on loopback: throughput and latency, beside in-process predict.

    .venv/bin/python benchmarks/endpoint_bench.py [--requests 5000] [--clients 4]

Trains a small model on the bundled penguins data, starts ``python -m training serve`` on a
free loopback port, and sends (bounded in count and time) single-row CSV requests from
persistent connections, then 1000-row CSV requests: first as encoded vectors
(``--no-preprocessing``: Linear Learner alone), then as raw rows (the penguins' own columns,
through the preprocessing: what a user sends). The floor printed beside each figure is the
same prediction called in-process (no HTTP). Targets: encoded >= 1000 req/s with p99 <= 5 ms
for single rows, p50 <= 20 ms for 1000 rows; raw rows >= 1000 req/s with p99 <= 5 ms, p50 <=
30 ms for 1000 rows.
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' helpers for servers in another process

from ports import free_port, serve_process, wait_for_port  # noqa: E402


def train_model(work: Path) -> Path:
    run = [sys.executable, "-m", "training", "-q"]
    subprocess.run(
        run
        + [
            "prepare",
            "--data",
            str(ROOT / "training" / "datasets" / "penguins.csv"),
            "--label",
            "species",
            "--predictor-type",
            "multiclass_classifier",
            "--out",
            str(work / "prep"),
        ],
        check=True,
        cwd=ROOT,
    )
    subprocess.run(
        run + ["train", "--data-dir", str(work / "prep"), "--out", str(work / "model")],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return work / "model" / "model.tar.gz"


def load(port: int, body: bytes, total: int, clients: int, limit_s: float) -> list[float]:
    """Latencies of ``total`` requests from ``clients`` keep-alive connections."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + limit_s
    per_client = total // clients

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for _ in range(per_client):
            if time.perf_counter() > deadline:
                break
            start = time.perf_counter()
            conn.request(
                "POST",
                "/invocations",
                body=body,
                headers={"Content-Type": "text/csv", "Accept": "application/json"},
            )
            res = conn.getresponse()
            res.read()
            mine.append(time.perf_counter() - start)
            assert res.status == 200, res.status
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def phase(model_path: Path, flags: list[str], one: bytes, thousand: bytes, args):
    """Latencies of single-row then 1000-row requests to a fresh ``serve`` process."""
    port = free_port()
    server = serve_process(model_path, port, *flags, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        load(port, one, 200, 1, 10)  # warm-up
        start = time.perf_counter()
        single = load(port, one, args.requests, args.clients, args.seconds)
        single_wall = time.perf_counter() - start
        batch = load(port, thousand, 200, 2, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return single, single_wall, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound per phase")
    args = parser.parse_args()
    from training.local.server import predict_body
    from training.model_source import load_pipeline

    work = Path(tempfile.mkdtemp(prefix="endpoint-bench-"))
    model_path = train_model(work)
    served = load_pipeline(str(model_path))
    model = served.model
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((1000, model.feature_dim)).astype(np.float32)
    encoded = (
        ",".join(f"{v:.4f}" for v in rows[0]).encode(),
        "\n".join(",".join(f"{v:.4f}" for v in r) for r in rows).encode(),
    )
    # the penguins' test rows as the source has them, label left out, repeated to 1000
    raw_lines = _raw_lines(work / "prep" / "test_rows.csv", "species")
    raw = (raw_lines[0].encode(), "\n".join((raw_lines * 1000)[:1000]).encode())

    figures = {
        "encoded": phase(model_path, ["--no-preprocessing"], *encoded, args),
        "raw rows": phase(model_path, [], *raw, args),
    }

    def floor(served_model, body, n=200):
        times = []
        for _ in range(n):
            s = time.perf_counter()
            predict_body(served_model, body, "text/csv", "application/json")
            times.append(time.perf_counter() - s)
        return np.array(times)

    floors = {
        "encoded": (floor(model, encoded[0]), floor(model, encoded[1], 50)),
        "raw rows": (floor(served, raw[0]), floor(served, raw[1], 50)),
    }
    ms = lambda a, q: np.percentile(np.asarray(a), q) * 1000  # noqa: E731
    print(
        f"\nLocal endpoint on loopback ({args.clients} keep-alive clients), model "
        f"feature_dim {model.feature_dim}, raw rows of {raw_lines[0].count(',') + 1} columns\n"
    )
    print(
        f"{'request':<28}{'count':>7}{'req/s':>9}{'p50':>9}{'p99':>9}{'in-process p50':>17}  target"
    )
    for kind, (single, single_wall, batch) in figures.items():
        f1, f1000 = floors[kind]
        rate = len(single) / single_wall
        ok1 = rate >= 1000 and ms(single, 99) <= 5
        print(
            f"{'1 row, ' + kind:<28}{len(single):>7}{rate:>9.0f}{ms(single, 50):>8.2f}m"
            f"{ms(single, 99):>8.2f}m{ms(f1, 50):>16.3f}m  {'ok' if ok1 else 'MISSED'} "
            "(>=1000 req/s, p99 <= 5 ms)"
        )
        target = 20 if kind == "encoded" else 30
        ok2 = ms(batch, 50) <= target
        print(
            f"{'1000 rows, ' + kind:<28}{len(batch):>7}{'':>9}{ms(batch, 50):>8.2f}m"
            f"{ms(batch, 99):>8.2f}m{ms(f1000, 50):>16.3f}m  {'ok' if ok2 else 'MISSED'} "
            f"(p50 <= {target} ms)"
        )


def _raw_lines(path: Path, label: str) -> list[str]:
    import csv
    import io

    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    at = rows[0].index(label)
    out = []
    for row in rows[1:]:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow([c for i, c in enumerate(row) if i != at])
        out.append(buf.getvalue())
    return out


if __name__ == "__main__":
    main()
