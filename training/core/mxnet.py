"""The two MXNet files inside a Linear Learner model, read and written with numpy alone.

- ``mx-mod-0000.params``: an NDArray list, as ``NDArray::Save`` in apache/mxnet
  ``src/ndarray/ndarray.cc`` writes it (little-endian): u64 magic 0x112, u64 reserved, u64 count,
  the arrays, u64 count, the names (u64 length + bytes). Each array: u32 magic (V2 0xF993FAC9,
  V1 0xF993FAC8 without the storage type, anything else = legacy: that value is ndim and the dims
  are u32), i32 storage type (0 dense), u32 ndim, i64 dims, i32 dev_type, i32 dev_id, i32 dtype
  flag, the raw C-order data.
- ``mx-mod-symbol.json``: the symbol graph, in MXNet's own JSON layout (2-space indent,
  ``", "`` before each newline, attrs of one key on one line, no final newline), so that a graph
  written here is the same text the Linear Learner container writes.

See ``../shared/reference/ll-artifact.md`` for the annotated bytes of real artifacts.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from training.limits import MAX_NDARRAY_DIMS

LIST_MAGIC = 0x112
V2_MAGIC = 0xF993FAC9
V1_MAGIC = 0xF993FAC8
CPU = 1
# mshadow type flags -> numpy dtypes (little-endian)
DTYPES = {0: "<f4", 1: "<f8", 2: "<f2", 3: "u1", 4: "<i4", 5: "i1", 6: "<i8"}
FLAGS = {np.dtype(v): k for k, v in DTYPES.items()}
STORAGE = {0: "dense", 1: "row_sparse", 2: "csr"}


class MXNetFormatError(ValueError):
    """Bytes that are not the MXNet file they should be; the message names the byte offset."""


# --------------------------------------------------------------------------- NDArray lists


def is_ndarray_list(data: bytes) -> bool:
    return len(data) >= 16 and struct.unpack_from("<QQ", data) == (LIST_MAGIC, 0)


def save_ndarrays(arrays: dict[str, np.ndarray]) -> bytes:
    """``{name: array}`` as an NDArray list file (V2, dense, cpu(0)), in the dict's order."""
    out = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    for array in arrays.values():
        a = np.ascontiguousarray(array)
        flag = FLAGS.get(a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype)
        if flag is None:
            raise TypeError(f"MXNet has no type flag for {a.dtype}")
        out.append(struct.pack("<IiI", V2_MAGIC, 0, a.ndim))
        out.append(struct.pack(f"<{a.ndim}q", *a.shape))
        out.append(struct.pack("<iii", CPU, 0, flag))
        out.append(a.astype(DTYPES[flag], copy=False).tobytes())
    out.append(struct.pack("<Q", len(arrays)))
    for name in arrays:
        raw = name.encode()
        out.append(struct.pack("<Q", len(raw)) + raw)
    return b"".join(out)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise MXNetFormatError(
                f"truncated at byte {self.pos}: {what} needs {size} bytes, "
                f"{len(self.data) - self.pos} left"
            )
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def span(self, size: int, what: str) -> int:
        """Where the next ``size`` bytes start, checked to be there; the reader moves past."""
        if size < 0 or self.pos + size > len(self.data):
            raise MXNetFormatError(
                f"truncated at byte {self.pos}: {what} needs {size} bytes, "
                f"{len(self.data) - self.pos} left"
            )
        self.pos += size
        return self.pos - size

    def raw(self, size: int, what: str) -> bytes:
        start = self.span(size, what)
        return self.data[start : start + size]


def load_ndarrays(data: bytes) -> dict[str, np.ndarray]:
    """An NDArray list file as ``{name: array}`` (V2, V1 and legacy dense arrays).

    Every byte must be consumed; anything else is a :class:`MXNetFormatError`.
    """
    r = _Reader(data)
    magic, reserved, count = r.take("<QQQ", "the list header")
    if magic != LIST_MAGIC or reserved != 0:
        raise MXNetFormatError(
            f"not an MXNet NDArray list: header {magic:#x}/{reserved}, expected 0x112/0"
        )
    if count > len(data) // 16:
        raise MXNetFormatError(f"header claims {count} arrays in a {len(data)}-byte file")
    arrays = [_load_array(r, i) for i in range(count)]
    (n_names,) = r.take("<Q", "the name count")
    if n_names not in (0, count):
        raise MXNetFormatError(f"{n_names} names for {count} arrays")
    names = []
    for i in range(n_names):
        (length,) = r.take("<Q", f"the length of name {i}")
        try:
            names.append(r.raw(length, f"name {i}").decode())
        except UnicodeDecodeError:
            raise MXNetFormatError(f"name {i} is not UTF-8") from None
    if r.pos != len(data):
        raise MXNetFormatError(f"{len(data) - r.pos} unexpected bytes after the names")
    if not names:
        names = [str(i) for i in range(count)]
    if len(set(names)) != len(names):
        raise MXNetFormatError(f"duplicate array names {names}")
    return dict(zip(names, arrays))


def _load_array(r: _Reader, i: int) -> np.ndarray:
    at = r.pos
    (magic,) = r.take("<I", f"array {i}'s magic")
    if magic in (V2_MAGIC, V1_MAGIC):
        stype = r.take("<i", f"array {i}'s storage type")[0] if magic == V2_MAGIC else 0
        if stype != 0:
            raise MXNetFormatError(
                f"array {i} (byte {at}) uses {STORAGE.get(stype, stype)} storage: only dense "
                "arrays are supported"
            )
        (ndim,) = r.take("<I", f"array {i}'s ndim")
        if ndim > MAX_NDARRAY_DIMS:
            raise MXNetFormatError(f"array {i} (byte {at}) claims {ndim} dimensions")
        shape = r.take(f"<{ndim}q", f"array {i}'s shape")
    else:  # legacy: the magic is ndim, dims are u32
        ndim = magic
        if ndim > MAX_NDARRAY_DIMS:
            raise MXNetFormatError(f"array {i} (byte {at}): unknown array magic {magic:#x}")
        shape = r.take(f"<{ndim}I", f"array {i}'s shape")
    if ndim == 0:
        return np.zeros((0,), np.float32)  # MXNet saves an empty array as ndim 0, no data
    if min(shape) < 0:
        raise MXNetFormatError(f"array {i} (byte {at}) has a negative dimension {shape}")
    _dev_type, _dev_id, flag = r.take("<iii", f"array {i}'s context and type")
    if flag not in DTYPES:
        raise MXNetFormatError(f"array {i} (byte {at}): unknown type flag {flag}")
    dtype = np.dtype(DTYPES[flag])
    size = int(np.prod(shape, dtype=object))
    # a zero dimension empties the array, but not what numpy allocates for the others: measure
    # the shape with zeros counted as ones (Python ints: a product that overflows int64 is big)
    extent = int(np.prod([max(d, 1) for d in shape], dtype=object))
    if extent * dtype.itemsize > len(r.data):
        raise MXNetFormatError(f"array {i} (byte {at}): shape {shape} is larger than the file")
    start = r.span(size * dtype.itemsize, f"array {i}'s data")
    # one copy, out of the file's bytes (slicing them first would make a second)
    return np.frombuffer(r.data, dtype, count=size, offset=start).reshape(shape).copy()


# --------------------------------------------------------------------------- symbol JSON


def dump_symbol(graph: dict) -> str:
    """A symbol graph as MXNet's JSON writer lays it out (byte for byte)."""
    return _value(graph, 0)


def _value(v, depth: int) -> str:
    """dmlc's JSONWriter: an object of more than one key and a list of objects go on several
    lines, ``", "`` ending each line; everything else stays on one line."""
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(v, dict) and len(v) > 1:
        items = [f"{inner}{json.dumps(k)}: {_value(x, depth + 1)}" for k, x in v.items()]
        return "{\n" + ", \n".join(items) + "\n" + pad + "}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_value(x, depth)}" for k, x in v.items()) + "}"
    if isinstance(v, list) and any(isinstance(x, dict) for x in v):
        items = [inner + _value(x, depth + 1) for x in v]
        return "[\n" + ", \n".join(items) + "\n" + pad + "]"
    return json.dumps(v, separators=(", ", ": "))
