"""Local endpoint under load on loopback: throughput and latency, beside in-process predict.

    .venv/bin/python benchmarks/endpoint_bench.py [--requests 5000] [--clients 4]

Trains a small model on the bundled penguins data, starts ``python -m training serve`` on a
free loopback port, and sends (bounded in count and time) single-row CSV requests from
persistent connections, then 1000-row CSV requests. The floor printed beside each figure is
the same prediction called in-process (no HTTP). Targets: >= 1000 req/s with p99 <= 5 ms for
single rows; p50 <= 20 ms for 1000 rows.
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
            str(ROOT / "data" / "penguins.csv"),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound per phase")
    args = parser.parse_args()
    from training.core import artifact

    work = Path(tempfile.mkdtemp(prefix="endpoint-bench-"))
    model_path = train_model(work)
    model = artifact.load(model_path)
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((1000, model.feature_dim)).astype(np.float32)
    one = ",".join(f"{v:.4f}" for v in rows[0]).encode()
    thousand = "\n".join(",".join(f"{v:.4f}" for v in r) for r in rows).encode()

    port = free_port()
    server = serve_process(model_path, port, cwd=ROOT, stderr=subprocess.DEVNULL)
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

    from training.local.server import predict_body

    def floor(body, n=200):
        times = []
        for _ in range(n):
            s = time.perf_counter()
            predict_body(model, body, "text/csv", "application/json")
            times.append(time.perf_counter() - s)
        return np.array(times)

    f1, f1000 = floor(one), floor(thousand, 50)
    ms = lambda a, q: np.percentile(np.asarray(a), q) * 1000  # noqa: E731
    print(
        f"\nLocal endpoint on loopback ({args.clients} keep-alive clients), model "
        f"feature_dim {model.feature_dim}\n"
    )
    print(
        f"{'request':<22}{'count':>7}{'req/s':>9}{'p50':>9}{'p99':>9}{'in-process p50':>17}  target"
    )
    rate = len(single) / single_wall
    ok1 = rate >= 1000 and ms(single, 99) <= 5
    print(
        f"{'1 row, text/csv':<22}{len(single):>7}{rate:>9.0f}{ms(single, 50):>8.2f}m"
        f"{ms(single, 99):>8.2f}m{ms(f1, 50):>16.3f}m  {'ok' if ok1 else 'MISSED'} "
        "(>=1000 req/s, p99 <= 5 ms)"
    )
    ok2 = ms(batch, 50) <= 20
    print(
        f"{'1000 rows, text/csv':<22}{len(batch):>7}{'':>9}{ms(batch, 50):>8.2f}m"
        f"{ms(batch, 99):>8.2f}m{ms(f1000, 50):>16.3f}m  {'ok' if ok2 else 'MISSED'} "
        "(p50 <= 20 ms)"
    )


if __name__ == "__main__":
    main()
