"""Loopback ports for servers the tests and benchmarks start in another process (the endpoint,
moto_server, a Jupyter Server)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, attempts: int = 100, pause_s: float = 0.1) -> bool:
    """Wait until something accepts connections on 127.0.0.1:port; False if it never did."""
    for _ in range(attempts):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(pause_s)
    return False


def serve_process(model, port: int, *flags: str, **popen) -> subprocess.Popen:
    """``python -m training serve`` on a loopback port in another process, as a user starts it
    (the endpoint benchmark and the real-artifact test talk to it over HTTP)."""
    command = [sys.executable, "-m", "training", "serve", "--model", str(model), *flags]
    return subprocess.Popen([*command, "--port", str(port)], **popen)
