"""A build backend that needs nothing from a package index, for ``pip install .`` in a
network-isolated container.

At start-up the scikit-learn container's serving stack copies ``code/`` and runs
``pip install .`` on it. The image upgrades pip without a pin; pip 25.3 and later builds every
project in an isolated environment and fetches setuptools from the index for it ("Could not
find a version that satisfies the requirement setuptools>=40.8.0"), which a network-isolated
container cannot reach, so the ``setup.py`` the stack writes (and SDK 2.x's repacked ``code/``)
would stop installing there (pip 25.2 still took the old ``setup.py bdist_wheel`` path;
measured in tests/test_featurizer_container.py's set-up). ``pyproject.toml`` names this module
as the backend, with no build requirements: the wheel is written with ``zipfile`` alone
(PEP 517, PEP 427).
"""

import base64
import hashlib
import os
import zipfile

NAME, VERSION = "linear_learner_featurizer", "1.0.0"


def get_requires_for_build_wheel(config_settings=None):
    return []


def _record(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = f"{NAME}-{VERSION}.dist-info"
    files = {}
    for name in sorted(os.listdir(".")):
        if name.endswith(".py") and name not in ("offline_build.py", "setup.py"):
            with open(name, "rb") as fh:
                files[name] = fh.read()
    metadata = f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
    files[info + "/METADATA"] = metadata.encode()
    files[info + "/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: offline_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    lines = [_record(n, d) for n, d in files.items()] + [info + "/RECORD,,"]
    files[info + "/RECORD"] = ("\n".join(lines) + "\n").encode()
    wheel = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel
