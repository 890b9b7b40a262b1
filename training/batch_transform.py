"""SageMaker Batch Transform's contract: the job's settings, and how files split into requests.

SageMaker Batch Transform splits each input object into records (``SplitType`` Line for CSV
and JSON lines, RecordIO for RecordIO-protobuf), packs as many whole records as fit in
``MaxPayloadInMB`` into each request (``BatchStrategy`` MultiRecord), and writes the
container's answers to ``<object>.out`` in input order (``AssembleWith`` Line for text
answers, None for RecordIO). :func:`transform_local` does exactly that offline, streaming, with
the local endpoint's own request handling, so each batch's bytes are what the local endpoint
answers for it. Linear Learner answers in JSON, JSON lines or RecordIO: never CSV. The local
run is :mod:`training.local.batch_transform`, the SageMaker job :mod:`training.aws.batch_transform`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.content_types import CSV, JSON, JSONLINES, RECORDIO
from training.core.featurizer import Featurizer
from training.data import recordio
from training.data.channels import channel_files
from training.data.raw_files import raw_rows
from training.errors import Problem, ValidationError
from training.files import file_problem, lines
from training.limits import MAX_ROW_BYTES

ACCEPTS = (JSONLINES, JSON, RECORDIO)  # what Linear Learner can answer
INPUTS = (CSV, JSONLINES, RECORDIO)  # what splits into records (JSON documents do not)
MAX_PAYLOAD_MB = 6  # SageMaker's default MaxPayloadInMB (its range is 0-100)
MB = 1 << 20
# A pipeline's featurizer hands Linear Learner RecordIO: 4 bytes a feature and about this
# many more a record, which must stay under the 5 MB SageMaker lets containers pass each other
# (DG inference-pipeline-troubleshoot: "exceeded the maximum limit of 5 MB"), with room.
PIPELINE_BYTES = 4 * MB
RECORD_OVERHEAD = 32


@dataclass(frozen=True)
class TransformConfig:
    """What a transform job needs, local or on SageMaker."""

    input: str  # a file, a folder of files, or (aws) an s3:// prefix
    out: str  # a folder, or (aws) an s3:// prefix
    content_type: str = CSV
    accept: str = JSONLINES
    max_payload_mb: float = MAX_PAYLOAD_MB
    show_progress: bool = True

    def split_type(self) -> str:
        return "RecordIO" if self.content_type == RECORDIO else "Line"

    def assemble_with(self) -> str:
        return "None" if self.accept == RECORDIO else "Line"

    def check(self) -> None:
        """The request SageMaker would refuse, or run and then fail, refused here."""
        problems = []
        if self.accept not in ACCEPTS:
            why = "Linear Learner has no CSV output" if self.accept == CSV else "unknown type"
            problems.append(
                Problem("--accept", f"'{self.accept}': {why}", f"use one of {', '.join(ACCEPTS)}")
            )
        if self.content_type not in INPUTS:
            problems.append(
                Problem(
                    "--content-type",
                    f"'{self.content_type}' does not split into records (SplitType Line or "
                    "RecordIO)",
                    f"use one of {', '.join(INPUTS)}",
                )
            )
        if not 0 < self.max_payload_mb <= 100:
            problems.append(
                Problem("--max-payload-mb", f"{self.max_payload_mb}", "use a value in (0, 100]")
            )
        if not str(self.out).startswith("s3://"):
            problems += filter(None, [out_folder_problem(Path(self.out))])
        if problems:
            raise ValidationError(problems)


# --------------------------------------------------------------------------- records


def records(path: Path, content_type: str, max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(line or record number, the record's bytes) of one input file, streamed.

    Lines keep their ``\\n``; a final line without one gets it, so batches join cleanly.
    A line longer than ``max_bytes`` (MaxPayloadInMB) is refused after reading that much
    of it: a file without line breaks is not read whole. An empty line is an error (the
    container would refuse the whole batch for it)."""
    if content_type == RECORDIO:
        yield from _recordio_records(path, max_bytes)
        return
    fix = "raise --max-payload-mb (up to 100), or split the record: one line is one record"
    for number, line in lines(path, max_bytes, fix, "MaxPayloadInMB"):
        if not line.rstrip(b"\r\n"):
            raise ValidationError(
                [
                    Problem(
                        str(path),
                        "empty line: SplitType Line sends it as a record of its own, "
                        "which the container refuses",
                        "delete empty lines",
                        row=number,
                    )
                ]
            )
        yield number, line


def _recordio_records(path: Path, max_bytes: int) -> Iterator[tuple[int, bytes]]:
    number = 0
    with open(path, "rb") as fh:
        try:
            for _, record in recordio.iter_frames(fh, max_bytes):
                number += 1
                yield number, record
        except recordio.RecordIOError as err:
            over = isinstance(err, recordio.RecordTooLarge)
            raise ValidationError(
                [
                    Problem(
                        str(path),
                        f"{'' if over else 'corrupt RecordIO-protobuf: '}{err}"
                        + (" (MaxPayloadInMB)" if over else ""),
                        "raise --max-payload-mb (up to 100)"
                        if over
                        else "rewrite the file (python -m training prepare)",
                        row=number + 1,
                        unit="record",
                    )
                ]
            ) from None


def raw_records(
    path: Path, featurizer: Featurizer, max_bytes: int = MAX_ROW_BYTES
) -> Iterator[tuple[int, bytes]]:
    """A raw CSV with a header as the records a pipeline takes: each data row's input
    columns in source order, without the header, numbered from 1 under it; a row longer than
    ``max_bytes`` is refused before it is read whole."""
    for row in raw_rows(path, featurizer, max_row=max_bytes):
        yield row.number, (row.line + "\n").encode()


def pipeline_payload_mb(max_payload_mb: float, feature_dim: int, shortest: int) -> int:
    """MaxPayloadInMB for a job on a pipeline model: whole MB (the API's unit) of raw rows
    whose features, even if every row were as short as the shortest, stay under
    PIPELINE_BYTES; ValidationError when not even 1 MB of them does."""
    fits = int(pipeline_records(feature_dim) * shortest // MB)
    if fits < 1:
        raise ValidationError(
            [
                Problem(
                    "--max-payload-mb",
                    f"1 MB of rows as short as {shortest} bytes becomes "
                    f"{MB / shortest * (4 * feature_dim + RECORD_OVERHEAD) / MB:.1f} MB of "
                    f"features ({feature_dim} a row), over the {PIPELINE_BYTES // MB} MB a "
                    "pipeline's containers may pass each other",
                    "score the file in parts with predict, or with the model alone on "
                    "encoded features (--no-preprocessing)",
                )
            ]
        )
    return min(int(max_payload_mb), fits) if max_payload_mb >= 1 else fits


def pipeline_records(feature_dim: int) -> int:
    """How many records a batch to a pipeline model may hold: their features (RecordIO)
    under PIPELINE_BYTES, whatever their length."""
    return max(1, PIPELINE_BYTES // (4 * feature_dim + RECORD_OVERHEAD))


def batches(
    path: Path, content_type: str, max_bytes: int, numbered=None, max_records: int | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """MultiRecord: (first, last record number, body) with as many whole records as fit in
    ``max_bytes`` (and, given, ``max_records``); ``numbered`` records instead of the file's
    own (e.g. :func:`raw_records`)."""
    parts: list[bytes] = []
    size, first, last = 0, 0, 0
    numbered = numbered if numbered is not None else records(path, content_type, max_bytes)
    for number, record in numbered:
        if len(record) > max_bytes:
            raise ValidationError(
                [
                    Problem(
                        str(path),
                        f"one record is {len(record)} bytes, over MaxPayloadInMB "
                        f"({max_bytes} bytes)",
                        "raise --max-payload-mb (up to 100)",
                        row=number,
                    )
                ]
            )
        if parts and (size + len(record) > max_bytes or len(parts) == max_records):
            yield first, last, b"".join(parts)
            parts, size = [], 0
        if not parts:
            first = number
        parts.append(record)
        size += len(record)
        last = number
    if parts:
        yield first, last, b"".join(parts)


# --------------------------------------------------------------------------- local


def detected_content_type(input_path: str, given: str | None) -> str:
    """The input's content type: as given, else from the files' first bytes as ``validate``
    detects them (RecordIO's magic number; JSON lines start with ``{``; else CSV). A job has
    one ContentType for every file, so a mix, or a file that contradicts the one given, is
    refused by name before anything is sent. An s3:// input is not read: CSV unless given."""
    if str(input_path).startswith("s3://"):
        return given or CSV
    found = {path: _sniff(path) for path in input_files(input_path)}
    if given is not None:
        wrong = [p for p, kind in found.items() if (kind == RECORDIO) != (given == RECORDIO)]
        return given if not wrong else _contradiction(wrong, found, given)
    kinds = set(found.values())
    if len(kinds) > 1:
        raise ValidationError(
            [
                Problem(
                    str(path),
                    f"is {kind}, but other files of the input are "
                    f"{', '.join(sorted(kinds - {kind}))}: a transform job has one ContentType",
                    "score each format from its own folder",
                )
                for path, kind in found.items()
                if kind != CSV
            ]
        )
    return kinds.pop()


def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head[:4] == recordio._MAGIC_BYTES:
        return RECORDIO
    return JSONLINES if head.lstrip()[:1] == b"{" else CSV


def _contradiction(wrong: list[Path], found: dict, given: str):
    raise ValidationError(
        [
            Problem(
                str(path),
                f"is {found[path]}, but --content-type says {given}",
                f"leave --content-type out (detected), or pass {found[path]}",
            )
            for path in wrong
        ]
    )


def out_folder_problem(out: Path) -> Problem | None:
    """Why ``out`` cannot be the folder the outputs go to (it, or a folder above it, is a
    file), or None; a folder that does not exist yet is made."""
    for folder in (out, *out.parents):
        if folder.exists() or folder.is_symlink():
            if folder.is_dir():
                return None
            where = "is a file" if folder == out else f"is inside {folder}, which is a file"
            return Problem(
                "--out", f"{out} {where}, not a folder", "pass a folder (made if missing)"
            )
    return None


def output_path(out: Path, input_path: str | Path, path: Path) -> Path:
    """Where the answers to input file ``path`` go: ``<out>/<its path under the input
    folder>.out`` (just ``<name>.out`` for a file given alone), as SageMaker keeps each object's
    key below the input prefix (TransformOutput S3OutputPath, SageMaker API reference:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformOutput.html), so
    ``a/x.csv`` and ``b/x.csv`` each get their own answers."""
    root = Path(input_path)
    relative = path.relative_to(root) if root.is_dir() else Path(path.name)
    return out / relative.parent / f"{relative.name}.out"


def input_files(path: str | Path) -> list[Path]:
    """The files a transform reads: one file, or every file of a folder (sorted)."""
    path = Path(path)
    files = channel_files([path]) if path.is_dir() else [path]
    problems = [p for p in map(file_problem, files) if p]
    if not files:
        problems.append(Problem(str(path), "no files in the folder", "pass a file or a folder"))
    if problems:
        raise ValidationError(problems)
    return files
