"""The stack options a deploy was given once (``deploy -c endpoint_mode=serverless``), kept so
that every later deploy passes them again instead of reverting to cdk.json's defaults.

Why a file of our own, beside the model record, and not ``cdk.context.json``: the CDK CLI reads
context from the command line first, then cdk.json, then cdk.context.json
(node_modules/aws-cdk/lib/cli/user-configuration.js, ``contextSources``), so a value kept in
cdk.context.json never overrides a key cdk.json sets, and every option here is set in cdk.json;
and cdk.context.json is CDK's lookup cache, which ``cdk context --clear`` empties ("Clear all
context", AWS CDK v2 guide, ref-cli-cmd-context). Not the model record either: ``train
--target aws`` writes a new record for every job. So: ``deploy-options-<project>.json`` in the
record's folder, written after each successful ``cdk deploy``, read by the next deploy, and
by the CDK app itself when someone runs ``npx cdk deploy`` by hand (:func:`for_app`).

A deploy that changes an option prints each change before anything is deployed; one that
changes ``endpoint_mode`` is refused unless confirmed (``--replace-endpoint``): SageMaker does
not update a real-time endpoint to a serverless one in place ("Updating a real-time inference
endpoint to an on-demand serverless endpoint … is currently not supported", SageMaker DG,
"Update a serverless endpoint", serverless-endpoints-update.html), so a mode change replaces
the endpoint, and clients must be told its new name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from training.aws.naming import endpoint_name
from training.errors import Problem, ValidationError
from training.files import write_whole

# Settings keys a deploy decides itself (the model to serve, from --model / --approved /
# training) or takes from its own flags (--project, --region): never options to keep.
DEPLOY_DECIDES = frozenset(
    {
        "project",
        "region",
        "account",
        "model_record",
        "model_data_url",
        "image_uri",
        "featurizer_data_url",
        "model_package_arn",
        "predictor_type",
        "model_path",
        "preprocessing_path",
    }
)
MODE = "endpoint_mode"
REPLACE_FLAG = "--replace-endpoint"
# CDK context set by our own commands that run the CDK CLI (deploy, deploy-all, destroy-all,
# run's synth): they pass every option themselves, so the app does not read the kept file.
# Without it (``npx cdk deploy`` typed by hand) the app reads it: :func:`for_app`.
KEPT_CONTEXT = "kept_options"
CALLER_GIVES = "given"
CALLER_GIVES_ARGS = ("-c", f"{KEPT_CONTEXT}={CALLER_GIVES}")


def option_keys(settings_class=None) -> tuple[str, ...]:
    """Every CDK context key a deploy keeps: the stacks' settings (stacks/settings.py, their
    one home; the CDK app passes its own class) less what the deploy decides."""
    Settings = settings_class or _settings_class()  # noqa: N806 (a class)

    return tuple(f.name for f in fields(Settings) if f.name not in DEPLOY_DECIDES)


def _settings_class():
    """The CDK app's ``Settings`` (stacks/settings.py), imported from the project folder: the
    app is not part of the installed package, and ``linear-learner`` does not run from that
    folder (a console script's path is its own)."""
    import sys

    from training import project

    folder = str(project.root("deploy (the CDK app's settings, stacks/settings.py)"))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    from stacks.settings import Settings

    return Settings


def options_path(record: Path, project: str) -> Path:
    """Where the project's options are kept: beside the model record the endpoint reads."""
    return Path(record).resolve().parent / f"deploy-options-{project}.json"


@dataclass(frozen=True)
class Change:
    """One option whose deployed value this deploy changes."""

    key: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.key}: {self.before} -> {self.after}"


@dataclass(frozen=True)
class DeployOptions:
    """Context values given over cdk.json's defaults, as ``(key, value)`` pairs sorted by key
    (strings, as ``-c key=value`` gives them; stacks/settings.py parses and checks them)."""

    values: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, pairs: list[str] | None, flag: str = "-c") -> DeployOptions:
        """``key=value`` strings; an unknown key, a key the deploy decides, or no ``=`` is
        refused naming it and the fix."""
        keys = option_keys()
        values: dict[str, str] = {}
        problems = []
        for pair in pairs or []:
            key, sep, value = pair.partition("=")
            key = key.strip()
            if not sep or not key:
                problems.append(
                    Problem(f"{flag} {pair}", "not key=value", "e.g. -c endpoint_mode=serverless")
                )
            elif key in DEPLOY_DECIDES:
                problems.append(
                    Problem(
                        f"{flag} {key}",
                        "is decided by the deploy itself (the model it serves, its --project "
                        "and --region)",
                        "drop it; pass --model / --approved, --project, --region",
                    )
                )
            elif key not in keys:
                problems.append(
                    Problem(f"{flag} {key}", "is not a stack option", "one of " + ", ".join(keys))
                )
            else:
                values[key] = value.strip()
        if problems:
            raise ValidationError(problems)
        return cls(tuple(sorted(values.items())))

    @classmethod
    def load(cls, path: Path, keys: tuple[str, ...] | None = None) -> DeployOptions | None:
        """The options kept at ``path``; None when no deploy kept any there yet. A key that
        is not an option (of ``keys``, by default this version's :func:`option_keys`) is
        refused, not dropped: dropping it would quietly revert what it kept."""
        path = Path(path)
        try:
            if not path.exists() and not path.is_symlink():  # a dangling link is not "none"
                return None
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
                raise ValueError("not an object of strings")
        except (OSError, ValueError) as err:
            raise ValidationError(
                [Problem(str(path), f"not deploy options ({err})", "delete it and pass -c again")]
            ) from None
        keys = option_keys() if keys is None else keys
        unknown = sorted(k for k in doc if k not in keys)
        if unknown:
            shown = ", ".join(f"{k}={doc[k]}" for k in unknown)
            what = "is not a stack option" if len(unknown) == 1 else "are not stack options"
            fix = "delete or rename it in the file (the options: " + ", ".join(keys) + ")"
            raise ValidationError(
                [Problem(str(path), f"keeps {shown}, which {what} of this version", fix)]
            )
        return cls(tuple(sorted(doc.items())))

    def write(self, path: Path) -> Path:
        return write_whole(Path(path), (json.dumps(dict(self.values), indent=2) + "\n").encode())

    def over(self, kept: DeployOptions | None) -> DeployOptions:
        """These options on top of ``kept`` (what was given now wins)."""
        merged = dict(kept.values) if kept else {}
        merged.update(self.values)
        return DeployOptions(tuple(sorted(merged.items())))

    def context_args(self) -> list[str]:
        """The ``-c key=value`` arguments for ``cdk deploy``."""
        return [arg for key, value in self.values for arg in ("-c", f"{key}={value}")]

    def effective(self, defaults: dict) -> dict[str, str]:
        """Every option's value as the app will read it: these, else cdk.json's."""
        given = dict(self.values)
        known = [k for k in option_keys() if k in given or k in defaults]
        return {k: given.get(k, _text(defaults.get(k))) for k in known}


NO_OPTIONS = DeployOptions()


def _text(value) -> str:
    """A cdk.json value as ``-c`` would give it (JSON true -> "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def changes(before: dict[str, str], after: dict[str, str]) -> list[Change]:
    """The options whose value differs, by key."""
    return [
        Change(k, before.get(k, ""), after.get(k, ""))
        for k in sorted(set(before) | set(after))
        if before.get(k, "") != after.get(k, "")
    ]


def check_mode_change(found: list[Change], endpoint: str, replace: bool) -> None:
    """A mode change replaces the endpoint (a new name for clients): refused unless
    ``--replace-endpoint`` confirms it."""
    mode = next((c for c in found if c.key == MODE), None)
    if mode is None or replace:
        return
    raise ValidationError(
        [
            Problem(
                f"-c {MODE}={mode.after}",
                f"changes endpoint {endpoint} from {mode.before} to {mode.after}: SageMaker "
                "cannot change an endpoint's mode in place, so the deploy replaces it and "
                "the endpoint gets a new name (clients calling the old one must switch)",
                f"rerun with {REPLACE_FLAG} to confirm, or -c {MODE}={mode.before} to keep it",
            )
        ]
    )


@dataclass(frozen=True)
class OptionsPlan:
    """What a deploy passes to ``cdk deploy`` (kept options, plus what it was given) and
    where it keeps them once a deploy took them."""

    options: DeployOptions
    path: Path
    changes: tuple[Change, ...] = ()

    def keep(self) -> None:
        """After a successful ``cdk deploy``: the next deploy passes these again."""
        self.options.write(self.path)


def cdk_defaults(root: Path) -> dict:
    """cdk.json's context: the value of every option nobody gave."""
    return json.loads((Path(root) / "cdk.json").read_text()).get("context", {})


def deployed_mode(sess, project: str) -> tuple[str, str] | None:
    """The running endpoint's name (its stack's output) and mode (read from its endpoint
    config); None when no endpoint stack is deployed (nothing to replace)."""
    from training.aws import session as aws
    from training.aws.naming import Output, Stack, stack_name
    from training.endpoint_payload import variants_mode

    try:
        outputs = aws.stack_outputs(sess, stack_name(project, Stack.ENDPOINT))
    except ValidationError:
        return None
    config = outputs.get(Output.ENDPOINT_CONFIG)
    if not config:
        return None
    described = sess.client("sagemaker").describe_endpoint_config(EndpointConfigName=config)
    endpoint = outputs.get(Output.ENDPOINT) or endpoint_name(project)
    return endpoint, variants_mode(described.get("ProductionVariants", []))


def plan(
    sess,
    project: str,
    record: Path,
    given: DeployOptions,
    replace_endpoint: bool,
    echo,
) -> OptionsPlan:
    """The options this deploy passes: those kept by earlier deploys with ``given`` on top,
    checked as the CDK app checks them (stacks/settings.py), their changes to what is deployed
    printed, and a mode change refused unless confirmed. Runs before anything is uploaded or
    deployed, so a refusal leaves everything as it was."""
    Settings = _settings_class()  # noqa: N806 (a class)
    from training import project as project_folder

    path = options_path(record, project)
    kept = DeployOptions.load(path)
    options = given.over(kept)
    defaults = cdk_defaults(project_folder.root("the CDK app (cdk.json)"))
    context = {**defaults, **dict(options.values), "project": project, "region": sess.region_name}
    Settings.from_context(context.get)  # a bad value fails here, naming the key, not at synth
    before = (kept or DeployOptions()).effective(defaults)
    after = options.effective(defaults)
    running = deployed_mode(sess, project)
    endpoint, before[MODE] = running or (None, after.get(MODE, ""))  # none: chosen, not changed
    found = changes(before, after)
    if options.values:
        echo(f"    stack options ({path.name}): " + " ".join(options.context_args()))
    for change in found:
        echo(f"    this deploy changes {change}")
    check_mode_change(found, endpoint, replace_endpoint)  # found only with an endpoint
    return OptionsPlan(options, path, tuple(found))


def given(pairs: list[str] | None, cdk_args: str = "") -> DeployOptions:
    """The options a deploy was given: ``-c key=value`` flags, and stack options in
    ``CDK_ARGS`` (which ``cdk`` also receives, last, so they win there and here too)."""
    import shlex

    words = shlex.split(cdk_args)
    in_env = [
        words[i + 1]
        for i, word in enumerate(words[:-1])
        if word in ("-c", "--context") and words[i + 1].partition("=")[0] in option_keys()
    ]
    return DeployOptions.parse(in_env, "CDK_ARGS -c").over(DeployOptions.parse(pairs))


def check_servable(
    kept: OptionsPlan, project: str, region: str, raw_rows: bool, package_arn: str | None = None
) -> None:
    """The stacks' own refusal of this model under these options (a serverless endpoint
    cannot serve a serial inference pipeline: stacks/settings.py), raised before anything is
    uploaded or recorded instead of at synth, after both."""
    Settings = _settings_class()  # noqa: N806 (a class)
    from training import project as project_folder

    context = {
        **cdk_defaults(project_folder.root("the CDK app (cdk.json)")),
        **dict(kept.options.values),
        "project": project,
        "region": region,
    }
    if package_arn:
        context["model_package_arn"] = package_arn
    else:  # where it will be uploaded does not matter to the rule, only what it is
        context["model_data_url"] = "s3://bucket-to-be/model.tar.gz"
        if raw_rows:
            context["featurizer_data_url"] = "s3://bucket-to-be/featurizer.tar.gz"
    Settings.from_context(context.get).model_artifact()


def for_app(get, defaults: dict, keys: tuple[str, ...], root: Path, warn, check=None):
    """The CDK app's context getter when the CDK CLI runs it directly (``npx cdk deploy``
    typed by hand): the options a deploy kept come over cdk.json's defaults, so a bare deploy
    does not turn a serverless endpoint back into a real-time one. The CLI hands the app
    cdk.json and ``-c`` merged, so an option whose value is cdk.json's own counts as not given
    and takes the kept value; one given with ``-c`` as another value wins for that run (``-c``
    wins in CDK) and is said not to be kept. Both are said on stderr (``warn``). Our own
    commands pass every option and ``-c kept_options=given``: their context is used as is.
    ``check`` (the stacks' settings check) refusing a kept value is said naming the file."""
    if get(KEPT_CONTEXT) == CALLER_GIVES:
        return get
    from training.errors import UserError

    if check is not None:
        try:
            check(get)
        except UserError:  # the context's own mistake (a bad project name) is said first
            return get
    from training.aws.model_record import RECORD_FILE
    from training.aws.naming import DEFAULT_PROJECT

    project = str(get("project") or DEFAULT_PROJECT)
    record = Path(str(get("model_record") or RECORD_FILE))
    path = options_path(record if record.is_absolute() else Path(root) / record, project)
    kept = DeployOptions.load(path, keys)
    if kept is None:
        return get
    values, applied = {}, []
    for key, value in kept.values:
        given, default = _text(get(key)), _text(defaults.get(key))
        if given == default:
            values[key] = value
            if value != default:
                applied.append(f"{key}={value} (cdk.json: {default})")
        elif given != value:
            warn(
                f"-c {key}={given} overrides the kept {key}={value} for this run only, "
                f"unchecked; `python -m training deploy -c {key}={given}` checks and keeps it"
            )
    if applied:
        warn(
            f"stack options kept by deploy ({path}): {', '.join(applied)}; change one with "
            "`python -m training deploy -c key=value`"
        )
    merged = lambda key: values[key] if key in values else get(key)  # noqa: E731
    if applied and check is not None:
        try:  # the context alone passed: a refusal now is of a kept value
            check(merged)
        except UserError as err:
            raise _refused_kept(path, err) from None
    return merged


def _refused_kept(path: Path, err: Exception) -> ValidationError:
    """A kept value the stacks refuse, said naming the file: it is not on the command line
    nor in cdk.json, where the settings' message would send the user looking."""
    return ValidationError(
        [
            Problem(
                str(path),
                f"keeps a value the stacks refuse: {_one_line(err)}",
                "change it with `python -m training deploy -c key=value` (which checks it "
                "first), or fix it in the file",
            )
        ]
    )


def _one_line(err: Exception) -> str:
    """A settings refusal ("invalid CDK context:" and a list of problems) as one line."""
    text = str(err).removeprefix("invalid CDK context:").strip()
    return "; ".join(line.strip().removeprefix("- ") for line in text.splitlines() if line.strip())
