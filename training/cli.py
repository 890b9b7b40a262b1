"""Command line: ``python -m training {validate,prepare,train,predict,serve,inspect,deploy,…}``.

User mistakes (bad data, bad hyperparameters, missing files, a closed port, a closed pipe) exit
with a message that says what to fix, never a traceback: every :class:`training.errors.UserError`
and every OSError is caught here.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
from pathlib import Path

from training import content_types
from training.aws.instance_types import DEFAULT as DEFAULT_INSTANCE_TYPE
from training.aws.naming import DEFAULT_PROJECT, endpoint_name
from training.core.losses import PREDICTOR_TYPES
from training.errors import Problem, UserError, ValidationError
from training.local.server import SERVING_PORT


def _aws_errors():
    """Credentials, permissions, throttling: the user's to fix, not a traceback."""
    try:
        import botocore.exceptions as bx
    except ImportError:  # pragma: no cover - boto3 is a runtime dependency
        return ()
    return (bx.BotoCoreError, bx.ClientError)


def _validate(args) -> int:
    from training.data import channel_checks

    problems = []
    for ct in args.content_type or []:
        problems += channel_checks.check_content_type(ct, "--content-type")
    if problems:
        raise ValidationError(problems)
    results = channel_checks.validate_channels(
        args.files, args.predictor_type, args.feature_dim, args.num_classes
    )
    for r in results:
        print(
            f"ok  {r.path}  {r.format} ({r.content_type}), {r.rows} rows, "
            f"feature_dim {r.feature_dim}"
        )
    print(f"{len(results)} file(s) pass the Linear Learner preflight checks.")
    return 0


def _prepare(args) -> int:
    from training.data.prepare import PrepareConfig, prepare

    config = PrepareConfig(
        data=args.data,
        label=args.label,
        predictor_type=args.predictor_type,
        out=args.out,
        fmt=args.format,
        seed=args.seed,
        fractions=tuple(args.split),
        positive_class=args.positive_class,
        drop=tuple(args.drop or ()),
        drop_unlabeled=args.drop_unlabeled,
        chunk_rows=args.chunk_rows,
        fit_sample_rows=args.fit_sample_rows,
        shard_bytes=int(args.shard_mb * (1 << 20)) if args.shard_mb else None,
        show_progress=not args.quiet,
    )
    manifest = prepare(config)
    used = sum(channel.rows for channel in manifest.channels.values())
    print(f"prepared {used} of {manifest.source.rows} rows of {args.data} -> {args.out}/")
    for name, channel in manifest.channels.items():
        print(
            f"  {name:<10} {channel.rows:>9} rows  {channel.content_type}  "
            f"{', '.join(channel.files)}"
        )
    print(f"  feature_dim {manifest.feature_dim}; manifest: {args.out}/manifest.json")
    return 0


def _train(args) -> int:
    from training.core.hyperparameters import parse_assignments

    if args.register and args.target == "local":  # where it goes, found before training
        from training.registry_commands import open_registry

        open_registry("local", args.registry, args.project, None, None)

    overrides = parse_assignments(args.hyperparameters)
    if args.target == "aws":
        from training.aws.job import AwsTrainConfig, train_aws
        from training.registry_commands import check_register_waits

        check_register_waits(args.register, args.no_wait)

        record = train_aws(
            AwsTrainConfig(
                data_dir=args.data_dir,
                bucket=args.bucket,
                role_arn=args.role,
                project=args.project,
                instance_type=args.instance_type,
                instance_count=args.instance_count,
                max_runtime_s=args.max_runtime,
                hyperparameters=overrides,
                profile=args.profile,
                region=args.region,
                wait=not args.no_wait,
                show_progress=not args.quiet,
            )
        )
        print(json.dumps(record.to_json(), indent=2))
        if args.register:
            _register_on_aws(args, record)
        return 0
    from training.local.trainer import train_local

    record = train_local(
        args.data_dir,
        args.out,
        overrides,
        seed=args.seed,
        show_progress=not args.quiet,
        echo=(lambda line: None) if args.quiet else print,
    )
    metrics = record.metrics
    print(f"model: {args.out}/model.tar.gz  ({record.training_seconds:.2f}s)")
    for name in sorted(metrics):
        print(f"  {name:<42} {metrics[name]:.6g}")
    if args.register:
        _register_trained(args, Path(args.out) / "model.tar.gz")
    return 0


def _register_trained(args, model: Path) -> None:
    """``--register``: the model just trained becomes a registry version, pending approval."""
    from training.registry_commands import register

    register("local", model, None, args.registry, args.project, None, None, print)


def _register_on_aws(args, record) -> None:
    from training.registry_commands import register_job

    register_job(record, args.project, args.profile, args.region, print)


def _register_flags(parser) -> None:
    parser.add_argument(
        "--register",
        action="store_true",
        help="register the model (local: the local registry; aws: the project's model "
        "package group), pending approval",
    )
    parser.add_argument(
        "--registry",
        type=_local_path,
        help="with --register: the registry folder (unset: models/registry in the project)",
    )


def _run(args) -> int:
    from training.core.hyperparameters import parse_assignments

    overrides = parse_assignments(args.hyperparameters)
    from training.run import DEFAULT_DATA, RunConfig, run_aws, run_local

    config = RunConfig(
        out=args.out,
        hyperparameters=overrides,
        seed=args.seed,
        synth=not args.no_synth,
        show_progress=not args.quiet,
        tune=args.tune,
    )
    if args.tune and args.target == "aws":
        raise ValidationError(
            [
                Problem(
                    "--tune",
                    "run tunes locally only",
                    "tune on SageMaker with `python -m training tune --target aws`, then `deploy`",
                )
            ]
        )
    if args.data:
        if not (args.label and args.predictor_type):
            raise ValidationError(
                [
                    Problem(
                        "--data",
                        "a CSV of your own needs --label and --predictor-type too",
                        "add both",
                    )
                ]
            )
        config.data, config.label, config.predictor_type = (
            args.data,
            args.label,
            args.predictor_type,
        )
        config.drop_unlabeled = args.drop_unlabeled
    else:
        print(
            f"dataset: the bundled {DEFAULT_DATA.name} (Palmer penguins; label 'sex', binary; "
            "rows without a label are left out)"
        )
    config.positive_class = args.positive_class
    config.target, config.project = args.target, args.project
    config.profile, config.region = args.profile, args.region
    summary = run_aws(config) if args.target == "aws" else run_local(config)
    m = summary.metrics
    print(f"\ndone in {summary.total_seconds:.1f}s. Everything is in {summary.out}/:")
    print(f"  report      {summary.report}")
    print(f"  model       {summary.model}")
    print(f"  predictions {summary.predictions}")
    print(f"  summary     {summary.out}/summary.json (every metric, by channel)")
    if summary.cdk_out:
        print(f"  cdk.out     {summary.cdk_out}")
    headline = [
        k
        for k in (
            "test:binary_classification_accuracy",
            "test:roc_auc_score",
            "test:multiclass_accuracy",
            "test:mse",
            "test:absolute_loss",
        )
        if k in m
    ]
    for k in headline:
        print(f"  {k:<38} {m[k]:.4f}")
    return 0


def _audit(args) -> int:
    from training.aws import audit
    from training.aws.session import session

    sess = session(args.profile, args.region)
    for note in audit.stale_pending(sess, args.project):
        print(f"note: {note}")
    found = audit.find_leftovers(sess, args.project)
    for item in (item for item in found if item.deleting):  # on its way out: not counted
        print(f"going: {item}")
    left = [item for item in found if not item.deleting]
    if not left:
        print(f"nothing billable of project '{args.project}' left in {sess.region_name}")
        return 0
    print(f"{len(left)} resource(s) of project '{args.project}' in {sess.region_name}:")
    for item in left:
        print(f"  {item}")
    if not args.delete:
        print("run again with --delete to remove them")
        return 1
    return 1 if audit.delete_and_recheck(sess, args.project, found) else 0


def _predict(args) -> int:
    from training import predict
    from training.core.featurizer import Featurizer, PreprocessingError
    from training.core.metrics import DEFAULT_PARAMS
    from training.data.raw_files import has_header
    from training.progress import progress

    params = DEFAULT_PARAMS  # the model's F-beta and top-k for the metrics, when it is at hand
    served = None
    if args.target == "local" and not args.port:
        if not args.model:
            raise ValidationError(
                [
                    Problem(
                        "--target local",
                        "no endpoint to call",
                        "pass --model model.tar.gz or s3://… (a local endpoint is started "
                        "for the run) or --port of a running one",
                    )
                ]
            )
        served = _served(args)
        params = served.model.metrics_params
        featurizer = served.featurizer
    elif args.preprocessing and not args.no_preprocessing:
        try:
            featurizer = Featurizer.load(args.preprocessing)
        except PreprocessingError as err:
            raise ValidationError(
                [Problem(args.preprocessing, str(err), "check the path")]
            ) from None
    else:
        featurizer = None
    raw = featurizer is not None and has_header(Path(args.input), featurizer)
    records = not raw and predict.input_format(Path(args.input)) == "recordio"  # streamed
    content_type = args.content_type or (content_types.RECORDIO if records else content_types.CSV)
    if raw:
        rows = predict.read_raw(args.input, featurizer, args.labelled, args.id_column)
        y = rows.label
    elif not records:
        X, y = predict.read_input(args.input, args.labelled)
    limits = predict.REALTIME  # the local endpoint's: a real-time endpoint's
    with contextlib.ExitStack() as stack:
        if args.target == "aws":
            from training.aws.session import deployed_endpoint, session
            from training.endpoint_payload import endpoint_limits

            sess = session(args.profile, args.region)
            name = args.endpoint or deployed_endpoint(sess, args.project)
            invoke, limits = predict.aws_invoker(sess, name), endpoint_limits(sess, name)
        elif args.port:
            invoke = predict.local_invoker("127.0.0.1", args.port)
        else:
            from training.local.server import serving

            port = stack.enter_context(serving(served))
            invoke = predict.local_invoker("127.0.0.1", port)
        if records:  # checked against the endpoint's own limits, then sent as it streams
            source = predict.scan_recordio(Path(args.input), args.labelled, limits.request_budget)
        total = len(rows) if raw else source.rows if records else X.shape[0]
        bar = stack.enter_context(
            contextlib.closing(progress(total, "predict", "rows", enabled=not args.quiet))
        )
        if raw:
            predictions = predict.predict_raw(invoke, rows, featurizer, limits, bar)
        elif records:
            predictions = predict.predict_recordio(invoke, source, content_type, limits, bar=bar)
            y = source.y
        else:
            predictions = predict.predict(invoke, X, content_type, limits, bar=bar)
    out = args.out or predict.default_output(Path(args.input), ".csv" if raw else ".jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    if raw:
        predict.write_predictions_csv(
            out, predictions, rows.ids, rows.id_name, y, rows.label_name, featurizer.classes
        )
    else:
        predict.write_predictions(out, predictions)
    print(f"{len(predictions)} predictions -> {out}")
    if y is not None:
        unit = "record" if records else "row"
        for name, value in predict.metrics_for(predictions, y, params, args.input, unit).items():
            print(f"  test:{name:<34} {value:.6g}")
    return 0


def _deploy_all(args) -> int:
    from training.aws.deploy import deploy_all

    deploy_all(
        args.data_dir,
        args.project,
        args.profile,
        args.region,
        args.instance_type,
        record=args.record,
        **_stack_options(args),
    )
    return 0


def _stack_options(args) -> dict:
    """deploy's and deploy-all's ``-c`` options (plus CDK_ARGS's) and ``--replace-endpoint``."""
    import os

    from training.aws import deploy_options

    given = deploy_options.given(args.context, os.environ.get("CDK_ARGS", ""))
    return {"options": given, "replace_endpoint": args.replace_endpoint}


def _destroy_all(args) -> int:
    from training.aws.deploy import destroy_all

    return 1 if destroy_all(args.project, args.profile, args.region) else 0


def _serve(args) -> int:
    from training.local.server import serve

    if args.approved:
        args.model, args.preprocessing = _approved_model(args)
    elif args.model is None:
        raise ValidationError(
            [Problem("serve", "no model to serve", "pass --model M/model.tar.gz or --approved")]
        )
    served = _served(args)
    quiet = (lambda line: None) if args.quiet else None  # -q: no request log either
    serve(served, args.model, args.host, args.port, args.endpoint_name, quiet)
    return 0


def _approved_model(args) -> tuple[str, str | None]:
    """The latest Approved version of the local registry: its model and preprocessing."""
    from training.core.registry import latest_approved
    from training.registry_commands import open_registry

    if args.model is not None:
        raise ValidationError(
            [Problem("--approved", "serves the registry's model", "drop --model, or --approved")]
        )
    registry = open_registry("local", args.registry, DEFAULT_PROJECT, None, None)
    version = registry.verified(latest_approved(registry.versions()))
    print(f"serving {version.group} version {version.version} (Approved): {version.model}")
    return version.model, version.preprocessing


def _transform(args) -> int:
    from training.batch_transform import TransformConfig, detected_content_type

    config = TransformConfig(
        input=args.input,
        out=args.out,
        content_type=args.content_type or content_types.CSV,
        accept=args.accept,
        max_payload_mb=args.max_payload_mb,
        show_progress=not args.quiet,
    )
    config.check()  # before a model is downloaded or anything is read
    config = dataclasses.replace(
        config, content_type=detected_content_type(args.input, args.content_type)
    )
    if args.target == "aws":
        from training.aws.batch_transform import AwsTransform, transform_aws

        job = transform_aws(
            config,
            AwsTransform(
                project=args.project,
                instance_type=args.instance_type,
                instance_count=args.instance_count,
                profile=args.profile,
                region=args.region,
                model_path=str(args.model) if args.model else None,
                preprocessing=args.preprocessing,
                use_preprocessing=not args.no_preprocessing,
            ),
        )
        print(f"transform job {job.name}: {job.status}; output {job.output}")
        for path in job.downloaded:
            print(f"  {path}")
        return 0
    if not args.model:
        raise ValidationError(
            [Problem("--target local", "no model to score with", "pass --model model.tar.gz")]
        )
    from training.local.batch_transform import transform_local

    served = _served(args)
    for path in transform_local(served, config):
        print(f"{path}")
    return 0


def _inspect(args) -> int:
    from training import inspection

    served = _served(args)
    names, classes = inspection.feature_names(args.manifest)
    if names is None and served.featurizer is not None:  # the preprocessing names them
        names, classes = served.featurizer.feature_names, list(served.classes) or None
    summary = inspection.summarize(
        served.model, args.model, names, classes, args.top, served.featurizer
    )
    print(inspection.to_json(summary) if args.json else inspection.to_text(summary))
    return 0


def _deploy(args) -> int:
    from training.aws.deploy import deploy_approved, deploy_model

    if args.version is not None and not args.approved:
        raise ValidationError(
            [Problem("--version", "picks a registry version", "add --approved (or drop it)")]
        )
    if args.approved:
        if args.model is not None:
            raise ValidationError(
                [Problem("--approved", "deploys the registry's version", "drop --model")]
            )
        deploy_approved(
            args.project, args.profile, args.region, args.record, args.data_dir,
            version_number=args.version, **_stack_options(args),
        )  # fmt: skip
        return 0
    if args.model is None:
        raise ValidationError(
            [Problem("deploy", "no model to deploy", "pass --model M/model.tar.gz or --approved")]
        )
    deploy_model(
        args.model,
        project=args.project,
        profile=args.profile,
        region=args.region,
        record=args.record,
        data_dir=args.data_dir,
        show_progress=not args.quiet,
        preprocessing=args.preprocessing,
        use_preprocessing=not args.no_preprocessing,
        **_stack_options(args),
    )
    return 0


def _count(minimum: int):
    """An argparse type: an integer of at least ``minimum`` (argparse then names the flag)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def _served(args):
    """The ``--model`` the command serves, behind its preprocessing (by the flags)."""
    from training.model_source import load_pipeline

    return load_pipeline(
        args.model,
        args.preprocessing,
        not args.no_preprocessing,
        args.profile,
        args.region,
        not args.quiet,
    )


def _preprocessing_flags(parser) -> None:
    """Where the model's preprocessing is: beside it by default (what train writes)."""
    parser.add_argument(
        "--preprocessing",
        help="the preprocessing.json the model was trained behind (default: the one beside "
        "the model file; then requests carry raw rows)",
    )
    parser.add_argument(
        "--no-preprocessing",
        action="store_true",
        help="serve encoded vectors, as Linear Learner alone does, even with preprocessing",
    )


QUIET_HELP = "no progress (bars or lines) and no notices"


def _local_path(text: str) -> Path:
    """A path argument read or written on this machine. A URL is refused by name: ``Path``
    would fold ``s3://bucket/x.csv`` into ``s3:/bucket/x.csv`` and report that as missing."""
    if "://" in text:
        raise argparse.ArgumentTypeError(
            f"'{text}': local files only here; copy it first (aws s3 cp {text} .) and pass "
            "the local path"
        )
    return Path(text)


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each flag's default after its help (a flag left unset, or a switch that is off, has
    none to show: its help says what unset means); epilogs kept as written."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _aws_flags(parser, project_help: str = "the project: its stacks, resources and tags") -> None:
    group = parser.add_argument_group("AWS")
    group.add_argument("--project", default=DEFAULT_PROJECT, help=project_help)
    group.add_argument(
        "--profile", help="AWS credentials profile (unset: the environment's credentials)"
    )
    group.add_argument("--region", help="AWS region (unset: the profile's, or AWS_REGION)")


def _target(parser, what: str) -> None:
    parser.add_argument(
        "--target",
        choices=("local", "aws"),
        default="local",
        help=f"local: {what} on this machine; aws: on SageMaker",
    )


def _predictor_type(parser, required: bool = True) -> None:
    parser.add_argument(
        "--predictor-type",
        required=required,
        choices=PREDICTOR_TYPES,
        help="what the label is: two classes, three or more, or a number",
    )


def _hyperparameters_epilog() -> str:
    """Every hyperparameter ``--hyperparameters`` takes, its rule and default, from the one
    table (``training/core/hyperparameters.py``)."""
    from training.core import hyperparameters as h

    lines = ["hyperparameters (SageMaker's names; NAME=VALUE, values as SageMaker takes them):"]
    for name, spec in h.TABLE.items():
        default = spec.default
        if default is None or default is h.REQUIRED:
            default = "from the data (prepare's manifest)"
        elif isinstance(default, bool):
            default = str(default).lower()
        lines.append(f"  {name:<44} {h.rule(name)}; default {default}")
    return "\n".join(lines)


def _add_run(sub) -> None:
    r = sub.add_parser(
        "run",
        help="the whole pipeline: prepare, train, serve, predict, report",
        formatter_class=_Help,
        epilog=_hyperparameters_epilog(),
    )
    _target(r, "train and serve")
    r.add_argument("--out", required=True, type=_local_path, help="the run's output folder")
    r.add_argument(
        "--data", type=_local_path, help="your CSV with a header (default: the bundled penguins)"
    )
    r.add_argument("--label", help="label column of --data")
    _predictor_type(r, required=False)
    r.add_argument("--positive-class", help="binary: the label value that becomes 1")
    r.add_argument(
        "--drop-unlabeled",
        action="store_true",
        help="leave out rows of --data whose label is empty (the bundled data: always)",
    )
    r.add_argument("--hyperparameters", nargs="*", metavar="NAME=VALUE", help="see the list below")
    r.add_argument("--seed", type=_count(0), default=0, help="split and training seed")
    r.add_argument("--no-synth", action="store_true", help="skip synthesizing the CDK app")
    r.add_argument(
        "--tune",
        type=_count(0),
        default=0,
        metavar="N",
        help="local: N tuning jobs (learning_rate, wd; one model each) choose the model "
        "(fewer than ~16 rarely beat the default packed run); 0: one packed run",
    )
    _aws_flags(r, "aws: the deployed project's name")
    r.set_defaults(func=_run)


def _add_prepare(sub) -> None:
    p = sub.add_parser(
        "prepare",
        help="raw CSV -> train/validation/test channels + manifest",
        formatter_class=_Help,
    )
    p.add_argument("--data", required=True, type=_local_path, help="raw CSV with a header row")
    p.add_argument("--label", required=True, help="name of the label column")
    _predictor_type(p)
    p.add_argument("--out", required=True, type=_local_path, help="output folder")
    p.add_argument(
        "--format",
        choices=("recordio", "csv"),
        default="recordio",
        help="channel files: RecordIO-protobuf, or label-first headerless CSV",
    )
    p.add_argument("--seed", type=_count(0), default=0, help="the split's seed")
    p.add_argument(
        "--split",
        type=float,
        nargs=3,
        default=(0.7, 0.15, 0.15),
        metavar=("TRAIN", "VALIDATION", "TEST"),
        help="fractions of the rows, stratified by class for classifiers",
    )
    p.add_argument("--positive-class", help="binary: the label value that becomes 1")
    p.add_argument("--drop", action="append", metavar="COLUMN", help="exclude a column")
    p.add_argument(
        "--drop-unlabeled",
        action="store_true",
        help="drop rows whose label is empty (otherwise they are refused)",
    )
    p.add_argument("--chunk-rows", type=_count(1), help=argparse.SUPPRESS)
    p.add_argument(
        "--fit-sample-rows",
        type=_count(2),
        help="fit the preprocessor on at most this many training rows (unset: 200 000, "
        "fewer for files of over 25 columns or with free text)",
    )
    p.add_argument(
        "--shard-mb",
        type=_positive_number,
        help="split channel files into shards of about this size (multi-instance; unset: "
        "one file a channel)",
    )
    p.set_defaults(func=_prepare)


def _add_validate(sub) -> None:
    v = sub.add_parser(
        "validate", help="preflight-check channel files (CSV or RecordIO)", formatter_class=_Help
    )
    v.add_argument(
        "files", nargs="+", type=_local_path, help="channel files or folders (format is detected)"
    )
    _predictor_type(v)
    v.add_argument("--feature-dim", type=_count(1), help="the feature_dim hyperparameter, if set")
    v.add_argument("--num-classes", type=_count(3), help="num_classes (multiclass_classifier)")
    v.add_argument(
        "--content-type", action="append", help="a channel ContentType you plan to use; checked too"
    )
    v.set_defaults(func=_validate)


def _training_job_flags(parser, each: str = ""):
    """The ``--target aws`` group with what a SageMaker training job runs on and under (for
    ``train``'s job, and for each of ``tune``'s: ``each`` says so in the help)."""
    group = parser.add_argument_group("--target aws")
    group.add_argument("--bucket", help="S3 bucket (unset: the base stack's BucketName)")
    group.add_argument("--role", help="execution role (unset: the base stack's RoleArn)")
    group.add_argument(
        "--instance-type", default=DEFAULT_INSTANCE_TYPE, help=f"instance type{each}"
    )
    group.add_argument("--instance-count", type=_count(1), default=1, help=f"instances{each}")
    group.add_argument(
        "--max-runtime",
        type=_count(1),
        default=3600,
        help=f"seconds before SageMaker stops it{each}",
    )
    return group


def _add_train(sub) -> None:
    t = sub.add_parser(
        "train",
        help="train Linear Learner on prepared channels",
        formatter_class=_Help,
        epilog=_hyperparameters_epilog(),
    )
    _target(t, "the local Linear Learner")
    t.add_argument("--data-dir", required=True, type=_local_path, help="the folder prepare wrote")
    t.add_argument("--out", required=True, type=_local_path, help="where model.tar.gz goes")
    t.add_argument(
        "--hyperparameters",
        nargs="*",
        metavar="NAME=VALUE",
        help="Linear Learner hyperparameters, SageMaker's names and values: see the list below",
    )
    t.add_argument("--seed", type=_count(0), default=0, help="local: the trainer's seed")
    aws_flags = _training_job_flags(t)
    aws_flags.add_argument(
        "--no-wait", action="store_true", help="start the job and return without polling it"
    )
    _register_flags(t)
    _aws_flags(t)
    t.set_defaults(func=_train)


def _add_tune(sub) -> None:
    from training import tune

    tune.add_parser(sub, _Help, _aws_flags, _target, _local_path, _count, _training_job_flags)
    _register_flags(sub.choices["tune"])


def _add_registry(sub) -> None:
    from training import registry_commands

    registry_commands.add_parsers(sub, _Help, _aws_flags, _target, _local_path, _count)


def _add_inspect(sub) -> None:
    i = sub.add_parser(
        "inspect",
        help="what a Linear Learner model is and its largest weights",
        formatter_class=_Help,
    )
    i.add_argument("model", help="model.tar.gz or model_algo-1; a path or s3://…")
    i.add_argument(
        "--manifest",
        type=_local_path,
        help="prepare's manifest.json (or its folder): feature names",
    )
    i.add_argument("--top", type=_count(0), default=10, help="how many of the largest weights")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.add_argument("--profile", help="s3:// models: credentials profile")
    i.add_argument("--region", help="s3:// models: region of the credentials")
    _preprocessing_flags(i)
    i.set_defaults(func=_inspect)


def _add_serve(sub) -> None:
    s = sub.add_parser(
        "serve",
        help="serve a Linear Learner model like a SageMaker endpoint",
        formatter_class=_Help,
    )
    s.add_argument(
        "--model",
        help="model.tar.gz or model_algo-1, trained here or by SageMaker; a path or s3://…",
    )
    s.add_argument(
        "--approved",
        action="store_true",
        help="serve the local registry's latest Approved version instead of --model",
    )
    s.add_argument(
        "--registry",
        type=_local_path,
        help="with --approved: the registry folder (unset: models/registry in the project)",
    )
    s.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)"
    )
    s.add_argument("--port", type=_count(0), default=SERVING_PORT, help="0: a free port")
    s.add_argument(
        "--endpoint-name",
        default=endpoint_name(DEFAULT_PROJECT),
        help="the name the SageMaker Runtime API answers to (POST /endpoints/NAME/invocations)",
    )
    s.add_argument("--profile", help="s3:// models: credentials profile")
    s.add_argument("--region", help="s3:// models: region of the credentials")
    _preprocessing_flags(s)
    s.set_defaults(func=_serve)


def _add_predict(sub) -> None:
    pr = sub.add_parser(
        "predict", help="send rows to the deployed or the local endpoint", formatter_class=_Help
    )
    _target(pr, "a local endpoint")
    pr.add_argument(
        "--input",
        required=True,
        type=_local_path,
        help="a raw CSV with a header (a model with preprocessing), or encoded features: a "
        "CSV without a header, or RecordIO",
    )
    pr.add_argument(
        "--labelled",
        action="store_true",
        help="print test metrics: raw input's label column, an encoded CSV's first column, "
        "or the RecordIO records' labels (metrics are printed whenever records carry labels)",
    )
    pr.add_argument(
        "--content-type",
        choices=(content_types.CSV, content_types.JSON, content_types.RECORDIO),
        help="encoded input: how requests carry it (unset: RecordIO input as its own records, "
        "CSV input as CSV)",
    )
    pr.add_argument(
        "--out",
        type=_local_path,
        help="unset: INPUT.predictions.csv (raw rows) or .jsonl beside the input; for an "
        "input inside a prepared data folder, in predictions/ beside that folder",
    )
    pr.add_argument(
        "--model", help="local: a Linear Learner model.tar.gz (path or s3://…) to serve for the run"
    )
    pr.add_argument("--port", type=_count(1), help="local: port of a running local endpoint")
    pr.add_argument(
        "--id-column",
        help="raw input: a column carried into predictions.csv to join it back (unset: the "
        "row's number)",
    )
    _preprocessing_flags(pr)
    pr.add_argument(
        "--endpoint", help="aws: endpoint name (unset: the one the endpoint stack deployed)"
    )
    _aws_flags(pr)
    pr.set_defaults(func=_predict)


def _add_transform(sub) -> None:
    x = sub.add_parser(
        "transform",
        help="score whole files without an endpoint (SageMaker Batch Transform)",
        formatter_class=_Help,
    )
    x.add_argument("--input", required=True, help="a file or folder (local), or s3://prefix/")
    x.add_argument("--out", required=True, help="a folder (local), or s3://prefix/ (aws)")
    _target(x, "a transform")
    x.add_argument(
        "--model",
        help="model.tar.gz (or local: model_algo-1), a path or s3://…; aws: unset, the "
        "model the project's endpoint serves",
    )
    x.add_argument(
        "--content-type",
        help="of the input records (unset: detected from the files, as validate does; "
        "CSV for an s3:// input)",
    )
    x.add_argument(
        "--accept", default=content_types.JSONLINES, help="answer format (no CSV: LL has none)"
    )
    x.add_argument("--max-payload-mb", type=float, default=6.0, help="MaxPayloadInMB per request")
    x.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE, help="aws: the job's")
    x.add_argument("--instance-count", type=_count(1), default=1, help="aws: the job's")
    _preprocessing_flags(x)
    _aws_flags(x, "aws: the deployed model's project")
    x.set_defaults(func=_transform)


def _add_deploy(sub) -> None:
    m = sub.add_parser(
        "deploy",
        help="deploy a model made elsewhere (e.g. train --target local) to SageMaker",
        formatter_class=_Help,
    )
    m.add_argument("--model", type=_local_path, help="a Linear Learner model.tar.gz")
    m.add_argument(
        "--approved",
        action="store_true",
        help="deploy the latest Approved version of the project's model registry instead",
    )
    m.add_argument(
        "--version",
        type=_count(1),
        help="with --approved: this version (refused unless it is Approved)",
    )
    m.add_argument(
        "--data-dir",
        type=_local_path,
        help="prepared data: the smoke prediction sends its test rows",
    )
    m.add_argument(
        "--record",
        type=_local_path,
        help="where the model is recorded (unset: the project's models/latest.json, which "
        "the endpoint stack reads)",
    )
    _preprocessing_flags(m)
    _stack_option_flags(m)
    _aws_flags(m)
    m.set_defaults(func=_deploy)


def _stack_option_flags(p) -> None:
    p.add_argument(
        "-c",
        "--context",
        action="append",
        metavar="KEY=VALUE",
        help="a stack option (cdk.json context, e.g. endpoint_mode=serverless); kept for "
        "later deploys (docs/aws.md)",
    )
    p.add_argument(
        "--replace-endpoint",
        action="store_true",
        help="confirm an endpoint_mode change: the endpoint is replaced, under a new name",
    )


def _add_deploy_all(sub) -> None:
    d = sub.add_parser(
        "deploy-all",
        help="base stack, training, endpoint, smoke prediction",
        formatter_class=_Help,
    )
    d.add_argument("--data-dir", required=True, type=_local_path, help="the folder prepare wrote")
    d.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE, help="training's")
    d.add_argument(
        "--record",
        type=_local_path,
        help="where the model is recorded (unset: the project's models/latest.json, which "
        "the endpoint stack reads)",
    )
    _stack_option_flags(d)
    _aws_flags(d)
    d.set_defaults(func=_deploy_all)


def _add_destroy_all(sub) -> None:
    x = sub.add_parser(
        "destroy-all", help="everything deployed, then the audit", formatter_class=_Help
    )
    _aws_flags(x)
    x.set_defaults(func=_destroy_all)


def _add_audit(sub) -> None:
    a = sub.add_parser(
        "audit", help="list (and --delete) billable leftovers of the project", formatter_class=_Help
    )
    a.add_argument(
        "--delete",
        action="store_true",
        help="delete what is listed (only what the project's tag and exact names prove ours)",
    )
    _aws_flags(a)
    a.set_defaults(func=_audit)


# the subcommands in the order of the work: the whole pipeline, then each stage in turn
COMMANDS = (
    _add_run,
    _add_prepare,
    _add_validate,
    _add_train,
    _add_tune,
    _add_registry,
    _add_inspect,
    _add_serve,
    _add_predict,
    _add_transform,
    _add_deploy,
    _add_deploy_all,
    _add_destroy_all,
    _add_audit,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Amazon SageMaker Linear Learner end to end: data, training, serving.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    for command in sub.choices.values():  # -q after the command too: `scripts/run.sh -q`
        command.add_argument(
            "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=QUIET_HELP
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("training").setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        return args.func(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except _aws_errors() as err:
        print(f"error: AWS said: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader of our output went away (``inspect --json | head``): nothing to say to it
        _quiet_stdout()
        return 0
    except ConnectionRefusedError as err:
        print(
            f"error: nothing answers there ({err.strerror}): is the endpoint running?",
            file=sys.stderr,
        )
        return 2
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        print(f"error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit raises no second BrokenPipeError."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
