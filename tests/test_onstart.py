"""The notebook instance's OnStart script, run for real under bash, and the notebook's name.

The script is the one the stack generates, with its paths (InstancePaths) moved into a temporary
folder. Only what belongs to AWS or to root is replaced, by programs on PATH: ``aws`` copies
from a local folder standing in for the bucket (holding the bundle exactly as the stack stages
it), ``sudo`` runs the command as the current user, ``systemctl`` records its arguments, and
``crontab`` exists on the AL2 instance only (AL2023 installs no cron). The kernel's ``python``
runs this project's pip, resolving the bundle's requirements.txt offline (``--dry-run
--no-index``) against the project's environment. The systemd units are checked by the real
``systemd-analyze verify`` (systemd 252, as AL2023's) where it is installed.
"""

import ast
import getpass
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stacks.notebook_lifecycle import (
    BUNDLE_UPDATE,
    IDLE_STOP,
    INSTALLED,
    NO_INTERNET,
    InstancePaths,
    on_start_script,
    program,
)
from training.aws import notebook_bundle

BUCKET = "ll-e2e-base-bucket"
PROJECT = {"project": "ll-e2e", "region": "eu-west-1", "bucket": BUCKET}
NOTEBOOK = "linear_learner.ipynb"

FAKE_AWS = """#!{python}
# aws s3 sync s3://BUCKET/PREFIX DEST [--delete] [--only-show-errors]: the bucket is a folder
import filecmp, os, shutil, sys
args = sys.argv[1:]
assert args[:2] == ["s3", "sync"], args
source = os.path.join({bucket!r}, args[2][len("s3://"):])
dest = args[3]
if not os.path.isdir(source):
    sys.exit(0)  # an empty prefix: nothing to sync
wanted = set()
for folder, _, names in os.walk(source):
    for name in names:
        rel = os.path.relpath(os.path.join(folder, name), source)
        wanted.add(rel)
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target) or not filecmp.cmp(os.path.join(source, rel), target, False):
            shutil.copyfile(os.path.join(source, rel), target)
if "--delete" in args:
    for folder, _, names in os.walk(dest):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.relpath(path, dest) not in wanted:
                os.remove(path)
"""
FAKE_SUDO = """#!/bin/bash
# sudo -u USER [-i] [command ...]: the current user stands in for USER
echo "$*" >> {calls}
[ "$1" = "-u" ] && shift 2
[ "$1" = "-i" ] && shift
if [ $# -eq 0 ]; then exec bash; else exec "$@"; fi
"""
RECORDER = """#!/bin/bash
echo "$*" >> {calls}
"""
KERNEL_PYTHON = """#!/bin/bash
# the conda_python3 kernel's python: only "-m pip install ..." is expected
[ "$1 $2 $3" = "-m pip install" ] || exit 2
shift 3
exec {python} -m pip install --dry-run --no-index "$@"
"""


class Instance:
    """A notebook instance's folders, the fake bucket and the fake commands, under tmp_path."""

    def __init__(self, tmp_path: Path, platform: str):
        self.root = tmp_path
        self.bucket = tmp_path / "bucket"
        shutil.copytree(notebook_bundle.stage(), self.bucket / BUCKET / "notebooks")
        self.paths = InstancePaths(
            user=getpass.getuser(),
            home=str(tmp_path / "home" / "SageMaker"),
            kernel_env=str(tmp_path / "anaconda3" / "envs" / "python3"),
            python=sys.executable,
            bin_dir=str(tmp_path / "usr-local-bin"),
            cron_dir=str(tmp_path / "etc" / "cron.d"),
            systemd_dir=str(tmp_path / "etc" / "systemd" / "system"),
            log_dir=str(tmp_path / "var-log"),
        )
        self.fake = tmp_path / "fake-bin"
        for folder in (self.fake, self.paths.bin_dir, self.paths.systemd_dir, self.paths.log_dir):
            Path(folder).mkdir(parents=True)
        self._tool("aws", FAKE_AWS.format(python=sys.executable, bucket=str(self.bucket)))
        self._tool("sudo", FAKE_SUDO.format(calls=tmp_path / "sudo.calls"))
        self._tool("systemctl", RECORDER.format(calls=tmp_path / "systemctl.calls"))
        if platform == "al2":  # cronie: crontab and /etc/cron.d
            self._tool("crontab", RECORDER.format(calls=tmp_path / "crontab.calls"))
            Path(self.paths.cron_dir).mkdir(parents=True)
        kernel = Path(self.paths.kernel_env) / "bin" / "python"
        kernel.parent.mkdir(parents=True)
        kernel.write_text(KERNEL_PYTHON.format(python=sys.executable))
        kernel.chmod(0o755)

    def _tool(self, name: str, text: str) -> None:
        (self.fake / name).write_text(text)
        (self.fake / name).chmod(0o755)

    @property
    def notebooks(self) -> Path:
        return Path(self.paths.notebooks)

    @property
    def bundle(self) -> Path:
        """The bundle in the (fake) bucket: what the next deploy changes."""
        return self.bucket / BUCKET / "notebooks"

    def start(self, internet: bool = True) -> str:
        """One start: the generated script under bash, as SageMaker runs it (its output)."""
        script = self.root / "on-start.sh"
        script.write_text(on_start_script(BUCKET, 45, PROJECT, internet, self.paths))
        home = self.root / "user-home"
        home.mkdir(exist_ok=True)
        env = {"PATH": f"{self.fake}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
        # capture_output waits for the pipes to close: a background job that kept OnStart's
        # output open would hang here as it would hold SageMaker's 5 minutes
        res = subprocess.run(
            ["bash", str(script)], env=env, capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    def installed(self) -> str:
        """The background install's log once it has finished."""
        log = Path(self.paths.install_log)
        deadline = time.monotonic() + 90
        while True:
            lines = log.read_text().strip().splitlines() if log.exists() else []
            if lines and (lines[-1] == INSTALLED or lines[-1].startswith("FAILED")):
                return log.read_text()
            assert time.monotonic() < deadline, "the background install never finished"
            time.sleep(0.2)

    def calls(self, tool: str) -> list[str]:
        path = self.root / f"{tool}.calls"
        return path.read_text().splitlines() if path.exists() else []


def same_files(a: Path, b: Path) -> dict[str, bool]:
    return {
        p.relative_to(a).as_posix(): (b / p.relative_to(a)).read_bytes() == p.read_bytes()
        for p in a.rglob("*")
        if p.is_file()
    }


def test_onstart_al2_delivers_the_bundle_keeps_the_users_work_and_arms_cron(tmp_path):
    instance = Instance(tmp_path, "al2")
    out = instance.start()
    # first start: the whole bundle, the project's description, the dependencies, cron
    delivered = same_files(instance.bundle, instance.notebooks)
    assert delivered and all(delivered.values()), delivered
    assert "requirements.txt" in delivered and f"training/{IDLE_STOP.name}" not in delivered
    assert json.loads((instance.notebooks / "project.json").read_text()) == PROJECT
    assert instance.installed().strip().splitlines()[-1] == INSTALLED
    cron = Path(instance.paths.cron_dir, "idle-stop").read_text()
    assert cron == (
        f"*/5 * * * * root {sys.executable} {instance.paths.bin_dir}/idle_stop.py 45 "
        f"--region eu-west-1 >> {instance.paths.log_dir}/idle_stop.log 2>&1\n"
    )
    assert oct(Path(instance.paths.cron_dir, "idle-stop").stat().st_mode)[-3:] == "644"
    assert Path(instance.paths.bin_dir, "idle_stop.py").read_text() == program(IDLE_STOP)
    assert instance.calls("systemctl") == []  # cron is there: no timer as well
    assert "idle stop: cron, every 5 minutes" in out
    assert all(c.startswith(f"-u {instance.paths.user} ") for c in instance.calls("sudo"))

    # the user works: edits the notebook and a module, deletes the dataset's card
    mine = instance.notebooks / NOTEBOOK
    mine.write_text(mine.read_text().replace("Linear Learner, end to end", "My analysis"))
    edited_module = instance.notebooks / "training" / "errors.py"
    edited_module.write_text(edited_module.read_text() + "\n# my note\n")
    card = next(instance.notebooks.glob("training/datasets/*.md"))
    card.unlink()
    # ... and a new bundle is deployed: the notebook changed too, a file is new, an untouched
    # module changed, an untouched and the edited module left the bundle
    (instance.bundle / NOTEBOOK).write_text((instance.bundle / NOTEBOOK).read_text() + " ")
    (instance.bundle / "extra.ipynb").write_text("{}")
    changed = instance.bundle / "training" / "limits.py"
    changed.write_text(changed.read_text() + "\n# next release\n")
    (instance.bundle / "training" / "files.py").unlink()
    (instance.bundle / "training" / "errors.py").unlink()

    out = instance.start()  # the second start (the idle stop's restart, a deploy)
    assert "My analysis" in mine.read_text()  # the user's work survives
    pristine = Path(instance.paths.pristine) / NOTEBOOK
    assert pristine.read_bytes() == (instance.bundle / NOTEBOOK).read_bytes()
    report = (instance.notebooks / "bundle-update.txt").read_text()
    assert f"kept your {NOTEBOOK}; the bundle's new version is {pristine}" in report
    assert (instance.notebooks / "extra.ipynb").read_text() == "{}"  # new: arrives
    assert (instance.notebooks / "training" / "limits.py").read_text().endswith("next release\n")
    assert card.exists()  # deleted by the user: the bundle's version comes back
    assert not (instance.notebooks / "training" / "files.py").exists()  # stale, untouched: gone
    assert edited_module.read_text().endswith("# my note\n")  # left the bundle, edited: kept
    assert "kept your training/errors.py (no longer in the bundle)" in report
    assert report.splitlines()[0] == ("notebook bundle: 2 added, 1 updated, 2 kept, 1 removed"), (
        report
    )
    assert report.strip() in out  # the OnStart log (CloudWatch) says the same

    # a third start with nothing new changes nothing and still keeps the user's notebook (a
    # file that left the bundle is reported once: it is the user's own from then on)
    instance.start()
    report = (instance.notebooks / "bundle-update.txt").read_text()
    assert report.startswith("notebook bundle: 0 added, 0 updated, 1 kept, 0 removed")
    assert "My analysis" in mine.read_text()


def test_onstart_al2023_arms_a_systemd_timer_where_there_is_no_cron(tmp_path):
    instance = Instance(tmp_path, "al2023")
    out = instance.start()
    assert instance.calls("systemctl") == [
        "daemon-reload",
        "enable idle-stop.timer",
        "start idle-stop.timer",
    ]
    assert not Path(instance.paths.cron_dir).exists()
    units = Path(instance.paths.systemd_dir)
    service = (units / "idle-stop.service").read_text()
    assert f"ExecStart={sys.executable} {instance.paths.bin_dir}/idle_stop.py 45 " in service
    assert "--region eu-west-1\n" in service and "Type=oneshot" in service
    timer = (units / "idle-stop.timer").read_text()
    assert "OnCalendar=*:0/5\n" in timer and "WantedBy=timers.target" in timer
    assert "idle stop: systemd timer idle-stop.timer" in out
    if shutil.which("systemd-analyze"):
        res = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(units / "idle-stop.timer")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
    # the rest of the start is the same as on AL2
    assert all(same_files(instance.bundle, instance.notebooks).values())
    assert instance.installed().strip().splitlines()[-1] == INSTALLED


def test_onstart_without_internet_says_why_nothing_is_installed(tmp_path):
    instance = Instance(tmp_path, "al2023")
    out = instance.start(internet=False)
    assert NO_INTERNET in out and "%pip install -r requirements.txt" in out
    log = Path(instance.paths.install_log).read_text()
    assert NO_INTERNET in log
    # the notebooks still arrive: S3 is reached through the VPC's gateway endpoint
    assert all(same_files(instance.bundle, instance.notebooks).values())


def test_onstart_when_the_bundle_cannot_be_fetched_leaves_the_folder_alone(tmp_path):
    instance = Instance(tmp_path, "al2")
    instance.start()
    (instance.notebooks / NOTEBOOK).write_text("mine")
    (instance.fake / "aws").write_text("#!/bin/bash\necho 'AccessDenied' >&2\nexit 1\n")
    out = instance.start()
    assert f"could not fetch s3://{BUCKET}/notebooks/" in out
    assert (instance.notebooks / NOTEBOOK).read_text() == "mine"
    # an emptied bundle prefix is not "every file removed from the bundle"
    shutil.rmtree(instance.bundle)
    instance.bundle.mkdir()
    (instance.fake / "aws").unlink()
    instance._tool("aws", FAKE_AWS.format(python=sys.executable, bucket=str(instance.bucket)))
    out = instance.start()
    assert "is empty" in out
    assert (instance.notebooks / "training" / "__init__.py").exists()


@pytest.mark.parametrize("asset", [IDLE_STOP, BUNDLE_UPDATE], ids=lambda p: p.name)
def test_onstart_programs_are_python_37_as_on_al2(asset):
    """AL2's /usr/bin/python3 is 3.7: what the script embeds must parse as 3.7."""
    ast.parse(program(asset), feature_version=(3, 7))
    ast.parse(asset.read_text(), feature_version=(3, 7))


def test_onstart_script_fits_sagemakers_limit_with_real_names():
    """16384 base64 characters per script (NotebookInstanceLifecycleHook)."""
    import base64

    long = {
        "project": "a-thirty-two-character-project-n",
        "region": "ap-southeast-2",
        "bucket": "b" * 63,
        "role_arn": "arn:aws:iam::123456789012:role/" + "r" * 64,
        "image_uri": "712309505854.dkr.ecr.ap-southeast-2.amazonaws.com/linear-learner:1",
        "kms_key_arn": "arn:aws:kms:ap-southeast-2:123456789012:key/" + "k" * 36,
        "endpoint_name": "a-thirty-two-character-project-n-endpoint",
    }
    for internet in (True, False):
        script = on_start_script("b" * 63, 60, long, internet)
        assert len(base64.b64encode(script.encode())) < 16384


# ----------------------------------------------------------------- the notebook's name


@pytest.fixture(scope="module")
def synth():
    from test_stacks import base, only

    def notebook(**context):
        """The notebook's properties, with the zone of the subnet it is placed in."""
        template = base(**context)
        props = dict(only(template, "AWS::SageMaker::NotebookInstance")["Properties"])
        subnets = template.find_resources("AWS::EC2::Subnet")
        if subnets:
            (subnet,) = subnets.values()
            props["subnet_zone"] = subnet["Properties"]["AvailabilityZone"]
        return props

    return notebook


def test_every_create_only_property_is_in_the_notebooks_fingerprint():
    """The list is AWS's: CloudFormation's resource schema (as cfn-lint ships it)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    from stacks.base_stack import NOTEBOOK_CREATE_ONLY

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(
        "us-east-1", "AWS::SageMaker::NotebookInstance"
    ).schema
    create_only = {p.removeprefix("/properties/") for p in schema["createOnlyProperties"]}
    assert set(NOTEBOOK_CREATE_ONLY) == create_only - {"NotebookInstanceName"}


def test_the_notebooks_name_changes_with_each_create_only_input(synth):
    from stacks.base_stack import NOTEBOOK_CREATE_ONLY, notebook_fingerprint
    from training.aws import naming

    default = synth()
    in_vpc = synth(notebook_in_vpc=True)  # the subnet in the region's first zone
    # the name is the fingerprint of exactly what the template says for those properties ...
    for props in (default, in_vpc):
        values = {k: props.get(k) for k in NOTEBOOK_CREATE_ONLY}
        if "subnet_zone" in props:
            values["subnet_zone"] = props["subnet_zone"]
        name = naming.notebook_name("ll-e2e", notebook_fingerprint("ll-e2e", values))
        assert props["NotebookInstanceName"] == name
        # ... so a different value of any one of them is a different name
        for key in values:
            other = {**values, key: {"Ref": "SomethingElse"}}
            assert notebook_fingerprint("ll-e2e", other) != name[-6:], key
    # and each setting that feeds one gives a new name (a replacement CloudFormation can make);
    # PlatformIdentifier has one accepted value (AL2023: SageMaker no longer creates AL2
    # instances), covered by the fingerprint check above
    assert default["PlatformIdentifier"] == "notebook-al2023-v1"
    names = {
        default["NotebookInstanceName"],
        in_vpc["NotebookInstanceName"],  # SubnetId, SecurityGroupIds, DirectInternetAccess
        synth(notebook_in_vpc=True, notebook_availability_zone="us-east-1d")[
            "NotebookInstanceName"
        ],  # the subnet's zone: a new subnet behind the same reference
    }
    assert len(names) == 3
    # audit and destroy-all still own each by its exact name
    owned = re.compile(naming.owned_patterns("ll-e2e")["notebook"])
    assert all(owned.match(n) for n in names)


def test_onstart_bundle_update_with_an_unreadable_manifest_overwrites_nothing(tmp_path):
    """No record of what was delivered: every file that differs from the bundle is the user's."""
    pristine, folder, manifest = tmp_path / "pristine", tmp_path / "folder", tmp_path / "m.json"
    for root, text in ((pristine, "bundle"), (folder, "edited")):
        (root / "training").mkdir(parents=True)
        (root / NOTEBOOK).write_text(text)
        (root / "training" / "same.py").write_text("x = 1\n")
    (pristine / "new.txt").write_text("new")
    manifest.write_text("{not json")
    res = subprocess.run(
        [sys.executable, str(BUNDLE_UPDATE), str(pristine), str(folder), str(manifest)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert (folder / NOTEBOOK).read_text() == "edited"
    assert (folder / "new.txt").read_text() == "new"
    assert res.stdout.splitlines()[0] == "notebook bundle: 1 added, 0 updated, 1 kept, 0 removed"
    # the manifest is rewritten whole: what is now known to be delivered
    assert set(json.loads(manifest.read_text())) == {"new.txt", "training/same.py"}
