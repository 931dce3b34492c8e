"""Read a file written by `torch.save` without torch: the zip format (torch >= 1.6) and the
legacy format before it (a magic number, protocol, system info, the object, its storage keys,
then the raw storages).

The pickle is read by a restricted unpickler: tensors become `TensorRef`s (read, bounds-checked
and converted to numpy only when asked for), dicts and lists stay as they are, and any other
class the file names (an optimizer's, a training tracker's) becomes an inert `Opaque` stand-in,
so nothing in the file runs. A tensor's shape, strides and offset are checked against its
storage's size before any byte is read.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alae_tf.errors import ALAEError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
ZIP_MAGIC = b"PK\x03\x04"
# torch storage type -> (numpy dtype of its elements, bytes per element); bfloat16 is read as uint16.
STORAGE_TYPES = {
    "FloatStorage": (np.float32, 4), "DoubleStorage": (np.float64, 8), "HalfStorage": (np.float16, 2),
    "BFloat16Storage": (np.uint16, 2), "LongStorage": (np.int64, 8), "IntStorage": (np.int32, 4),
    "ShortStorage": (np.int16, 2), "CharStorage": (np.int8, 1), "ByteStorage": (np.uint8, 1),
    "BoolStorage": (np.bool_, 1),
}


class TorchFileError(ALAEError):
    """The file is not a readable torch.save file; the message says why."""


@dataclass(frozen=True)
class Storage:
    key: str
    storage_type: str
    numel: int


class TensorRef:
    """A tensor of the file: dtype, shape and where its elements lie; `array()` reads them."""

    def __init__(self, storage: Storage, offset: int, shape, strides, reader):
        self.storage, self.offset = storage, int(offset)
        self.shape, self.strides = tuple(int(n) for n in shape), tuple(int(n) for n in strides)
        self._reader = reader
        self._check_bounds()

    @property
    def dtype(self):
        return np.dtype(STORAGE_TYPES[self.storage.storage_type][0])

    def _check_bounds(self):
        if len(self.shape) != len(self.strides) or min(self.shape + self.strides, default=0) < 0 or self.offset < 0:
            raise TorchFileError(f"tensor of storage {self.storage.key}: invalid shape {self.shape} / strides {self.strides}")
        if 0 not in self.shape:
            last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.strides))
            if last >= self.storage.numel:
                raise TorchFileError(f"tensor of storage {self.storage.key} reaches element {last} of a storage of "
                                     f"{self.storage.numel}: the file is corrupt")

    def array(self) -> np.ndarray:
        """A fresh C-contiguous numpy array (bfloat16 widened to float32)."""
        elements = self._reader(self.storage)
        if len(elements) != self.storage.numel:
            raise TorchFileError(f"storage {self.storage.key} holds {len(elements)} elements, expected {self.storage.numel}")
        itemsize = elements.itemsize
        view = np.lib.stride_tricks.as_strided(elements[self.offset:], shape=self.shape,
                                               strides=tuple(s * itemsize for s in self.strides), writeable=False)
        array = np.array(view)
        if self.storage.storage_type == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array

    def __repr__(self):
        return f"TensorRef({self.dtype}, {list(self.shape)})"


class Opaque:
    """What any class the file names becomes: it accepts whatever pickle hands it and does nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass


def _opaque_class(module, name):
    return type(f"Opaque[{module}.{name}]", (Opaque,), {})


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storage_for, reader):
        super().__init__(file)
        self._storage_for = storage_for  # persistent id -> Storage
        self._reader = reader

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return lambda data, requires_grad, hooks, *_: data
        if module == "torch" and name in STORAGE_TYPES:
            return name  # only ever used as a tag in persistent ids
        return _opaque_class(module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return self._storage_for(pid)

    def _rebuild_tensor(self, storage, offset, shape, strides, *_):
        if not isinstance(storage, Storage):
            raise pickle.UnpicklingError("a tensor without a storage")
        return TensorRef(storage, offset, shape, strides, self._reader)


def _storage(storage_type, key, numel) -> Storage:
    if storage_type not in STORAGE_TYPES:
        raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
    if not isinstance(numel, int) or numel < 0:
        raise pickle.UnpicklingError(f"invalid storage size {numel!r}")
    return Storage(str(key), storage_type, numel)


def load(path) -> object:
    """The object saved in `path` (dicts, lists, numbers, strings, TensorRefs, Opaques)."""
    path = Path(path)
    if not path.exists():
        raise TorchFileError(f"{path}: no such file")
    if path.is_dir():
        raise TorchFileError(f"{path}: a directory, not a .pth file")
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with open(path, "rb") as file:
            if file.read(4) == ZIP_MAGIC:
                raise TorchFileError(f"{path}: a damaged or truncated zip archive (its directory is missing)")
        return _load_legacy(path)
    except TorchFileError:
        raise
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
            IndexError, AttributeError, struct.error) as exc:
        reason = " ".join(str(exc).split())
        raise TorchFileError(f"{path}: not a readable torch.save file ({type(exc).__name__}: {reason})") from None


def _load_zip(path: Path):
    archive = zipfile.ZipFile(path)
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise TorchFileError(f"{path}: a zip file but not a torch.save archive (no <name>/data.pkl)")
    prefix = pickles[0].rsplit("/", 1)[0]
    little_endian = archive.read(f"{prefix}/byteorder").decode() == "little" if f"{prefix}/byteorder" in archive.namelist() else True
    if not little_endian:
        raise TorchFileError(f"{path}: big-endian tensors are not supported")

    def storage_for(pid):
        _, storage_type, key, _location, numel = pid
        return _storage(storage_type, key, numel)

    def reader(storage: Storage) -> np.ndarray:
        dtype, size = STORAGE_TYPES[storage.storage_type]
        try:  # read when a tensor is used, after load() returned: a damaged member shows only now
            data = archive.read(f"{prefix}/data/{storage.key}")
        except (zipfile.BadZipFile, KeyError, OSError, EOFError, zlib.error) as exc:
            reason = " ".join(str(exc).split())
            raise TorchFileError(f"{path}: not a readable torch.save file (storage {storage.key}: "
                                 f"{type(exc).__name__}: {reason})") from None
        if len(data) < storage.numel * size:
            raise TorchFileError(f"{path}: storage {storage.key} is truncated ({len(data)} bytes, expected {storage.numel * size})")
        return np.frombuffer(data, dtype=dtype, count=storage.numel)

    with archive.open(pickles[0]) as file:
        return _Unpickler(file, storage_for, reader).load()


def _load_legacy(path: Path):
    """Legacy layout: pickles of the magic number, protocol, sys info, the object, the storage keys;
    then per key, in that order, an int64 element count and the raw elements."""
    data = path.read_bytes()
    file = io.BytesIO(data)
    plain = _InertUnpickler
    if plain(file).load() != LEGACY_MAGIC:
        raise TorchFileError(f"{path}: neither a torch zip archive nor a legacy torch.save file (magic number mismatch)")
    plain(file).load()  # protocol version
    plain(file).load()  # system info
    storages: dict[str, Storage] = {}

    def storage_for(pid):
        _, storage_type, key, _location, numel, *_view = pid
        return storages.setdefault(str(key), _storage(storage_type, key, numel))

    offsets: dict[str, int] = {}

    def reader(storage: Storage) -> np.ndarray:
        dtype, size = STORAGE_TYPES[storage.storage_type]
        start = offsets[storage.key]
        return np.frombuffer(data, dtype=dtype, count=storage.numel, offset=start)

    result = _Unpickler(file, storage_for, reader).load()
    keys = plain(file).load()
    position = file.tell()
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise TorchFileError(f"{path}: storage {key} is listed but no tensor uses it")
        if position + 8 > len(data):
            raise TorchFileError(f"{path}: the file ends early (truncated) at storage {key}")
        (count,) = struct.unpack_from("<q", data, position)
        size = STORAGE_TYPES[storage.storage_type][1]
        if count != storage.numel:
            raise TorchFileError(f"{path}: storage {key} is inconsistent ({count} elements stored, {storage.numel} expected)")
        if position + 8 + count * size > len(data):
            raise TorchFileError(f"{path}: the file ends early (truncated): storage {key} needs {8 + count * size} "
                                 f"bytes from byte {position}, the file has {len(data)}")
        offsets[storage.key] = position + 8
        position += 8 + count * size
    if unlisted := sorted(set(storages) - set(offsets)):  # read lazily, after load returned: a KeyError then
        raise TorchFileError(f"{path}: storage(s) {', '.join(unlisted[:3])} of its tensors are missing from its list of "
                             "stored data (damaged)")
    return result


class _InertUnpickler(pickle.Unpickler):
    """For the legacy header's plain values: refuses every class."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"unexpected {module}.{name} in the file header")
