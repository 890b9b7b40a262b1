"""The registry commands: ``register``, ``approve``, ``reject`` and ``registry``, on the local
registry (a folder) or SageMaker Model Registry (the base stack's model package group), which
keep the same records (:mod:`training.core.registry`)."""

from __future__ import annotations

import json
from pathlib import Path

from training.aws.naming import model_package_group_name
from training.core.registry import APPROVED, REJECTED, ModelVersion


def open_registry(target: str, registry_dir: Path | None, project: str, profile, region):
    """The registry a command works on: local (``registry_dir``, default the project's
    ``models/registry``) or the project's model package group on SageMaker."""
    group = model_package_group_name(project)
    if target == "aws":
        from training.aws.registry import AwsRegistry

        return AwsRegistry.open(project, profile, region)
    from training.local.registry import DEFAULT_DIR, LocalRegistry

    if registry_dir is None:
        from training import project as project_folder

        registry_dir = (
            project_folder.root(f"the local registry ({DEFAULT_DIR}; or pass --registry DIR)")
            / DEFAULT_DIR
        )
    return LocalRegistry(registry_dir, group)


def register(target, model: Path, preprocessing, registry_dir, project, profile, region, echo):
    """Register ``model`` (with ``preprocessing``, default the one beside it) as a new
    PendingManualApproval version; returns it."""
    from training.model_source import preprocessing_path

    found = preprocessing_path(str(model), preprocessing, True)
    registry = open_registry(target, registry_dir, project, profile, region)
    version = registry.register(Path(model), found)
    # registering is not deduplicated (SageMaker's is not either), but a user should know
    same = version.model_sha256 and [
        v.version
        for v in registry.versions()
        if v.model_sha256 == version.model_sha256 and v.version != version.version
    ]
    if same:
        echo(
            f"note: the same model (sha256 {version.model_sha256[:12]}…) is already version "
            + ", ".join(map(str, same))
        )
    echo(
        f"registered {version.group} version {version.version} ({version.status}): "
        f"{model}" + (" with its preprocessing" if found else "")
        + f"; approve it with `python -m training approve --version {version.version}"
        + (" --target aws`" if target == "aws" else "`")
    )  # fmt: skip
    return version


def check_register_waits(register: bool, no_wait: bool) -> None:
    """``--register`` needs the job's model, which ``--no-wait`` returns before: refused
    before anything is uploaded or started, not after the job was started."""
    if register and no_wait:
        from training.errors import Problem, ValidationError

        raise ValidationError(
            [
                Problem(
                    "--register",
                    "with --no-wait the command ends before the job has a model to register",
                    "drop --no-wait (the command waits for the job), or drop --register",
                )
            ]
        )


def register_job(record, project: str, profile, region, echo) -> ModelVersion:
    """``train`` / ``tune --target aws --register``: the job's model (its model record)
    becomes a version of the project's model package group, pending approval."""
    from training.aws.registry import AwsRegistry

    if record is None or record.model_data_url is None:  # the CLI refuses this before the job
        check_register_waits(True, True)
    version = AwsRegistry.open(project, profile, region).register_trained(record)
    echo(
        f"registered {version.group} version {version.version} ({version.status}); approve "
        f"it with `python -m training approve --target aws --version {version.version}`"
    )
    return version


def _register(args) -> int:
    register(
        args.target, args.model, args.preprocessing, args.registry, args.project,
        args.profile, args.region, print,
    )  # fmt: skip
    return 0


def _set_status(args, status: str) -> int:
    registry = open_registry(args.target, args.registry, args.project, args.profile, args.region)
    version = registry.set_status(args.version, status, args.reason)
    print(f"{version.group} version {version.version}: {version.status}")
    return 0


def _list(args) -> int:
    registry = open_registry(args.target, args.registry, args.project, args.profile, args.region)
    versions = registry.versions()
    if args.json:
        print(json.dumps([v.to_json() for v in versions], indent=2))
        return 0
    if not versions:
        where = " --target aws" if args.target == "aws" else ""
        print(
            f"no versions registered yet: python -m training register --model M/model.tar.gz{where}"
        )
        return 0
    for line in table(versions):
        print(line)
    return 0


def table(versions: list[ModelVersion]) -> list[str]:
    """One line a version: number, status, when and by whom, key metrics, the model's hash."""
    lines = [f"{'version':>7}  {'status':<21}  {'created':<25}  {'by':<12}  metrics"]
    for v in versions:
        metrics = ", ".join(f"{k} {val:.4g}" for k, val in v.listed_metrics().items()) or "-"
        lines.append(
            f"{v.version:>7}  {v.status:<21}  {v.created:<25}  {(v.created_by or '-'):<12}  "
            f"{metrics}  sha256 {v.model_sha256[:12]}"
            + (f"  ({v.approval_description})" if v.approval_description else "")
        )
    return lines


def _registry_flags(parser, target, aws_flags, local_path) -> None:
    target(parser, "the local registry (a folder)")
    parser.add_argument(
        "--registry",
        type=local_path,
        help="local: the registry folder (unset: models/registry in the project)",
    )
    aws_flags(parser)


def add_parsers(sub, formatter, aws_flags, target, local_path, count) -> None:
    """The four commands' flags (the CLI's shared builders passed in, one style)."""
    r = sub.add_parser(
        "register",
        help="register a model as a new version, pending approval",
        formatter_class=formatter,
    )
    r.add_argument("--model", required=True, type=local_path, help="a Linear Learner model.tar.gz")
    r.add_argument(
        "--preprocessing",
        type=local_path,
        help="the preprocessing.json it was trained behind (unset: the one beside the model)",
    )
    _registry_flags(r, target, aws_flags, local_path)
    r.set_defaults(func=_register)
    for name, status, verb in (("approve", APPROVED, "approve"), ("reject", REJECTED, "reject")):
        a = sub.add_parser(name, help=f"{verb} a registered version", formatter_class=formatter)
        a.add_argument("--version", type=count(1), required=True, help="the version number")
        a.add_argument("--reason", help="why (kept as the version's approval description)")
        _registry_flags(a, target, aws_flags, local_path)
        a.set_defaults(func=lambda args, status=status: _set_status(args, status))
    ls = sub.add_parser(
        "registry", help="list the registered versions and their status", formatter_class=formatter
    )
    ls.add_argument("--json", action="store_true", help="every field of every version, as JSON")
    _registry_flags(ls, target, aws_flags, local_path)
    ls.set_defaults(func=_list)
