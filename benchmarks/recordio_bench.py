"""RecordIO-protobuf write/read speed: this project vs SageMaker SDK 2.x vs ndarray.tofile.

    .venv/bin/python benchmarks/recordio_bench.py [--rows 100000] [--cols 50] [--repeat 5]

SDK 2.x (the last 2.x, 2.257.7) is installed by this script into benchmarks/.sdk2-venv on first
run, and timed there in a subprocess on the same arrays (same seed) writing the same kind of
file. ``tofile`` writes the same floats raw: the floor of one pass over the bytes. Best of N
runs, files removed between runs; the SDK output is also compared byte for byte with ours.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from training.data import recordio  # noqa: E402

SDK_VERSION = "2.257.7"
SDK_VENV = ROOT / "benchmarks" / ".sdk2-venv"


def make_data(rows: int, cols: int, sparse_cols: int, density: float):
    """Seeded dense and sparse inputs; the sparse one has round(density * sparse_cols) distinct,
    sorted columns per row, built directly (scipy.sparse.random needs GBs at this size)."""
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, cols)).astype(np.float32)
    y = (rng.random(rows) > 0.5).astype(np.float32)
    k = max(1, round(density * sparse_cols))
    cols_ = np.sort(rng.integers(0, sparse_cols - k + 1, (rows, k)), axis=1) + np.arange(k)
    data = rng.standard_normal(rows * k).astype(np.float32)
    S = sp.csr_matrix((data, cols_.ravel(), np.arange(rows + 1) * k), shape=(rows, sparse_cols))
    return X, y, S


def best_of(fn, repeat: int, path: Path) -> float:
    times = []
    for _ in range(repeat):
        if path.exists():
            path.unlink()
        start = time.perf_counter()
        fn(path)
        times.append(time.perf_counter() - start)
    return min(times)


def time_read(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


SDK_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, scipy.sparse as sp
    from sagemaker.amazon.common import (read_records, write_numpy_to_dense_tensor,
                                         write_spmatrix_to_sparse_tensor)
    rows, cols, scols, density, repeat, workdir = sys.argv[1:]
    rows, cols, scols, repeat = int(rows), int(cols), int(scols), int(repeat)
    X, y, S = make_data(rows, cols, scols, float(density))
    out = {}
    def best(fn, n):
        t = []
        for _ in range(n):
            s = time.perf_counter(); fn(); t.append(time.perf_counter() - s)
        return min(t)
    def write(name, writer, data):
        def go():
            with open(f"{workdir}/{name}", "wb") as f:
                writer(f, data, y)
        return go
    def read(name):
        def go():
            with open(f"{workdir}/{name}", "rb") as f:
                recs = read_records(f)
            # what a user does next: back to arrays
            return np.array([r.features["values"].float32_tensor.values for r in recs])
        return go
    n = max(1, repeat // 2)
    out["dense_write"] = best(write("sdk_dense.rec", write_numpy_to_dense_tensor, X), n)
    out["dense_read"] = best(read("sdk_dense.rec"), n)
    out["sparse_write"] = best(write("sdk_sparse.rec", write_spmatrix_to_sparse_tensor, S), n)
    def read_sparse():
        with open(f"{workdir}/sdk_sparse.rec", "rb") as f:
            recs = read_records(f)
        # back to a CSR matrix, as a user of the records does next
        ts = [r.features["values"].float32_tensor for r in recs]
        data = np.concatenate([np.array(t.values, np.float32) for t in ts])
        idx = np.concatenate([np.array(t.keys, np.int64) for t in ts])
        indptr = np.cumsum([0] + [len(t.keys) for t in ts])
        return sp.csr_matrix((data, idx, indptr), shape=(len(ts), int(ts[0].shape[0])))
    out["sparse_read"] = best(read_sparse, n)
    print(json.dumps(out))
    """
)


def sdk_script() -> str:
    """The SDK-side timing script, with this file's make_data so both time the same arrays."""
    return inspect.getsource(make_data) + SDK_SCRIPT


def ensure_sdk_venv() -> Path | None:
    python = SDK_VENV / "bin" / "python"
    if python.exists():
        check = subprocess.run(
            [python, "-c", "import scipy, sagemaker; print(sagemaker.__version__)"],
            capture_output=True,
            text=True,
        )
        # the SDK prints a deprecation banner on import: the version is the last line
        if check.returncode == 0 and check.stdout.strip().splitlines()[-1:] == [SDK_VERSION]:
            return python
    print(
        f"installing sagemaker=={SDK_VERSION} into {SDK_VENV} (first run only) …", file=sys.stderr
    )
    subprocess.run([sys.executable, "-m", "venv", str(SDK_VENV)], check=True)
    res = subprocess.run(
        [python, "-m", "pip", "install", "-q", f"sagemaker=={SDK_VERSION}", "scipy"]
    )
    return python if res.returncode == 0 else None


def run_sdk(python: Path, args, workdir: Path) -> dict | None:
    res = subprocess.run(
        [
            python,
            "-c",
            sdk_script(),
            str(args.rows),
            str(args.cols),
            str(args.sparse_cols),
            str(args.density),
            str(args.repeat),
            str(workdir),
        ],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        print(f"SDK 2.x run failed:\n{res.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--sparse-cols", type=int, default=10_000)
    parser.add_argument("--density", type=float, default=0.005)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-sdk", action="store_true", help="skip the SDK 2.x comparison")
    args = parser.parse_args()

    X, y, S = make_data(args.rows, args.cols, args.sparse_cols, args.density)
    work = Path(tempfile.mkdtemp(prefix="recordio-bench-"))
    ours_dense, ours_sparse = work / "ours_dense.rec", work / "ours_sparse.rec"

    def tofile_dense(p):
        with open(p, "wb") as f:
            X.tofile(f)
            y.tofile(f)

    def tofile_sparse(p):
        with open(p, "wb") as f:
            S.data.tofile(f)
            S.indices.astype(np.uint64).tofile(f)
            y.tofile(f)

    def ours_write_dense(p):
        with open(p, "wb") as f:
            recordio.write_numpy_to_dense_tensor(f, X, y)

    def ours_write_sparse(p):
        with open(p, "wb") as f:
            recordio.write_spmatrix_to_sparse_tensor(f, S, y)

    r = args.repeat
    res = {
        "tofile": {
            "dense_write": best_of(tofile_dense, r, work / "raw_dense.bin"),
            "sparse_write": best_of(tofile_sparse, r, work / "raw_sparse.bin"),
        },
        "ours": {
            "dense_write": best_of(ours_write_dense, r, ours_dense),
            "sparse_write": best_of(ours_write_sparse, r, ours_sparse),
        },
    }
    res["tofile"]["dense_read"] = time_read(
        lambda: np.fromfile(work / "raw_dense.bin", np.float32), r
    )
    res["ours"]["dense_read"] = time_read(lambda: recordio.read_arrays(ours_dense), r)
    res["ours"]["sparse_read"] = time_read(
        lambda: recordio.read_arrays(ours_sparse), max(1, r // 2)
    )
    identical = None
    if not args.no_sdk:
        python = ensure_sdk_venv()
        sdk = run_sdk(python, args, work) if python else None
        if sdk:
            res["sdk2"] = sdk
            identical = (work / "sdk_dense.rec").read_bytes() == ours_dense.read_bytes() and (
                work / "sdk_sparse.rec"
            ).read_bytes() == ours_sparse.read_bytes()

    size = ours_dense.stat().st_size / 1e6
    print(
        f"\nRecordIO-protobuf, dense {args.rows:,}x{args.cols} float32 + labels "
        f"({size:.1f} MB); sparse {args.rows:,}x{args.sparse_cols:,} density {args.density} "
        f"({ours_sparse.stat().st_size / 1e6:.1f} MB). Best of {r} runs.\n"
    )
    header = (
        f"{'operation':<14}{'tofile':>10}{'ours':>10}{'SDK 2.x':>11}"
        f"{'ours/tofile':>13}{'SDK/ours':>10}"
    )
    print(header)
    print("-" * len(header))
    for op in ("dense_write", "dense_read", "sparse_write", "sparse_read"):
        t = res["tofile"].get(op)
        o = res["ours"][op]
        s = res.get("sdk2", {}).get(op)
        fmt = lambda v: f"{v * 1000:8.1f}ms" if v is not None else f"{'-':>10}"  # noqa: E731
        ratio = f"{o / t:12.2f}x" if t else f"{'-':>13}"
        speedup = f"{s / o:9.1f}x" if s else f"{'-':>10}"
        print(f"{op:<14}{fmt(t)}{fmt(o)} {fmt(s)}{ratio}{speedup}")
    if identical is not None:
        print(f"\nSDK 2.x output byte-identical to ours: {identical}")
    print("(read = file to numpy arrays; for SDK 2.x: read_records + stacking the values)")
    for p in work.iterdir():
        p.unlink()
    os.rmdir(work)


if __name__ == "__main__":
    main()
