"""PyTorch weight files (`torch.save` of a state dict) read with NumPy alone.

Both layouts torch writes are read: the zip archive (torch >= 1.6) and the
legacy stream of pickles (e.g. the ImageNet EfficientNet-Lite files). The
pickles are read by a restricted unpickler that builds nothing but ordered
dicts, tensors and their storages: a file naming any other global (code it
would run) is refused, naming the global. torch need not be installed.
"""
import collections
import io
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32,
    "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Storage:
  """A storage's dtype and key; its bytes are filled in after unpickling."""

  def __init__(self, dtype, key):
    self.dtype, self.key, self.data = dtype, key, None


class _Tensor:
  """A tensor's view of a storage, made an array once the storage is read."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset = storage, int(offset)
    self.size, self.stride = tuple(size), tuple(stride)

  def array(self):
    data = self.storage.data
    item = data.itemsize
    needed = self.offset + 1 + sum((n - 1) * s for n, s in
                                   zip(self.size, self.stride) if n)
    if any(n == 0 for n in self.size):
      return np.zeros(self.size, data.dtype)
    if needed > len(data):
      raise ValueError(f"a tensor of shape {self.size} reads past its "
                       f"storage's {len(data)} elements")
    return np.lib.stride_tricks.as_strided(
        data[self.offset:], self.size,
        [s * item for s in self.stride]).copy()


def _rebuild_tensor(storage, offset, size, stride, *unused):
  del unused  # requires_grad, backward hooks, metadata
  return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(tensor, *unused):
  del unused
  return tensor


ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
  """Builds only what ALLOWED and STORAGE_DTYPES name."""

  def __init__(self, stream, source, storages):
    super().__init__(stream)
    self.source, self.storages = source, storages

  def find_class(self, module, name):
    if (module, name) in ALLOWED:
      return ALLOWED[(module, name)]
    if module == "torch" and name in STORAGE_DTYPES:
      return STORAGE_DTYPES[name]
    raise pickle.UnpicklingError(
        f"{self.source}: refers to {module}.{name}, which a weights file "
        f"has no need of (only tensors and dicts are read)")

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
      raise pickle.UnpicklingError(f"{self.source}: unknown persistent id "
                                   f"{pid!r:.80}")
    dtype, key = pid[1], str(pid[2])
    if dtype not in STORAGE_DTYPES.values():
      raise pickle.UnpicklingError(f"{self.source}: unknown storage type "
                                   f"{dtype!r:.80}")
    if key not in self.storages:
      self.storages[key] = _Storage(np.dtype(dtype), key)
    return self.storages[key]


def _arrays(obj, source):
  """{name: array} of an unpickled state dict (or a dict holding one under
  'state_dict')."""
  if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
    obj = obj["state_dict"]
  if not isinstance(obj, dict):
    raise ValueError(f"{source}: holds a {type(obj).__name__}, not a state "
                     f"dict of tensors")
  out = {}
  for name, value in obj.items():
    if not isinstance(value, _Tensor):
      raise ValueError(f"{source}: {name!r} is a {type(value).__name__}, "
                       f"not a tensor")
    out[str(name)] = value.array()
  return out


def _read_legacy(f, source):
  if _Unpickler(f, source, {}).load() != LEGACY_MAGIC:
    raise ValueError(f"{source}: not a PyTorch weights file")
  for _ in range(2):  # protocol version, system information
    _Unpickler(f, source, {}).load()
  storages = {}
  result = _Unpickler(f, source, storages).load()
  for key in _Unpickler(f, source, {}).load():
    storage = storages.get(str(key))
    if storage is None:
      raise ValueError(f"{source}: storage {key} is not used by any tensor")
    (count,) = struct.unpack("<q", f.read(8))
    raw = f.read(count * storage.dtype.itemsize)
    if len(raw) != count * storage.dtype.itemsize:
      raise ValueError(f"{source}: ends inside storage {key} (truncated?)")
    storage.data = np.frombuffer(raw, storage.dtype)
  return result, storages


def _read_zip(path, source):
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl")]
    if len(pickles) != 1:
      raise ValueError(f"{source}: a zip file without one data.pkl")
    root = pickles[0][:-len("data.pkl")]
    storages = {}
    result = _Unpickler(io.BytesIO(archive.read(pickles[0])), source,
                        storages).load()
    for key, storage in storages.items():
      name = f"{root}data/{key}"
      if name not in names:
        raise ValueError(f"{source}: storage {key} is missing")
      storage.data = np.frombuffer(archive.read(name), storage.dtype)
  return result, storages


def read_state_dict(path):
  """{name: numpy array} of a `torch.save`d state dict at `path`; a damaged
  or foreign file is a ValueError naming it."""
  try:
    if zipfile.is_zipfile(path):
      result, storages = _read_zip(path, path)
    else:
      with open(path, "rb") as f:
        result, storages = _read_legacy(f, path)
    missing = [k for k, s in storages.items() if s.data is None]
    if missing:
      raise ValueError(f"{path}: no data for storage {missing[0]}")
    return _arrays(result, path)
  except (pickle.UnpicklingError, EOFError, struct.error, zipfile.BadZipFile,
          UnicodeDecodeError, AttributeError, TypeError, IndexError) as e:
    raise ValueError(f"{path}: cannot be read as a weights file "
                     f"(PyTorch; {type(e).__name__}: {str(e)[:200]})") from e
