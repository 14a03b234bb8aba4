"""Read an uncompressed ``.npz`` in place: every array a view of one read-only memory map.

``np.load`` reads (and checks) each member whole; the spectrogram cache and the reference
cache are files of up to GBs read a clip at a time, by training and by every scoring worker.
No torch here: scoring workers import this module and must start fast.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
import zipfile

import numpy as np

from hourglass_sep.errors import UserError


def _array_header(mm: mmap.mmap, start: int) -> tuple[tuple, bool, np.dtype, int]:
    """(shape, fortran order, dtype, offset of the data) of the .npy member at ``start``."""
    version = np.lib.format.read_magic(io.BytesIO(mm[start : start + 8]))
    size_bytes = 2 if version == (1, 0) else 4
    length = int.from_bytes(mm[start + 8 : start + 8 + size_bytes], "little")
    header = io.BytesIO(mm[start : start + 8 + size_bytes + length])
    np.lib.format.read_magic(header)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(header)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(header)
    return shape, fortran, dtype, start + header.tell()


def map_npz(path: str | os.PathLike, rebuild: str = "rebuild it") -> dict[str, np.ndarray]:
    """Every member of the uncompressed npz ``path`` (name without ``.npy``) as a read-only
    view of one memory map.  ``rebuild`` ends the error for a compressed member (how to
    write the file again)."""
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if info.compress_type != zipfile.ZIP_STORED:
                raise UserError(f"{path}: member {info.filename} is compressed; {rebuild}")
            n_name, n_extra = struct.unpack_from("<HH", mm, info.header_offset + 26)
            start = info.header_offset + 30 + n_name + n_extra  # after the local header
            shape, fortran, dtype, offset = _array_header(mm, start)
            if dtype.hasobject:
                raise UserError(f"{path}: member {key} holds Python objects; refusing to load it")
            count = int(np.prod(shape))
            if count == 0:
                out[key] = np.empty(shape, dtype=dtype)
                continue
            flat = np.frombuffer(mm, dtype=dtype, count=count, offset=offset)
            out[key] = flat.reshape(shape, order="F" if fortran else "C")
    return out
