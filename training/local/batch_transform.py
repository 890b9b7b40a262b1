"""``transform --target local``: SageMaker Batch Transform offline, through the local endpoint's
own request handling, so each batch's answer is what the endpoint answers for it.

Files split into records and batches as the job does (:mod:`training.batch_transform`); each
input's answers land in ``<out>/<its path under the input>.out`` in input order, streamed one
batch at a time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from training.batch_transform import (
    MB,
    TransformConfig,
    batches,
    input_files,
    output_path,
    pipeline_records,
    raw_records,
)
from training.content_types import CSV
from training.core.inference import InferencePipeline
from training.core.model import LinearModel
from training.data.raw_files import has_header
from training.errors import Problem, ValidationError
from training.local.server import RequestError, predict_body
from training.progress import progress


def _refused(path: Path, first: int, last: int, message: str) -> ValidationError:
    """The endpoint's 4xx for a batch, with its row within the batch made a row of the file."""
    within = re.match(r"row (\d+)", message)
    row = first + int(within.group(1)) - 1 if within else first
    return ValidationError(
        [
            Problem(
                str(path),
                f"records {first}-{last}: the model refused the batch: {message}",
                "fix that record (python -m training validate checks a whole file)",
                row=row,
            )
        ]
    )


def transform_local(served: InferencePipeline | LinearModel, config: TransformConfig) -> list[Path]:
    """Every input file scored into ``<out>/<its path under the input>.out``; returns the files
    written.

    With preprocessing, a CSV with a header is raw rows: its header is left out and its input
    columns sent in source order, in batches sized as the SageMaker job on the pipeline model
    sizes them. Memory holds one batch at a time. As on SageMaker ("Batch transform doesn't
    upload partially processed objects … uploads only the output for successfully processed
    objects", and fails the job: TransformOutput, SageMaker API reference,
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformOutput.html), an
    output exists only for an input scored whole: each is written to ``.<name>.out.partial``
    (mode as the umask says) and renamed into place when its input is done; a failure removes
    it and says which outputs were written before it, and the partial file a killed run leaves
    is removed by the next run that writes that output."""
    config.check()
    if isinstance(served, LinearModel):
        served = InferencePipeline(served)
    files = input_files(config.input)
    max_bytes = int(config.max_payload_mb * MB)
    out = Path(config.out)
    targets = [output_path(out, config.input, path) for path in files]
    _refuse_overwriting_inputs(files, targets)
    for target in targets:  # a killed run's leftovers: our own exact names only
        _partial(target).unlink(missing_ok=True)
    separator = b"" if config.assemble_with() == "None" else b"\n"
    total = sum(f.stat().st_size for f in files)
    bar = progress(total=total, desc="transform", unit="B", enabled=config.show_progress)
    written: list[Path] = []
    try:
        for path, target in zip(files, targets):
            try:
                _transform_file(served, config, path, target, max_bytes, separator, bar)
            except ValidationError as err:
                raise err.after(_written_before(written, len(files))) from None
            written.append(target)
    finally:
        bar.close()
    return written


def _refuse_overwriting_inputs(files: list[Path], targets: list[Path]) -> None:
    """An output that would replace an input file (``--out`` the input folder, which holds
    ``x.csv`` and ``x.csv.out``, or a link to it) is refused before anything is written: the
    run would overwrite the user's file, then read its own answers as that input."""
    inputs = {_where(path) for path in files}
    problems = [
        Problem(
            str(path),
            f"its answers would replace {target}, which is an input of this run",
            "pass an --out outside the input folder",
        )
        for path, target in zip(files, targets)
        if _where(target) in inputs
    ]
    if problems:
        raise ValidationError(problems)


def _where(path: Path) -> Path:
    """The path with its folders' links resolved, not its own: os.replace replaces a link,
    not the file it points to."""
    return path.parent.resolve() / path.name


def _partial(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


def _written_before(written: list[Path], total: int) -> str:
    if not written:
        return f"no output written (0 of {total} inputs scored)"
    names = ", ".join(map(str, written[:3])) + (", …" if len(written) > 3 else "")
    return f"{len(written)} of {total} outputs written before it, each whole: {names}"


def _transform_file(served, config, path: Path, target: Path, max_bytes, separator, bar):
    """One input's answers into ``target``, whole or not at all."""
    numbered, max_records = _requests(served, config, path, max_bytes)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(target)
    try:
        with open(partial, "wb") as fh:  # 0o666 less the umask, as any file the user makes
            for first, last, body in batches(
                path, config.content_type, max_bytes, numbered, max_records
            ):
                try:
                    answer, _ = predict_body(served, body, config.content_type, config.accept)
                except RequestError as err:
                    raise _refused(path, first, last, str(err)) from None
                fh.write(answer)
                if separator and not answer.endswith(separator):
                    fh.write(separator)
                bar.update(len(body))
        os.replace(partial, target)
    except BaseException:  # failed or interrupted: nothing partial left behind
        partial.unlink(missing_ok=True)
        raise


def _requests(served: InferencePipeline, config: TransformConfig, path: Path, max_bytes: int):
    """The file's records (None: its own, as SplitType splits them) and how many a batch may
    hold (None: as many as MaxPayloadInMB takes). Behind preprocessing, few enough that their
    features fit what a SageMaker pipeline's containers may pass each other: the job on AWS
    gets there with a smaller MaxPayloadInMB (``pipeline_payload_mb``), the same answers."""
    featurizer = served.featurizer
    if featurizer is None or config.content_type != CSV:
        return None, None
    numbered = raw_records(path, featurizer, max_bytes) if has_header(path, featurizer) else None
    return numbered, pipeline_records(featurizer.width)
