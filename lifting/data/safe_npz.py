"""Read and write .npz archives without trusting pickle.

VideoPose3D-format files (``data_3d_h36m.npz``, ``data_2d_h36m_<source>.npz``) keep their content
as 0-d *object* arrays (``positions_3d``, ``positions_2d``, ``metadata``) whose ``.npy`` payload is
a pickle. ``np.load(allow_pickle=True)`` would run whatever that pickle asks for, so
:func:`load_npz` parses each ``.npy`` member itself:

* plain (numeric, string) arrays are read from the header and the raw bytes, never unpickled;
* object arrays go through :class:`RestrictedUnpickler`, which can only rebuild dicts, lists,
  tuples, strings, numbers, numpy arrays, dtypes and numpy scalars. Any other global the pickle
  names (``os.system``, ``builtins.eval``, a custom class, ...) is refused with a
  :class:`~lifting.errors.DataError` *before* it is looked up, so nothing in the file runs.

:func:`save_npz` writes archives that numpy (``np.load(allow_pickle=True)``), upstream code and
:func:`load_npz` all read. Object payloads are pickled with protocol 3 and name numpy's helpers
by their NumPy 1.x module path (``numpy.core.multiarray``), which NumPy 1.x and 2.x both import;
NumPy 2 itself writes ``numpy._core.*``, which NumPy 1.x fails to import (numpy/numpy#28340), and
upstream lifting code often runs on NumPy 1.x.
"""

from __future__ import annotations

import codecs
import pickle
import pickletools
import zipfile
import zlib
from pathlib import Path
from types import MappingProxyType

import numpy as np
from numpy.lib import format as npy_format

from lifting.errors import DataError
from lifting.io import atomic_path

try:  # NumPy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

#: Pickle protocol of the object payloads :func:`save_npz` writes (readable by any Python 3).
PICKLE_PROTOCOL = 3

#: zlib level of :func:`save_npz`: float poses barely compress, so a higher level buys little (on a
#: 192 MB synthetic 3D file: 176 MB in 8.9 s at level 1, 175 MB in 12.4 s at level 6).
COMPRESS_LEVEL = 1

_NUMPY_CORE_PATHS = ("numpy.core", "numpy._core")


def _allowed_globals() -> dict[tuple[str, str], object]:
    """(module, name) -> the object a restricted pickle may reference.

    ``_reconstruct``/``ndarray``/``dtype`` rebuild arrays, ``scalar`` numpy scalars,
    ``_frombuffer`` arrays pickled with protocol 5, ``_codecs.encode`` the byte strings of
    pickles written by Python 2 (protocol 2). None of them can reach code outside numpy.
    """
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }
    for root in _NUMPY_CORE_PATHS:
        allowed[(f"{root}.multiarray", "_reconstruct")] = _multiarray._reconstruct
        allowed[(f"{root}.multiarray", "scalar")] = _multiarray.scalar
        allowed[(f"{root}.numeric", "_frombuffer")] = _numeric._frombuffer
    return allowed


_ALLOWED = MappingProxyType(_allowed_globals())


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in :func:`_allowed_globals`.

    Built-in containers and scalars (dict, list, tuple, str, bytes, int, float, bool, None) are
    pickle opcodes and need no global. ``encoding="latin1"`` reads arrays pickled by Python 2.
    """

    def __init__(self, file, path: Path, member: str):
        super().__init__(file, encoding="latin1")
        self._path = path
        self._member = member

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                self._path,
                f"member {self._member!r} holds a pickle that asks for the global {module}.{name}, "
                "which a data file never needs; it was refused and nothing from the file was run",
                "use a genuine VideoPose3D-format file (its pickles hold only dicts, lists and numpy "
                "arrays); if you wrote this file yourself, save it with plain arrays, dicts and lists",
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not supported")


def _corrupt(path: Path, what: str) -> DataError:
    return DataError(path, f"not a readable .npz archive ({what})",
                     "re-download or regenerate the file (a truncated or interrupted download is the usual cause)")


def _read_header(fp, path: Path, member: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read the magic string and header of one .npy stream: (shape, fortran_order, dtype)."""
    try:
        version = npy_format.read_magic(fp)
        if version == (1, 0):
            return npy_format.read_array_header_1_0(fp)
        if version == (2, 0):
            return npy_format.read_array_header_2_0(fp)
    except (ValueError, EOFError, SyntaxError, TypeError) as err:
        raise _corrupt(path, f"member {member!r}: bad .npy header: {err}") from None
    raise _corrupt(path, f"member {member!r}: unsupported .npy format version {version}")


def _read_plain(fp, shape, fortran_order: bool, dtype: np.dtype, path: Path, member: str) -> np.ndarray:
    """The raw bytes of a non-object array -> an owned ndarray of ``shape``."""
    count = int(np.prod(shape, dtype=np.int64))
    expected = count * dtype.itemsize
    data = fp.read(expected)
    if len(data) != expected:
        raise _corrupt(path, f"member {member!r}: {len(data)} data bytes, header promises {expected}")
    array = np.frombuffer(data, dtype=dtype, count=count)
    if fortran_order:
        return array.reshape(shape[::-1]).transpose().copy()
    return array.reshape(shape).copy()


def _read_object(fp, shape, dtype: np.dtype, path: Path, member: str) -> np.ndarray:
    """The pickled payload of an object array, through the restricted unpickler."""
    try:
        array = RestrictedUnpickler(fp, path, member).load()
    except DataError:
        raise
    except Exception as err:  # a malformed pickle can fail in many ways; none may escape raw
        raise _corrupt(path, f"member {member!r}: bad pickle payload: {type(err).__name__}: {err}") from None
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape) or array.dtype != dtype:
        raise _corrupt(path, f"member {member!r}: payload is not the {dtype} array of shape {tuple(shape)} "
                             "its header declares")
    return array


def _read_member(archive: zipfile.ZipFile, name: str, path: Path) -> object:
    with archive.open(name) as fp:
        shape, fortran_order, dtype = _read_header(fp, path, name)
        if dtype.hasobject:
            array = _read_object(fp, shape, dtype, path, name)
            return array.item() if array.shape == () else array
        return _read_plain(fp, shape, fortran_order, dtype, path, name)


def load_npz(path: str | Path) -> dict[str, object]:
    """Read every member of an .npz archive, safely.

    Args:
        path: the archive.
    Returns:
        {key: value}, the key being the member name without ``.npy``. Plain arrays come back as
        ndarrays; a 0-d object array comes back as the object it holds (for VideoPose3D files
        the dict that ``np.load(...)[key].item()`` would give); other object arrays as ndarrays.
    Raises:
        DataError: missing file, not a zip, truncated or corrupt member, or a pickle that asks
            for anything but dicts, lists, tuples, numbers, strings and numpy arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found", "check the path and that the file was copied completely")
    try:
        with zipfile.ZipFile(path) as archive:
            return {name[:-4] if name.endswith(".npy") else name: _read_member(archive, name, path)
                    for name in archive.namelist()}
    except DataError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError) as err:
        raise _corrupt(path, f"{type(err).__name__}: {err}") from None


def _legacy_numpy_globals(payload: bytes) -> bytes:
    """Rewrite ``GLOBAL 'numpy._core.X name'`` opcodes of a protocol <= 3 pickle to ``numpy.core.X``.

    Only GLOBAL opcodes are touched (found with :func:`pickletools.genops`), never the bytes of
    the array data. Protocol <= 3 pickles have no frames, and memo references are by index, so
    changing an opcode's length keeps the stream valid.
    """
    pieces, start = [], 0
    for opcode, arg, pos in pickletools.genops(payload):
        if opcode.name == "GLOBAL" and arg.startswith("numpy._core."):
            module, name = arg.split(" ", 1)
            end = payload.index(b"\n", payload.index(b"\n", pos) + 1) + 1
            pieces += [payload[start:pos], b"c" + f"numpy.core.{module[len('numpy._core.'):]}\n{name}\n".encode()]
            start = end
    pieces.append(payload[start:])
    return b"".join(pieces)


def _as_array(value: object) -> np.ndarray:
    """An ndarray as is; any other object wrapped in a 0-d object array (as VideoPose3D stores dicts)."""
    if isinstance(value, np.ndarray):
        return value
    wrapped = np.empty((), dtype=object)
    wrapped[()] = value
    return wrapped


def _write_member(fp, array: np.ndarray) -> None:
    if not array.dtype.hasobject:
        npy_format.write_array(fp, array, allow_pickle=False)
        return
    npy_format.write_array_header_1_0(fp, npy_format.header_data_from_array_1_0(array))
    fp.write(_legacy_numpy_globals(pickle.dumps(array, protocol=PICKLE_PROTOCOL)))


def save_npz(path: str | Path, **arrays: object) -> None:
    """Write a compressed .npz archive atomically (the file appears only once complete).

    Args:
        path: the archive (written as given; no ``.npz`` is appended).
        **arrays: ndarrays, or Python objects (dicts, lists of arrays, ...) which are stored as 0-d
            object arrays, exactly as VideoPose3D's ``np.savez_compressed(..., positions_3d=dict)``.
    """
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL,
                             allowZip64=True) as archive:
            for key, value in arrays.items():
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    _write_member(member, _as_array(value))
