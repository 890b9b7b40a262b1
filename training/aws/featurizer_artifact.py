"""``featurizer.tar.gz``: what the serial inference pipeline's scikit-learn containers run.

When a model has preprocessing, its SageMaker Model is a serial inference pipeline
(``InferenceExecutionConfig`` Serial): SageMaker's scikit-learn container featurizes the raw
rows (``code/featurize.py``), Linear Learner scores them, and, for classifiers, the same
scikit-learn image names the class (``code/decode.py``). Both scikit-learn containers read this
one artifact, unpacked to ``/opt/ml/model``:

    preprocessing.json          the fitted preprocessing (plain JSON; no pickle)
    code/featurizer.py          training/core/featurizer.py, as it is (numpy + stdlib)
    code/featurize.py, decode.py the handler functions the container's serving stack calls
    code/pyproject.toml, offline_build.py
                                so the stack's ``pip install .`` needs no package index: the
                                Model is network-isolated

A network-isolated container cannot fetch code from S3, so the code travels inside the
artifact, and ``SAGEMAKER_SUBMIT_DIRECTORY`` points at it (SDK 2.x does the same when it
repacks a model for isolation). The bytes depend only on the files: the same preprocessing
gives the same artifact, uploaded under a content-addressed key.

The container is SageMaker's scikit-learn image, framework version :data:`SKLEARN_VERSION`
(Python 3.9, numpy 1.24.1 at its Dockerfile's pins, aws/sagemaker-scikit-learn-container branch
1.2-1); the image URI comes from sagemaker-core's table for the region.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from training.core import featurizer
from training.files import write_whole

FILE = "featurizer.tar.gz"
CODE = Path(__file__).resolve().parent / "featurizer_code"
FEATURIZE, DECODE = "featurize.py", "decode.py"  # the two programs the artifact runs
# SageMaker's scikit-learn container: the featurizer needs numpy only; 1.2-1 is in every
# region sagemaker-core lists (its inference scope: 0.20.0 .. 1.2-1, 1.4-2-py312, 1.9-0)
SKLEARN_VERSION = "1.2-1"
SUBMIT_DIRECTORY = "/opt/ml/model/code"  # where code/ lands when the artifact is unpacked
PYPROJECT = """[build-system]
requires = []
build-backend = "offline_build"
backend-path = ["."]
"""
FIXED_TIME = 315532800  # 1980-01-01: the same files give the same bytes


def members(preprocessing: Path) -> dict[str, bytes]:
    """Each file of the artifact by its path inside it."""
    files = {
        featurizer.PREPROCESSING_FILE: Path(preprocessing).read_bytes(),
        "code/featurizer.py": Path(featurizer.__file__).read_bytes(),
        "code/pyproject.toml": PYPROJECT.encode(),
    }
    for name in (FEATURIZE, DECODE, "offline_build.py"):
        files[f"code/{name}"] = (CODE / name).read_bytes()
    return files


def to_bytes(preprocessing: Path) -> bytes:
    """The artifact for ``preprocessing`` (a ``preprocessing.json``), checked first."""
    featurizer.Featurizer.load(preprocessing)  # a damaged description stops here
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(members(preprocessing).items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), FIXED_TIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(tar_bytes.getvalue())
    return out.getvalue()


def build(preprocessing: Path, path: Path) -> Path:
    """Write ``featurizer.tar.gz`` whole or not at all."""
    return write_whole(path, to_bytes(preprocessing))


def environment(program: str) -> dict[str, str]:
    """The container environment that runs ``program`` from the artifact's ``code/``."""
    return {
        "SAGEMAKER_PROGRAM": program,
        "SAGEMAKER_SUBMIT_DIRECTORY": SUBMIT_DIRECTORY,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        # what the decoder answers a client that sends no Accept (Linear Learner's default)
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": featurizer.JSON,
    }
