"""Our own GGUF header reader: metadata and tensor infos, read from a memory map without trusting the file.

Every length and count is checked against the bytes left in the file before anything is read or allocated,
so a corrupt or hostile file fails fast with a `GGUFFormatError` instead of exhausting memory.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import TypeAlias

import numpy as np

from edge_runtime.errors import BadRequest
from edge_runtime.store.ggml_types import GGML_TYPES, GGMLType

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_TENSOR_DIMS = 4
MAX_ARRAY_NESTING = 8
DEFAULT_ARRAY_LIMIT = 1024

# Smallest encodings, used to refuse counts that cannot fit in what is left of the file.
_MIN_KV_BYTES = 8 + 4 + 1  # key length, value type, a one-byte value
_MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8  # name length, n_dims, type, offset
_FIXED_HEADER_BYTES = 4 + 4 + 8 + 8  # magic, version, tensor count, kv count


class ModelFileError(BadRequest):
    """A model file cannot be used: raised by the reader and the store, always naming the file."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class GGUFFormatError(ModelFileError):
    """The file is not a well-formed GGUF: wrong magic, unsupported version, truncated or inconsistent."""


class GGUFValueType(IntEnum):
    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


_SCALAR_DTYPES: dict[GGUFValueType, np.dtype] = {
    GGUFValueType.UINT8: np.dtype("<u1"),
    GGUFValueType.INT8: np.dtype("<i1"),
    GGUFValueType.UINT16: np.dtype("<u2"),
    GGUFValueType.INT16: np.dtype("<i2"),
    GGUFValueType.UINT32: np.dtype("<u4"),
    GGUFValueType.INT32: np.dtype("<i4"),
    GGUFValueType.FLOAT32: np.dtype("<f4"),
    GGUFValueType.BOOL: np.dtype("<u1"),
    GGUFValueType.UINT64: np.dtype("<u8"),
    GGUFValueType.INT64: np.dtype("<i8"),
    GGUFValueType.FLOAT64: np.dtype("<f8"),
}
_SCALAR_STRUCTS: dict[GGUFValueType, struct.Struct] = {
    value_type: struct.Struct("<" + code)
    for value_type, code in zip(_SCALAR_DTYPES, ("B", "b", "H", "h", "I", "i", "f", "B", "Q", "q", "d"))
}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class UnloadedArray:
    """A metadata array left on disk (bounds checked, elements not read): see `array_limit`."""

    element_type: GGUFValueType
    count: int

    def __len__(self) -> int:
        return self.count


MetadataValue: TypeAlias = "int | float | bool | str | list[MetadataValue] | UnloadedArray"


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry in the header; `shape` is in ggml order (fastest-varying dimension first)."""

    name: str
    shape: tuple[int, ...]
    ggml_type: GGMLType
    offset: int

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def n_bytes(self) -> int:
        return self.ggml_type.n_bytes(self.n_elements)


@dataclass(frozen=True)
class GGUFHeader:
    """Everything before the tensor data. `data_offset` is where tensor offsets count from."""

    path: Path
    version: int
    metadata: dict[str, MetadataValue] = field(repr=False)
    tensors: tuple[TensorInfo, ...] = field(repr=False)
    alignment: int
    data_offset: int
    file_size: int

    def int_value(self, key: str) -> int | None:
        value = self.metadata.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def float_value(self, key: str) -> float | None:
        value = self.metadata.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def str_value(self, key: str) -> str | None:
        value = self.metadata.get(key)
        return value if isinstance(value, str) else None

    def array_length(self, key: str) -> int | None:
        value = self.metadata.get(key)
        return len(value) if isinstance(value, (list, UnloadedArray)) else None


def read_gguf_header(path: Path | str, *, array_limit: int | None = DEFAULT_ARRAY_LIMIT) -> GGUFHeader:
    """Read and check a GGUF file's header.

    Arrays longer than `array_limit` elements (a tokenizer's 262,144 token strings) are walked and bounds
    checked but kept as `UnloadedArray`, which keeps a large header to a fraction of a second; pass None to
    read them all.
    """
    path = Path(path)
    try:
        with open(path, "rb") as file:
            file_size = os.fstat(file.fileno()).st_size
            if file_size < _FIXED_HEADER_BYTES:
                if file_size >= 4 and file.read(4) != GGUF_MAGIC:
                    raise GGUFFormatError(path, "not a GGUF file (wrong magic)")
                raise GGUFFormatError(path, f"truncated: {file_size} bytes is shorter than a GGUF header")
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
                return _HeaderParser(path, view, file_size, array_limit).parse()
    except OSError as error:
        raise ModelFileError(path, f"cannot read the file ({error.strerror or error})") from error


class _HeaderParser:
    def __init__(self, path: Path, view: mmap.mmap, size: int, array_limit: int | None) -> None:
        self.path = path
        self.view = view
        self.size = size
        self.array_limit = array_limit
        self.pos = 0

    def fail(self, reason: str) -> GGUFFormatError:
        return GGUFFormatError(self.path, reason)

    def need(self, n_bytes: int, what: str) -> None:
        left = self.size - self.pos
        if n_bytes > left:
            raise self.fail(
                f"truncated: {what} needs {n_bytes} bytes at offset {self.pos}, only {left} remain"
            )

    def u32(self, what: str) -> int:
        self.need(4, what)
        (value,) = _U32.unpack_from(self.view, self.pos)
        self.pos += 4
        return int(value)

    def u64(self, what: str) -> int:
        self.need(8, what)
        (value,) = _U64.unpack_from(self.view, self.pos)
        self.pos += 8
        return int(value)

    def raw_string(self, what: str) -> bytes:
        length = self.u64(f"{what} length")
        self.need(length, f"{what} ({length} bytes)")
        data = self.view[self.pos : self.pos + length]
        self.pos += length
        return data

    def text(self, what: str) -> str:
        data = self.raw_string(what)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise self.fail(f"{what} is not valid UTF-8") from error

    def value_type(self, what: str) -> GGUFValueType:
        code = self.u32(f"{what} type")
        try:
            return GGUFValueType(code)
        except ValueError:
            raise self.fail(f"{what} has unknown value type {code}") from None

    def parse(self) -> GGUFHeader:
        magic = bytes(self.view[0:4])
        if magic != GGUF_MAGIC:
            raise self.fail(f"not a GGUF file (magic {magic!r}, expected {GGUF_MAGIC!r})")
        self.pos = 4
        version = self.u32("version")
        if version not in SUPPORTED_VERSIONS:
            if int.from_bytes(version.to_bytes(4, "little"), "big") in SUPPORTED_VERSIONS:
                raise self.fail("big-endian GGUF files are not supported")
            raise self.fail(f"GGUF version {version} is not supported (only {SUPPORTED_VERSIONS})")
        n_tensors = self.u64("tensor count")
        n_kv = self.u64("metadata count")
        left = self.size - self.pos
        if n_tensors > left // _MIN_TENSOR_INFO_BYTES:
            raise self.fail(f"tensor count {n_tensors} cannot fit in the {left} bytes left in the file")
        if n_kv > (left - n_tensors * _MIN_TENSOR_INFO_BYTES) // _MIN_KV_BYTES:
            raise self.fail(f"metadata count {n_kv} cannot fit in the {left} bytes left in the file")

        metadata: dict[str, MetadataValue] = {}
        for index in range(n_kv):
            key = self.text(f"metadata key #{index}")
            if key in metadata:
                raise self.fail(f"duplicate metadata key {key!r}")
            value_type = self.value_type(f"metadata {key!r}")
            metadata[key] = self.value(value_type, f"metadata {key!r}")

        alignment = self.alignment(metadata)
        tensors = tuple(self.tensor_info(index) for index in range(n_tensors))
        data_offset = -(-self.pos // alignment) * alignment
        self.check_tensor_data(tensors, data_offset, alignment)
        return GGUFHeader(
            path=self.path,
            version=version,
            metadata=metadata,
            tensors=tensors,
            alignment=alignment,
            data_offset=data_offset,
            file_size=self.size,
        )

    def value(self, value_type: GGUFValueType, what: str) -> MetadataValue:
        if value_type is GGUFValueType.STRING:
            return self.raw_string(what).decode("utf-8", errors="surrogateescape")
        if value_type is GGUFValueType.ARRAY:
            return self.array(what, depth=0, load=True)
        scalar_struct = _SCALAR_STRUCTS[value_type]
        self.need(scalar_struct.size, what)
        (scalar,) = scalar_struct.unpack_from(self.view, self.pos)
        self.pos += scalar_struct.size
        if value_type is GGUFValueType.BOOL:
            if scalar not in (0, 1):
                raise self.fail(f"{what} is a bool with byte value {scalar}")
            return bool(scalar)
        return scalar  # type: ignore[no-any-return]

    def array(self, what: str, *, depth: int, load: bool) -> MetadataValue:
        if depth >= MAX_ARRAY_NESTING:
            raise self.fail(f"{what} nests arrays deeper than {MAX_ARRAY_NESTING}")
        element_type = self.value_type(f"{what} element")
        count = self.u64(f"{what} element count")
        left = self.size - self.pos
        if element_type in _SCALAR_DTYPES:
            min_element_bytes = _SCALAR_DTYPES[element_type].itemsize
        elif element_type is GGUFValueType.STRING:
            min_element_bytes = 8
        else:
            min_element_bytes = 4 + 8
        if count > left // min_element_bytes:
            raise self.fail(f"{what} has {count} elements, which cannot fit in the {left} bytes left")
        load = load and (self.array_limit is None or count <= self.array_limit)

        if element_type in _SCALAR_DTYPES:
            dtype = _SCALAR_DTYPES[element_type]
            end = self.pos + count * dtype.itemsize
            if not load:
                self.pos = end
                return UnloadedArray(element_type, count)
            values = np.frombuffer(self.view[self.pos : end], dtype=dtype)
            self.pos = end
            if element_type is GGUFValueType.BOOL:
                if np.any(values > 1):
                    raise self.fail(f"{what} holds a bool byte other than 0 or 1")
                return [bool(v) for v in values]
            return list(values.tolist())

        if element_type is GGUFValueType.STRING:
            return self.string_array(what, count, load=load)
        items = [
            self.array(f"{what}[{i}]", depth=depth + 1, load=load) for i in range(count)
        ]  # arrays of arrays
        return items if load else UnloadedArray(element_type, count)

    def string_array(self, what: str, count: int, *, load: bool) -> MetadataValue:
        """The hot loop of a tokenizer's vocabulary: one length check per string, no per-element calls."""
        view, size, pos = self.view, self.size, self.pos
        items: list[MetadataValue] = []
        for index in range(count):
            if size - pos < 8:
                self.pos = pos
                self.need(8, f"{what}[{index}] length")
            (length,) = _U64.unpack_from(view, pos)
            pos += 8
            if length > size - pos:
                self.pos = pos
                self.need(length, f"{what}[{index}] ({length} bytes)")
            if load:
                items.append(view[pos : pos + length].decode("utf-8", errors="surrogateescape"))
            pos += length
        self.pos = pos
        return items if load else UnloadedArray(GGUFValueType.STRING, count)

    def alignment(self, metadata: dict[str, MetadataValue]) -> int:
        value = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value & (value - 1):
            raise self.fail(f"general.alignment must be a positive power of two, got {value!r}")
        return value

    def tensor_info(self, index: int) -> TensorInfo:
        name = self.text(f"tensor #{index} name")
        what = f"tensor {name!r}"
        n_dims = self.u32(f"{what} dimension count")
        if n_dims > MAX_TENSOR_DIMS:
            raise self.fail(f"{what} has {n_dims} dimensions (at most {MAX_TENSOR_DIMS})")
        shape = tuple(self.u64(f"{what} dimension {d}") for d in range(n_dims))
        type_id = self.u32(f"{what} type")
        ggml_type = GGML_TYPES.get(type_id)
        if ggml_type is None:
            raise self.fail(f"{what} has unknown ggml type {type_id}")
        offset = self.u64(f"{what} offset")
        if shape and shape[0] % ggml_type.block_size:
            raise self.fail(
                f"{what} row of {shape[0]} elements is not a multiple of the {ggml_type.name} block size"
            )
        return TensorInfo(name=name, shape=shape, ggml_type=ggml_type, offset=offset)

    def check_tensor_data(self, tensors: tuple[TensorInfo, ...], data_offset: int, alignment: int) -> None:
        data_size = self.size - data_offset
        names: set[str] = set()
        for tensor in tensors:
            if tensor.name in names:
                raise self.fail(f"duplicate tensor name {tensor.name!r}")
            names.add(tensor.name)
            if tensor.offset % alignment:
                raise self.fail(
                    f"tensor {tensor.name!r} offset {tensor.offset} is not aligned to {alignment}"
                )
            if tensor.offset + tensor.n_bytes > data_size:
                raise self.fail(
                    f"truncated: tensor {tensor.name!r} data ends at byte {data_offset + tensor.offset + tensor.n_bytes}"
                    f" but the file has {self.size}"
                )
        previous_end = 0
        for tensor in sorted(tensors, key=lambda t: t.offset):
            if tensor.offset < previous_end:
                raise self.fail(f"tensor {tensor.name!r} data overlaps the tensor before it")
            previous_end = tensor.offset + tensor.n_bytes
