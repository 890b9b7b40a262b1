"""Stop this SageMaker notebook instance after N idle minutes (installed by the lifecycle config).

Runs every 5 minutes on the notebook instance (from cron on AL2, a systemd timer on AL2023)
with the system python3 (standard library, Python 3.7: AL2's). Idleness is decided as AWS's
auto-stop-idle lifecycle sample decides it, from what users do, never from API traffic:

- no kernel (``/api/kernels``, which includes those of ``/api/sessions``) is ``busy``, and every
  kernel's ``last_activity`` (kernel messages: execution, output) is N minutes old. Other
  states count by their age: a kernel no client ever connected to stays ``starting`` forever
  in Jupyter Server, and must not keep the instance up;
- every terminal's ``last_activity`` (``/api/terminals``) is N minutes old;
- the instance has been up N minutes (a fresh start is never stopped).

The server-wide ``last_activity`` of ``/api/status`` is not used: Jupyter Server moves it on
every API request, so this probe and any open browser tab polling the API would keep the
instance "active" forever. The probes carry ``no_track_activity=1`` so they count as no
activity either way. Open browser connections are ignored (the sample's --ignore-connections):
a forgotten tab must not keep an instance billing.

    python3 idle_stop.py IDLE_MINUTES --region REGION [--url URL] [--dry-run]
"""

import datetime
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

JUPYTER = "https://localhost:8443"
METADATA = os.environ.get("LL_NOTEBOOK_METADATA", "/opt/ml/metadata/resource-metadata.json")


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def idle_reason(kernels, terminals, now, uptime_seconds, idle_seconds):
    """None when the instance may stop; otherwise why it may not (for the log)."""
    if uptime_seconds < idle_seconds:
        return f"up for {uptime_seconds:.0f}s only"
    for k in kernels:  # a long computation is work, however long ago it was started
        if k.get("execution_state") == "busy":
            return f"kernel {k.get('id')} is busy"
    for kind, items in (("kernel", kernels), ("terminal", terminals)):
        for item in items:
            stamp = item.get("last_activity")
            if stamp and now - parse_time(stamp) < idle_seconds:
                name = item.get("id", item.get("name"))
                return f"{kind} {name} active {now - parse_time(stamp):.0f}s ago"
    return None


def _get(base, path):
    context = ssl._create_unverified_context()  # Jupyter's self-signed certificate on localhost
    url = f"{base}{path}?no_track_activity=1"
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        return json.load(response)


def _option(argv, name, default=None):
    return argv[argv.index(name) + 1] if name in argv[:-1] else default


def main(argv):
    idle_seconds = float(argv[1]) * 60
    region = _option(argv, "--region")
    base = _option(argv, "--url", JUPYTER)
    dry_run = "--dry-run" in argv
    try:
        kernels = _get(base, "/api/kernels")
        try:
            terminals = _get(base, "/api/terminals")
        except urllib.error.HTTPError:  # terminals disabled on this server
            terminals = []
    except OSError as err:
        print(f"jupyter not reachable ({err}); not stopping")
        return 0
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    reason = idle_reason(kernels, terminals, time.time(), uptime, idle_seconds)
    if reason:
        print(f"not idle: {reason}")
        return 0
    with open(METADATA) as fh:
        name = json.load(fh)["ResourceName"]
    print(f"idle for {idle_seconds / 60:g} minutes: stopping notebook instance {name}")
    if not dry_run:
        command = ["aws", "sagemaker", "stop-notebook-instance", "--notebook-instance-name", name]
        subprocess.run(command + (["--region", region] if region else []), check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
