"""Minimal safetensors reader and writer (numpy only).

Written here because the oracle must run on Debian's python3 with only
python3-torch and python3-numpy installed: there is no `safetensors` package.
The layout is the Hugging Face one that the C engine writes: an 8-byte
little-endian u64 header length N, N bytes of JSON (padded with spaces to a
multiple of 8), then the raw little-endian row-major data; every tensor's
data_offsets are relative to the start of the data.
"""
import json
import os
import struct

import numpy as np

# File dtype name <-> little-endian numpy dtype. Only the ones seqlab uses.
DTYPES = {"F32": np.dtype("<f4"), "I32": np.dtype("<i4"), "F64": np.dtype("<f8"),
          "U8": np.dtype("u1")}
NAMES = {dt: name for name, dt in DTYPES.items()}

# Same cap as the C reader: refuse a hostile header length before reading it.
MAX_HEADER = 100_000_000


class FormatError(ValueError):
    """A file that is not valid safetensors; the message names the file."""


def _dtype_name(path, name, arr):
    """File dtype name of arr, so unsupported dtypes fail loudly, not silently."""
    key = NAMES.get(arr.dtype.newbyteorder("<"))
    if key is None:
        raise ValueError(f"{path}: tensor '{name}': dtype {arr.dtype} is not F32, I32, F64 or U8")
    return key


def _check_metadata(where, metadata):
    """The format allows only string -> string metadata; other readers rely on it."""
    if not isinstance(metadata, dict):
        raise FormatError(f"{where}: __metadata__ must be an object")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise FormatError(f"{where}: __metadata__['{key}'] must be a string")


def _check_entry(path, name, entry, data_len):
    """Validate one header entry against the data size; returns (dtype, shape, begin, end)."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise FormatError(f"{path}: tensor '{name}': expected keys dtype, shape, data_offsets")
    dtype = DTYPES.get(entry["dtype"])
    if dtype is None:
        raise FormatError(f"{path}: tensor '{name}': unsupported dtype {entry['dtype']!r}")
    shape, offsets = entry["shape"], entry["data_offsets"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise FormatError(f"{path}: tensor '{name}': bad shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)):
        raise FormatError(f"{path}: tensor '{name}': bad data_offsets {offsets!r}")
    begin, end = offsets
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if not 0 <= begin <= end <= data_len or end - begin != nbytes:
        raise FormatError(f"{path}: tensor '{name}': data_offsets {offsets} do not fit "
                          f"shape {shape} ({nbytes} bytes) in {data_len} data bytes")
    return dtype, shape, begin, end


def _check_tiling(path, spans, data_len):
    """Tensors must tile the data exactly: holes or overlaps mean a corrupt file."""
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise FormatError(f"{path}: tensor '{name}' starts at {begin}, expected {pos} "
                              "(hole or overlap in the data)")
        pos = end
    if pos != data_len:
        raise FormatError(f"{path}: {data_len - pos} trailing data bytes after the last tensor")


def read(path):
    """Read a whole file; returns ({name: numpy array}, {metadata key: str})."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise FormatError(f"{path}: {len(blob)} bytes, too short for a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER or 8 + n > len(blob):
        raise FormatError(f"{path}: header length {n} does not fit the {len(blob)}-byte file")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: header is not UTF-8 JSON: {e}") from e
    if not isinstance(header, dict):
        raise FormatError(f"{path}: header must be a JSON object")
    metadata = header.pop("__metadata__", {})
    _check_metadata(path, metadata)
    data = blob[8 + n:]
    tensors, spans = {}, []
    for name, entry in header.items():
        dtype, shape, begin, end = _check_entry(path, name, entry, len(data))
        tensors[name] = np.frombuffer(data, dtype, offset=begin, count=(end - begin) // dtype.itemsize
                                      ).reshape(shape).copy()
        spans.append((begin, end, name))
    _check_tiling(path, spans, len(data))
    return tensors, dict(metadata)


def write(path, tensors, metadata=None):
    """Write tensors (in the dict's order) and string metadata atomically.

    Writes a temporary file beside path and renames it, so a failure never
    leaves half a file where a test will look for a fixture.
    """
    metadata = dict(metadata or {})
    _check_metadata(path, metadata)
    header, chunks, pos = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, arr in tensors.items():
        if name == "__metadata__":
            raise ValueError(f"{path}: '__metadata__' cannot be a tensor name")
        arr = np.asarray(arr)
        key = _dtype_name(path, name, arr)
        raw = np.ascontiguousarray(arr, dtype=DTYPES[key]).tobytes()
        header[name] = {"dtype": key, "shape": list(arr.shape), "data_offsets": [pos, pos + len(raw)]}
        chunks.append(raw)
        pos += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for raw in chunks:
                f.write(raw)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_named(path, shapes):
    """float32 arrays by name from a safetensors file, for a dict of
    name -> shape; each may be stored as NAME or "param." + NAME (the oracle
    fixtures' prefix), and every one must be there with its shape."""
    tensors, _ = read(path)
    w = {}
    for name, shape in shapes.items():
        a = tensors.get(name, tensors.get("param." + name))
        if a is None or tuple(a.shape) != tuple(shape):
            raise SystemExit(f"{path}: tensor '{name}' of shape {list(shape)} missing or misshapen")
        w[name] = a.astype(np.float32)
    return w
