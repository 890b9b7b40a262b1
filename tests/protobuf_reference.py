"""An independent RecordIO-protobuf reader built on Google's protobuf runtime.

The message classes are made at import time from the ``aialgs.data`` schema (the text of
SDK 2.x's ``record.proto``), so the decoding semantics under test (repeated fields that merge,
unknown fields and wire types that are skipped, map keys that replace) are protobuf's own,
not a second copy of ours. The framing walk is written here from the dmlc format, too.
"""

from __future__ import annotations

import struct

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

MAGIC = 0xCED7230A
F = descriptor_pb2.FieldDescriptorProto


def _schema() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="reference_record.proto", package="aialgs.data")
    fd.syntax = "proto2"

    def msg(name, *fields, oneof=None):
        m = fd.message_type.add(name=name)
        if oneof:
            m.oneof_decl.add(name=oneof)
        for number, fname, ftype, label, type_name, packed in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
            if packed:
                f.options.packed = True
            if oneof:
                f.oneof_index = 0
        return m

    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    for name, vtype in (
        ("Float32Tensor", F.TYPE_FLOAT),
        ("Float64Tensor", F.TYPE_DOUBLE),
        ("Int32Tensor", F.TYPE_INT32),
    ):
        msg(
            name,
            (1, "values", vtype, rep, None, True),
            (2, "keys", F.TYPE_UINT64, rep, None, True),
            (3, "shape", F.TYPE_UINT64, rep, None, True),
        )
    msg(
        "Bytes",
        (1, "value", F.TYPE_BYTES, rep, None, False),
        (2, "content_type", F.TYPE_STRING, opt, None, False),
    )
    msg(
        "Value",
        (2, "float32_tensor", F.TYPE_MESSAGE, opt, ".aialgs.data.Float32Tensor", False),
        (3, "float64_tensor", F.TYPE_MESSAGE, opt, ".aialgs.data.Float64Tensor", False),
        (7, "int32_tensor", F.TYPE_MESSAGE, opt, ".aialgs.data.Int32Tensor", False),
        (9, "bytes", F.TYPE_MESSAGE, opt, ".aialgs.data.Bytes", False),
        oneof="value",
    )
    record = msg(
        "Record",
        (1, "features", F.TYPE_MESSAGE, rep, ".aialgs.data.Record.FeaturesEntry", False),
        (2, "label", F.TYPE_MESSAGE, rep, ".aialgs.data.Record.LabelEntry", False),
        (3, "uid", F.TYPE_STRING, opt, None, False),
        (4, "metadata", F.TYPE_STRING, opt, None, False),
        (5, "configuration", F.TYPE_STRING, opt, None, False),
    )
    for entry in ("FeaturesEntry", "LabelEntry"):
        e = record.nested_type.add(name=entry)
        e.options.map_entry = True
        e.field.add(name="key", number=1, type=F.TYPE_STRING, label=opt)
        e.field.add(
            name="value",
            number=2,
            type=F.TYPE_MESSAGE,
            label=opt,
            type_name=".aialgs.data.Value",
        )
    return fd


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_schema())
Record = message_factory.GetMessageClass(_pool.FindMessageTypeByName("aialgs.data.Record"))


class RejectedError(Exception):
    """The reference refuses the file (bad framing, protobuf DecodeError, or unstackable)."""


def payloads(buf: bytes) -> list[bytes]:
    """dmlc RecordIO framing, multi-part records joined with the magic word they split on."""
    out, parts, pos = [], [], 0
    while pos < len(buf):
        if len(buf) - pos < 8:
            raise RejectedError("truncated header")
        magic, word = struct.unpack_from("<II", buf, pos)
        flag, length = word >> 29, word & ((1 << 29) - 1)
        if magic != MAGIC or pos + 8 + length > len(buf) or flag > 3:
            raise RejectedError("bad frame")
        part = buf[pos + 8 : pos + 8 + length]
        if flag == 0:
            if parts:
                raise RejectedError("unfinished multi-part")
            out.append(part)
        else:
            if (flag == 1) == bool(parts):
                raise RejectedError("bad multi-part sequence")
            parts.append(part)
            if flag == 3:
                out.append(struct.pack("<I", MAGIC).join(parts))
                parts = []
        pos += 8 + length + (-length % 4)
    if parts:
        raise RejectedError("multi-part never ends")
    return out


def records(buf: bytes) -> list:
    out = []
    for payload in payloads(buf):
        rec = Record()
        try:
            rec.ParseFromString(payload)
        except DecodeError as err:
            raise RejectedError(str(err)) from err
        out.append(rec)
    return out


_DT = {"float32_tensor": np.float32, "float64_tensor": np.float64, "int32_tensor": np.int32}


def arrays(buf: bytes):
    """(X dense-or-(data, indices, indptr, width), y, feature kind, label kind) per protobuf."""
    recs = records(buf)
    kinds = {
        r.features["values"].WhichOneof("value") if "values" in r.features else None for r in recs
    }
    if not recs or len(kinds) != 1 or next(iter(kinds)) not in _DT:
        raise RejectedError("no single feature tensor type")
    kind = kinds.pop()
    tensors = [getattr(r.features["values"], kind) for r in recs]
    lkinds = {r.label["values"].WhichOneof("value") if "values" in r.label else None for r in recs}
    if len(lkinds) != 1:
        raise RejectedError("labels on some records only")
    lkind = lkinds.pop()
    y = None
    if lkind is not None:
        if lkind not in _DT:
            raise RejectedError("label is not a tensor")
        labels = [list(getattr(r.label["values"], lkind).values) for r in recs]
        if any(len(v) != 1 for v in labels):
            raise RejectedError("label count")
        y = np.array([v[0] for v in labels], _DT[lkind])
    sparse = any(len(t.keys) or len(t.shape) for t in tensors)
    if not sparse:
        widths = {len(t.values) for t in tensors}
        if len(widths) != 1:
            raise RejectedError("ragged dense rows")
        X = np.array([list(t.values) for t in tensors], _DT[kind]).reshape(len(tensors), -1)
        return X, y, kind, lkind
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise RejectedError("shape")
    width = shapes.pop()[0]
    data, indices, indptr = [], [], [0]
    for t in tensors:
        if len(t.keys) != len(t.values) or any(k >= width for k in t.keys):
            raise RejectedError("keys")
        data += list(t.values)
        indices += list(t.keys)
        indptr.append(len(data))
    return (
        (np.array(data, _DT[kind]), np.array(indices, np.uint64), np.array(indptr), width),
        y,
        kind,
        lkind,
    )
