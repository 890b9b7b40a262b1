"""Hostile model files (issue 29): every one is refused in one line naming the member and what
is wrong, within a memory bound, before anything is decompressed beyond what its headers allow;
nothing is ever written outside the command's own files.

Each input is built here with tarfile, zipfile and gzip; the memory bound runs the command line
in a subprocess under an address-space cap (RLIMIT_AS), so a regression fails the test, not
the machine.
"""

import gzip
import io
import json
import os
import re
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from training.core import artifact, mxnet
from training.core.model import LinearModel

ROOT = Path(__file__).parents[1]
REAL = ROOT.parent / "shared" / "fixtures" / "ll-artifacts"
GIB, TIB = 1 << 30, 1 << 40


# ----------------------------------------------------------------------- building hostile files


def binary(weights=None, bias=0.25, threshold=0.5) -> LinearModel:
    w = np.linspace(-1, 1, 20, dtype=np.float32) if weights is None else weights
    return LinearModel("binary_classifier", "logistic", np.asarray(w, np.float32), bias, threshold)


def members_of(model: LinearModel, **replace) -> dict:
    """model_algo-1's four members for ``model``, some replaced (bytes, or a dict as JSON)."""
    with zipfile.ZipFile(io.BytesIO(artifact.model_algo_bytes(model))) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    for name, value in replace.items():
        members[name] = json.dumps(value).encode() if isinstance(value, dict) else value
    return members


def zip_of(members: dict, method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def with_params(**arrays) -> bytes:
    """model_algo-1 of the binary model with these NDArrays as its mx-mod-0000.params."""
    return zip_of(members_of(binary(), **{artifact.PARAMS: mxnet.save_ndarrays(arrays)}))


def with_additional(**changes) -> bytes:
    doc = artifact.additional_params(binary())
    doc.update(changes)
    return zip_of(members_of(binary(), **{artifact.ADDITIONAL: doc}))


def with_member(name: str, data: bytes) -> bytes:
    return zip_of(members_of(binary(), **{name: data}))


def with_raw_params(*arrays) -> bytes:
    """model_algo-1 whose params file holds ``(name, shape, data)`` arrays written byte by
    byte (V2, dense, float32), whatever the shape claims."""
    out = [struct.pack("<QQQ", mxnet.LIST_MAGIC, 0, len(arrays))]
    for _, shape, data in arrays:
        out.append(
            struct.pack(f"<IiI{len(shape)}qiii", mxnet.V2_MAGIC, 0, len(shape), *shape, 1, 0, 0)
        )
        out.append(data)
    out.append(struct.pack("<Q", len(arrays)))
    out += [struct.pack("<Q", len(name)) + name.encode() for name, _, _ in arrays]
    return with_member(artifact.PARAMS, b"".join(out))


BIAS = ("arg:fc0_bias", (1, 1), struct.pack("<f", 0.5))


def claim_zip_size(data: bytes, name: str, size: int) -> bytes:
    """The ZIP with ``name``'s uncompressed size stated as ``size`` in both its headers (the
    local one and the central directory's), its data unchanged: a zip bomb's headers."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        struct.pack_into("<I", out, zf.getinfo(name).header_offset + 22, size)
        at = zf.start_dir
        while out[at : at + 4] == b"PK\x01\x02":
            n, extra, comment = struct.unpack_from("<HHH", out, at + 28)
            if out[at + 46 : at + 46 + n] == name.encode():
                struct.pack_into("<I", out, at + 24, size)
            at += 46 + n + extra + comment
    return bytes(out)


def header(name: str, size: int, kind=tarfile.REGTYPE) -> bytearray:
    """One 512-byte GNU tar header (sizes over 8 GiB in base-256, as GNU tar writes them)."""
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return bytearray(info.tobuf(tarfile.GNU_FORMAT))


def checksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def sparse_header(name: str, claimed: int) -> bytes:
    """A GNU sparse member ('S') storing 512 bytes at the end of ``claimed`` bytes of holes:
    tarfile's extractfile().read() materialises all of them."""
    block = header(name, 512, tarfile.GNUTYPE_SPARSE)

    def base256(n):
        return b"\x80" + n.to_bytes(11, "big")

    block[386:398], block[398:410] = base256(claimed - 512), b"%011o\0" % 512
    block[482:483], block[483:495] = b"\0", base256(claimed)
    return checksum(block)


def tar_gz(*blocks: bytes, zeros: int = 0) -> bytes:
    """gzip of the blocks then ``zeros`` zero bytes (as concatenated gzip members: a bomb of
    many MiB costs a few KiB to build and to store)."""
    mib = gzip.compress(b"\0" * (1 << 20))
    body = gzip.compress(b"".join(blocks)) + mib * (zeros >> 20)
    return body + gzip.compress(b"\0" * (zeros % (1 << 20) + 1024))


def tar_of(files: dict, kinds: dict | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.type = (kinds or {}).get(name, tarfile.REGTYPE)
            if info.type != tarfile.REGTYPE:
                info.size, info.linkname = 0, data.decode()
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


MODEL = artifact.model_algo_bytes(binary())


def bombs() -> dict:
    """Files whose headers claim more than a model may be: (bytes, what the error says)."""
    body = header("model_algo-1", 10 * GIB)
    return {
        # the 97-byte model.tar.gz of the issue: 1 TiB of holes
        "sparse member": (
            tar_gz(sparse_header("model_algo-1", TIB), b"\0" * 512),
            "a sparse tar member",
        ),
        "gzip bomb": (tar_gz(bytes(body), zeros=64 << 20), "model_algo-1 claims 10 GiB"),
        "junk member before the model": (
            tar_gz(bytes(header("junk", 2 * GIB)), zeros=8 << 20),
            "its members claim 2 GiB",
        ),
        "unknown member type": (
            tar_gz(bytes(header("junk", 3 * GIB, b"Z")), zeros=8 << 20),
            "its members claim 3 GiB",
        ),
        "2 GiB GNU long name": (
            tar_gz(
                bytes(header("././@LongLink", 2 * GIB, tarfile.GNUTYPE_LONGNAME)), zeros=8 << 20
            ),
            "a tar header .* of 2 GiB",
        ),
        "zip bomb member": (
            claim_zip_size(
                zip_of(
                    members_of(binary(), **{artifact.PARAMS: b"\0" * (1 << 20)}),
                    zipfile.ZIP_DEFLATED,
                ),
                artifact.PARAMS,
                0xFFFF0000,
            ),
            "model_algo-1's mx-mod-0000.params is 4 GiB",
        ),
        "1.5 GiB symbol JSON": (
            claim_zip_size(MODEL, artifact.SYMBOL, 3 * GIB // 2),
            "model_algo-1's mx-mod-symbol.json is 1.5 GiB",
        ),
        "shape product overflows": (
            with_raw_params(("arg:fc0_weight", (1 << 40, 1 << 40), b""), BIAS),
            r"shape \(1099511627776, 1099511627776\) is larger than the file",
        ),
        "empty shape of huge dimensions": (
            with_raw_params(("arg:fc0_weight", (1 << 62, 0), b""), BIAS),
            r"shape \(4611686018427387904, 0\) is larger than the file",
        ),
    }


# ----------------------------------------------------------------------- the memory bound

DRIVER = r"""
import contextlib, io, json, resource, sys
import numpy
from training.cli import main
from training.core import artifact
from training import inspection

def address_space():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

cap = address_space() + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
for path in sys.argv[2:]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["inspect", path])
    print(json.dumps([path, code, err.getvalue()]), flush=True)
"""
CAP = GIB  # over the interpreter's own: a model up to a few hundred MiB fits, a bomb does not


def run_capped(paths, cap=CAP):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(cap), *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {Path(p).name: (code, err) for p, code, err in map(json.loads, done.stdout.splitlines())}


def test_no_bomb_gets_past_its_headers_under_a_1_gib_address_space_cap(tmp_path):
    cases = bombs()
    paths = []
    for name, (data, _) in cases.items():
        paths.append(tmp_path / name.replace(" ", "-"))
        paths[-1].write_bytes(data)
    # a real-sized model beside them: 4M features (16 MiB of float32) loads under the same cap
    big = tmp_path / "model.tar.gz"
    artifact.save(binary(np.zeros(4 << 20, np.float32)), big)
    results = run_capped([*paths, big])
    assert results["model.tar.gz"][0] == 0, results["model.tar.gz"][1]
    for (name, (_, message)), path in zip(cases.items(), paths):
        code, err = results[path.name]
        assert code == 2, (name, err)
        assert err.startswith(f"error: {path}: ") and err.count("\n") == 1, (name, err)
        assert "Traceback" not in err
        assert re.search(message, err), (name, err)
    assert len(cases["sparse member"][0]) < 200  # the 97-byte file, give or take


def test_the_cap_is_real_a_model_bigger_than_it_fails_the_driver(tmp_path):
    """The driver's cap bites: a 64 MiB model under a 32 MiB cap cannot load, so the bomb
    test above would fail, not pass, if a bomb were materialised."""
    path = tmp_path / "model_algo-1"
    path.write_bytes(artifact.model_algo_bytes(binary(np.zeros(16 << 20, np.float32))))
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(32 << 20), str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        timeout=60,
    )
    assert done.returncode != 0 and "MemoryError" in done.stderr
