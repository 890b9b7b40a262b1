"""The notebook instance's idle stop against a real Jupyter Server with a real kernel.

The script runs as cron runs it on the instance (``python3 idle_stop.py MINUTES --region R``),
pointed at the test's server with ``--url``. Only the AWS CLI is replaced: an ``aws`` on PATH
that records its arguments, since the stop call is the one thing that must not reach AWS.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from ports import free_port, wait_for_port

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "stacks" / "assets" / "idle_stop.py"
NAME = "ll-e2e-notebook-abc123"


@pytest.fixture
def jupyter(tmp_path):
    """A Jupyter Server on a free loopback port (no token: the instance's own server is only
    reachable on localhost behind SageMaker's proxy), and a kernel opened as a notebook does."""
    port = free_port()
    log = open(tmp_path / "jupyter.log", "w")  # noqa: SIM115 (closed after the server stops)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}",
            "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--allow-root",
            "--ServerApp.disable_check_xsrf=True", "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={tmp_path}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: proc.poll() is not None or wait_for_port(port, attempts=1))
    assert proc.poll() is None, (tmp_path / "jupyter.log").read_text()
    session = requests.post(
        f"{url}/api/sessions",
        json={"path": "work.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
        timeout=60,
    ).json()
    kernel = session["kernel"]["id"]
    # as a notebook tab does: kernel_info, whose status messages the server sees (repeated:
    # ZMQ drops what is published before the server's subscription has joined)
    client = connect(tmp_path, kernel)
    wait_until(lambda: client.kernel_info() and kernel_state(url, kernel) == "idle")
    client.stop_channels()
    yield url, kernel, tmp_path
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def connect(tmp_path, kernel_id):
    """A kernel client on the kernel's own connection file, ready (kernel_info answered)."""
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(
        connection_file=str(tmp_path / "runtime" / f"kernel-{kernel_id}.json")
    )
    client.load_connection_file()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return client


def wait_until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def idle_for(url) -> float:
    """Seconds since the server's last activity (reading /api/status is not activity)."""
    status = requests.get(f"{url}/api/status", timeout=10).json()
    return time.time() - parse(status["last_activity"])


def kernel_state(url, kernel_id):
    kernels = requests.get(f"{url}/api/kernels", params={"no_track_activity": 1}, timeout=10)
    return next(k["execution_state"] for k in kernels.json() if k["id"] == kernel_id)


def run_check(url, tmp_path, minutes):
    """One cron run; returns (its log line, the AWS CLI arguments if it called stop)."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    called = tmp_path / "aws-called.json"
    called.unlink(missing_ok=True)
    (fake / "aws").write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(called)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    (fake / "aws").chmod(0o755)
    metadata = tmp_path / "resource-metadata.json"
    metadata.write_text(json.dumps({"ResourceName": NAME}))
    env = {
        **os.environ,
        "PATH": f"{fake}:{os.environ['PATH']}",
        "LL_NOTEBOOK_METADATA": str(metadata),
    }
    res = subprocess.run(
        [sys.executable, str(SCRIPT), str(minutes), "--region", "eu-west-1", "--url", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout.strip(), json.loads(called.read_text()) if called.exists() else None


def test_an_idle_kernel_past_the_limit_stops_the_instance_despite_polling(jupyter):
    url, kernel, tmp_path = jupyter
    limit_s = 6.0  # long enough that a loaded machine still checks within it
    line, stopped = run_check(url, tmp_path, limit_s / 60)
    assert stopped is None and "active" in line  # the kernel just started
    # the idle period: the probe itself and a browser tab polling the API do not count
    deadline = time.monotonic() + limit_s + 1
    while time.monotonic() < deadline:
        requests.get(f"{url}/api/status", timeout=10)
        requests.get(f"{url}/api/kernels", timeout=10)
        requests.get(f"{url}/api/sessions", timeout=10)
        time.sleep(0.3)
    status = requests.get(f"{url}/api/status", timeout=10).json()
    assert time.time() - parse(status["last_activity"]) < 2  # what the old probe read: "active"
    line, stopped = run_check(url, tmp_path, limit_s / 60)
    assert stopped == [
        "sagemaker", "stop-notebook-instance", "--notebook-instance-name", NAME,
        "--region", "eu-west-1",
    ], line  # fmt: skip
    assert f"stopping notebook instance {NAME}" in line


def test_a_busy_kernel_keeps_the_instance_running(jupyter):
    url, kernel, tmp_path = jupyter
    client = connect(tmp_path, kernel)
    try:
        client.execute("import time; time.sleep(30)")
        wait_until(lambda: kernel_state(url, kernel) == "busy")
        wait_until(lambda: idle_for(url) > 1.5)  # the server's last activity: 1.5 s ago
        line, stopped = run_check(url, tmp_path, 1 / 60)  # a 1 s limit, long passed
        assert stopped is None
        assert line == f"not idle: kernel {kernel} is busy"
    finally:
        client.stop_channels()


def test_recent_typing_in_a_terminal_keeps_the_instance_running(jupyter):
    url, _, tmp_path = jupyter
    terminal = requests.post(f"{url}/api/terminals", timeout=30)
    if terminal.status_code == 404:
        pytest.skip("this Jupyter Server has no terminals")
    name = terminal.json()["name"]
    # everything goes quiet past the 2 s limit (the shell's prompt arrives when it arrives) ...
    wait_until(lambda: run_check(url, tmp_path, 2 / 60)[1] is not None, timeout=60)
    asyncio.run(type_in(url, name, "echo still working\r"))  # ... then someone types
    line, stopped = run_check(url, tmp_path, 2 / 60)
    assert stopped is None
    assert line.startswith(f"not idle: terminal {name} active"), line


async def type_in(url: str, terminal: str, text: str) -> None:
    """What the browser's terminal does: stdin over the terminal's websocket, output back."""
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(url.replace("http", "ws") + f"/terminals/websocket/{terminal}")
    await ws.write_message(json.dumps(["stdin", text]))
    while "still working" not in str(await asyncio.wait_for(ws.read_message(), 10)):
        pass
    ws.close()


def parse(stamp):
    import datetime

    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
