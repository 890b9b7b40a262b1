"""Stop this SageMaker notebook instance after N idle minutes (installed by the lifecycle config).

Runs from cron every 5 minutes on the notebook instance with the system python3 (standard
library only). Idle means: no kernel busy, and no kernel or Jupyter activity for N minutes,
and the instance has been up for at least N minutes (so a fresh start is never stopped).

    python3 idle_stop.py IDLE_MINUTES [--dry-run]
"""

import datetime
import json
import ssl
import subprocess
import sys
import time
import urllib.request

JUPYTER = "https://localhost:8443"
METADATA = "/opt/ml/metadata/resource-metadata.json"


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def should_stop(kernels, status, now, uptime_seconds, idle_seconds):
    """True when nothing ran for ``idle_seconds`` and the instance is older than that."""
    if uptime_seconds < idle_seconds:
        return False
    if any(k.get("execution_state") == "busy" for k in kernels):
        return False
    stamps = [parse_time(k["last_activity"]) for k in kernels if k.get("last_activity")]
    if status.get("last_activity"):
        stamps.append(parse_time(status["last_activity"]))
    last = max(stamps) if stamps else now - uptime_seconds
    return now - last >= idle_seconds


def _get(path):
    context = ssl._create_unverified_context()  # Jupyter's self-signed certificate on localhost
    with urllib.request.urlopen(JUPYTER + path, context=context, timeout=10) as response:
        return json.load(response)


def main(argv):
    idle_seconds = int(argv[1]) * 60
    dry_run = "--dry-run" in argv
    try:
        kernels, status = _get("/api/kernels"), _get("/api/status")
    except OSError as err:
        print(f"jupyter not reachable ({err}); not stopping")
        return 0
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    if not should_stop(kernels, status, time.time(), uptime, idle_seconds):
        return 0
    with open(METADATA) as fh:
        name = json.load(fh)["ResourceName"]
    print(f"idle for {idle_seconds // 60} minutes: stopping notebook instance {name}")
    if not dry_run:
        subprocess.run(
            ["aws", "sagemaker", "stop-notebook-instance", "--notebook-instance-name", name],
            check=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
