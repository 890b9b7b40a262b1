"""The ``tune`` command: its flags, turned into one :class:`training.core.tuning.TuningSpec`
(checked before any data is read or any call made), run by the local tuner or by SageMaker.

``run --tune N`` builds its spec here too.
"""

from __future__ import annotations

from pathlib import Path

from training.core import hyperparameters as hps
from training.core import tuning
from training.core.metrics import CHANNELS
from training.data.manifest import Manifest
from training.errors import TuningError


def spec_for(
    data_dir: Path,
    ranges: list[str] | None,
    ranges_file: Path | None = None,
    *,
    max_jobs: int | None,
    max_parallel_jobs: int,
    objective: str | None = None,
    strategy: str = "bayesian",
    early_stopping: str | None = None,
    hyperparameters: dict[str, str] | None = None,
    seed: int = 0,
    echo=print,
) -> tuning.TuningSpec:
    """The spec from the flags and what the data folder says of itself (its manifest's
    predictor type, its channel folders): nothing else of the data is read."""
    data_dir = Path(data_dir)
    parsed = [tuning.parse_range(text) for text in ranges or []]
    if ranges_file is not None:
        parsed += tuning.ranges_from_json(ranges_file)
    manifest = Manifest.read(data_dir)
    static = dict(hyperparameters or {})
    given = {**(manifest.hyperparameters if manifest else {}), **static}
    predictor = hps.validate(given).predictor_type  # a typo fails here, before anything runs
    channels = tuple(c for c in CHANNELS if (data_dir / c).is_dir())
    if "train" not in channels:
        raise TuningError(
            f"--data-dir {data_dir}: no train/ channel folder: pass the folder "
            "`python -m training prepare` wrote."
        )
    return tuning.define(
        parsed,
        predictor_type=predictor,
        channels=channels,
        max_jobs=max_jobs,
        max_parallel_jobs=max_parallel_jobs,
        objective=objective,
        strategy=strategy,
        early_stopping=early_stopping,
        static=static,
        seed=seed,
        warn=echo,
    )


def run(args) -> int:
    echo = (lambda line: None) if args.quiet else print
    if args.target == "aws":
        from training.registry_commands import check_register_waits

        check_register_waits(args.register, args.no_wait)
    spec = spec_for(
        args.data_dir,
        args.ranges,
        args.ranges_file,
        max_jobs=args.max_jobs,
        max_parallel_jobs=args.max_parallel_jobs,
        objective=args.objective,
        strategy=args.strategy,
        early_stopping=args.early_stopping,
        hyperparameters=hps.parse_assignments(args.hyperparameters),
        seed=args.seed,
        echo=echo,
    )
    if args.target == "aws":
        from training.aws.job import AwsTrainConfig
        from training.aws.tuning_job import tune_aws

        record = tune_aws(
            spec,
            AwsTrainConfig(
                data_dir=args.data_dir,
                bucket=args.bucket,
                role_arn=args.role,
                project=args.project,
                instance_type=args.instance_type,
                instance_count=args.instance_count,
                max_runtime_s=args.max_runtime,
                profile=args.profile,
                region=args.region,
                wait=not args.no_wait,
                show_progress=not args.quiet,
                job_name=args.job_name,
            ),
            echo=echo,
        )
        if record is not None:
            print(f"best model: {record.model_data_url} ({record.training_job_name})")
        if args.register:
            from training.registry_commands import register_job

            register_job(record, args.project, args.profile, args.region, echo)
        return 0
    if args.out is None:
        raise TuningError("--out: say where the local search writes its jobs and table.")
    if args.register:  # where it goes, found before the search
        from training.registry_commands import open_registry

        open_registry("local", args.registry, args.project, None, None)
    from training.local.tuner import tune_local

    result = tune_local(spec, args.data_dir, args.out, echo=echo, show_progress=not args.quiet)
    if args.register:
        from training.local.tuner import BEST_DIR
        from training.registry_commands import register

        best = result.out_dir / BEST_DIR / "model.tar.gz"
        register("local", best, None, args.registry, args.project, None, None, print)
    return 0


def add_parser(sub, formatter, aws_flags, target, local_path, count, job_flags) -> None:
    """``tune``'s flags (the CLI's shared builders passed in, to keep one style)."""
    t = sub.add_parser(
        "tune",
        help="search hyperparameters: many training jobs, the best one kept",
        formatter_class=formatter,
        epilog=_epilog(),
    )
    target(t, "trials in parallel processes")
    t.add_argument("--data-dir", required=True, type=local_path, help="the folder prepare wrote")
    t.add_argument(
        "--out", type=local_path, help="local: where tuning.csv, jobs/, best/ and the plot go"
    )
    t.add_argument(
        "--ranges",
        nargs="*",
        metavar="RANGE",
        help="NAME=LOW:HIGH[:SCALE], NAME=V1,V2,… or a bare NAME (AWS's recommended range)",
    )
    t.add_argument("--ranges-file", type=local_path, help="JSON ranges (also SageMaker's own)")
    t.add_argument(
        "--objective", help=f"the metric to optimize (unset: {tuning.DEFAULT_OBJECTIVE})"
    )
    t.add_argument(
        "--strategy",
        choices=tuple(tuning.STRATEGIES),
        default="bayesian",
        help="how jobs are chosen: bayesian (TPE locally), random, grid (every listed "
        "combination), hyperband (stops jobs by epochs)",
    )
    t.add_argument(
        "--early-stopping",
        choices=tuple(tuning.EARLY_STOPPING),
        help="stop hopeless trials (unset: auto where SageMaker allows it)",
    )
    t.add_argument("--max-jobs", type=count(1), help="training jobs in all (grid: unset)")
    t.add_argument(
        "--max-parallel-jobs", type=count(1), required=True, help="training jobs at once"
    )
    t.add_argument(
        "--hyperparameters",
        nargs="*",
        metavar="NAME=VALUE",
        help="static hyperparameters every job trains with (as train takes them)",
    )
    t.add_argument("--seed", type=count(0), default=0, help="the search's and trainer's seed")
    aws = job_flags(t, ", per training job")
    aws.add_argument("--job-name", help="the tuning job's name (unset: <project>-hpo-<time>)")
    aws.add_argument("--no-wait", action="store_true", help="start the job and return")
    aws_flags(t)
    t.set_defaults(func=run)


def _epilog() -> str:
    lines = ["tunable hyperparameters (AWS: Tune a linear learner model), recommended range:"]
    for t in tuning.TUNABLE.values():
        rec = t.recommended
        shown = ",".join(rec) if t.kind == tuning.CATEGORICAL else f"{rec[0]:g}:{rec[1]:g}"
        only = "" if len(t.predictor_types) == 3 else f" ({', '.join(t.predictor_types)})"
        lines.append(f"  {t.name:<30} {t.kind:<12} {shown}{only}")
    lines.append("objective metrics (direction; predictor types):")
    for metric, (direction, types) in tuning.OBJECTIVES.items():
        lines.append(f"  {metric:<42} {direction}; {', '.join(types)}")
    return "\n".join(lines)
