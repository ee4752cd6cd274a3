"""The consolidated training store: one uncompressed ``.npz`` per split.

``results/dataset/ready/{split}.npz`` (split ``train``, ``val`` or ``eval``) holds, for N samples
of ``size x size`` pixels:

=============  ==================  ===================================================
key            dtype, shape        meaning
=============  ==================  ===================================================
coherence      float32 (N, H, W)   coherence in [0, 1]
phase          float32 (N, H, W)   wrapped phase, radians in [-pi, pi]
label          uint8 (N, H, W)     1 where an annotated moving area covers the pixel
valid          uint8 (N, H, W)     1 where the pixel is usable (not layover/shadow, not nodata)
sample_id      int64 (N,)          row key into ``results/dataset/ready/index.csv``
=============  ==================  ===================================================

Optional members, present when the samples come from simulated stacks (the simulator's truth;
absent for real data, and then every truth-based score is skipped):

=============  ==================  ===================================================
truth          uint8 (N, H, W)     1 where the true motion is visible: ``|true deformation
                                   phase| >= simulation.annotations.visibility_rad`` on a
                                   truth-valid pixel (not layover/shadow, true coherence >=
                                   ``simulation.truth.coherence_min``); 0 on invalid pixels
decoy          uint8 (N, H, W)     decoy kind code of the pixel (0: none), 0 on invalid pixels
decoy_kinds    str, 0-d            JSON object ``{"1": "low_coherence_bubble", ...}``: code -> kind
=============  ==================  ===================================================

Loading is a single ``np.load`` of contiguous arrays: memory speed. Members are stored
uncompressed, so :func:`read_store` can also memory-map them (``mmap=True``) for random access
without reading the whole file; :class:`StoreWriter` builds a store sample by sample with
memory bounded by the caller's batches (temporary ``.npy`` memmaps packed into the ``.npz``).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile

import numpy as np

from ..errors import IsslideError
from ..files import file_mode

KEYS = {
    "coherence": np.float32,
    "phase": np.float32,
    "label": np.uint8,
    "valid": np.uint8,
    "sample_id": np.int64,
}
# per-sample optional members (simulated stacks): same shape as ``label``
OPTIONAL_KEYS = {"truth": np.uint8, "decoy": np.uint8}
DECOY_KINDS = "decoy_kinds"  # optional 0-d string member: JSON {code: kind name}


def decoy_kinds(store: dict) -> dict[int, str]:
    """The decoy kind names of a store, {code: name} (empty without a ``decoy_kinds`` member)."""
    import json

    raw = store.get(DECOY_KINDS)
    if raw is None:
        return {}
    return {int(k): str(v) for k, v in json.loads(str(np.asarray(raw))).items()}


def kinds_member(kinds: dict) -> np.ndarray:
    """The ``decoy_kinds`` member for {code: name}."""
    import json

    return np.array(json.dumps({str(int(k)): str(v) for k, v in sorted(kinds.items())}))


def write_store(path: str, arrays: dict) -> None:
    """Write the store atomically (temporary file + rename)."""
    missing = set(KEYS) - set(arrays)
    if missing:
        raise IsslideError(f"{path}: training store lacks {', '.join(sorted(missing))}")
    n = len(arrays["sample_id"])
    data = {}
    for key, dtype in KEYS.items():
        a = np.ascontiguousarray(np.asarray(arrays[key], dtype=dtype))
        if a.shape[0] != n:
            raise IsslideError(f"{path}: '{key}' has {a.shape[0]} samples, expected {n}")
        data[key] = a
    for key, dtype in OPTIONAL_KEYS.items():
        if key in arrays:
            a = np.ascontiguousarray(np.asarray(arrays[key], dtype=dtype))
            if a.shape != data["label"].shape:
                raise IsslideError(f"{path}: '{key}' has shape {a.shape}, not that of 'label'")
            data[key] = a
    if DECOY_KINDS in arrays:
        data[DECOY_KINDS] = np.asarray(arrays[DECOY_KINDS], dtype=str)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npz.part")
    os.chmod(tmp, file_mode())  # outputs follow the umask (mkstemp makes 0600)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_store(path: str, mmap: bool = False) -> dict[str, np.ndarray]:
    """Read a store; a missing, corrupt or incomplete file is an error naming it.

    Uncompressed members (as written here) are read straight into arrays at disk/page-cache
    speed; ``mmap=True`` returns read-only memory maps instead, for random access to large
    stores without loading them.
    """
    if not os.path.exists(path):
        raise IsslideError(f"{path}: training store not found; build it with the dataset rules")
    try:
        layout = store_layout(path)
    except _Compressed:
        layout = None
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise IsslideError(
            f"{path}: unreadable training store ({exc}); delete it and rerun"
        ) from None
    if layout is None:  # a compressed store (np.savez_compressed): the slow, general path
        try:
            with np.load(path, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError
            raise IsslideError(
                f"{path}: unreadable training store ({exc}); delete it and rerun"
            ) from None
    else:
        out = {}
        with open(path, "rb", buffering=0) as fh:
            for key, (offset, dtype, shape, order) in layout.items():
                if mmap and len(shape) > 0 and int(np.prod(shape)) > 0:
                    out[key] = np.memmap(
                        path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order
                    )
                    continue
                a = np.empty(shape, dtype, order=order)
                view = memoryview(a.reshape(-1, order="A")).cast("B")
                fh.seek(offset)
                got = 0
                while got < len(view):
                    n = fh.readinto(view[got:])
                    if not n:
                        raise IsslideError(
                            f"{path}: training store is truncated; delete it and rerun"
                        )
                    got += n
                out[key] = a
    missing = set(KEYS) - set(out)
    if missing:
        raise IsslideError(f"{path}: training store lacks {', '.join(sorted(missing))}; rebuild it")
    return out


class _Compressed(Exception):
    pass


def store_layout(path: str) -> dict[str, tuple[int, np.dtype, tuple, str]]:
    """key -> (byte offset of the data, dtype, shape, order) of each uncompressed member."""
    out = {}
    size = os.path.getsize(path)
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            if info.compress_type != zipfile.ZIP_STORED:
                raise _Compressed(info.filename)
            fh.seek(info.header_offset)
            local = fh.read(30)
            if local[:4] != b"PK\x03\x04":
                raise ValueError(f"bad local header of {info.filename}")
            name_len = int.from_bytes(local[26:28], "little")
            extra_len = int.from_bytes(local[28:30], "little")
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(fh)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(fh)
            offset = fh.tell()
            if dtype.hasobject:
                raise ValueError(f"member {info.filename} holds Python objects")
            if offset + int(np.prod(shape)) * dtype.itemsize > size:
                raise ValueError(f"member {info.filename} is truncated")
            out[info.filename[:-4]] = (offset, dtype, tuple(shape), "F" if fortran else "C")
    return out


def read_rows(path: str, rows, keys=None, layout=None) -> dict[str, np.ndarray]:
    """Samples ``rows`` of a store (copies), mapping the file only for this call."""
    layout = layout or store_layout(path)
    rows = np.asarray(rows, np.int64)
    out = {}
    for key, (offset, dtype, shape, order) in layout.items():
        if keys is not None and key not in keys:
            continue
        if len(shape) == 0:  # a 0-d attribute member (decoy_kinds), not per sample
            continue
        if int(np.prod(shape)) == 0:
            out[key] = np.zeros((len(rows), *shape[1:]), dtype)
            continue
        mm = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
        out[key] = np.array(mm[rows])
        del mm
    return out


class StoreWriter:
    """Write a store of ``n`` samples of ``size x size`` pixels in pieces, then pack it atomically.

    ``writer.put(i, coherence=..., phase=..., label=..., valid=..., sample_id=...)`` fills
    samples ``i:i+len`` of temporary ``.npy`` files (positioned writes: memory stays that of the
    pieces); ``close()`` packs them into ``path``. Used as a context manager, an exception
    removes the temporary files and leaves ``path`` untouched. ``optional`` names the members of
    :data:`OPTIONAL_KEYS` to write too; ``kinds`` ({code: name}) adds a ``decoy_kinds`` member.
    """

    def __init__(self, path: str, n: int, size, optional=(), kinds: dict | None = None):
        self.path = path
        self.n = int(n)
        self.kinds = dict(kinds) if kinds is not None else None
        unknown = set(optional) - set(OPTIONAL_KEYS)
        if unknown:
            raise ValueError(f"unknown optional store members {sorted(unknown)}")
        members = {**KEYS, **{k: OPTIONAL_KEYS[k] for k in optional}}
        h, w = (size, size) if np.isscalar(size) else size
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self.tmpdir = tempfile.mkdtemp(dir=directory, prefix=".store-")
        self.files = {}
        for key, dtype in members.items():
            shape = (self.n,) if key == "sample_id" else (self.n, h, w)
            name = os.path.join(self.tmpdir, key + ".npy")
            header = {
                "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                "fortran_order": False,
                "shape": shape,
            }
            with open(name, "wb") as fh:
                np.lib.format.write_array_header_2_0(fh, header)
                offset = fh.tell()
                row = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
                fh.truncate(offset + row * self.n)
            fd = os.open(name, os.O_WRONLY)
            self.files[key] = (fd, offset, row, np.dtype(dtype), shape[1:])

    def put(self, start: int, **arrays) -> None:
        for key, value in arrays.items():
            fd, offset, row, dtype, shape = self.files[key]
            a = np.ascontiguousarray(value, dtype=dtype)
            if a.shape[1:] != shape or start + a.shape[0] > self.n:
                raise ValueError(f"'{key}': {a.shape} at {start} does not fit ({self.n}, *{shape})")
            data = memoryview(a.reshape(-1)).cast("B")
            pos = offset + row * int(start)
            while len(data):
                n = os.pwrite(fd, data, pos)
                data, pos = data[n:], pos + n

    def _close_files(self) -> list[str]:
        names = list(self.files)
        for fd, *_ in self.files.values():
            os.close(fd)
        self.files.clear()
        return names

    def close(self) -> None:
        names = self._close_files()
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npz.part")
        os.close(fd)
        os.chmod(tmp, file_mode())  # outputs follow the umask (mkstemp makes 0600)
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for key in names:
                    src = os.path.join(self.tmpdir, key + ".npy")
                    with (
                        open(src, "rb") as fin,
                        zf.open(key + ".npy", "w", force_zip64=True) as fout,
                    ):
                        shutil.copyfileobj(fin, fout, 16 << 20)
                if self.kinds is not None:
                    buf = io.BytesIO()
                    np.lib.format.write_array(buf, kinds_member(self.kinds))
                    zf.writestr(DECOY_KINDS + ".npy", buf.getvalue())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def abort(self) -> None:
        self._close_files()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
