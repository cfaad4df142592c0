"""The GGUF header reader: agreement with the gguf package and llama.cpp, and refusal of corrupt files."""

from __future__ import annotations

import os
import shutil
import struct
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf_builder import Tensor, Value, gguf_bytes, llama_cpp_view

from edge_runtime.errors import BadRequest
from edge_runtime.store import (
    FILE_TYPE_NAMES,
    GGML_TYPES,
    GGUFFormatError,
    GGUFValueType,
    ModelFileError,
    UnloadedArray,
    read_gguf_header,
)

T = GGUFValueType
MiB = 2**20


def _expect_format_error(path: Path, *fragments: str) -> GGUFFormatError:
    with pytest.raises(GGUFFormatError) as caught:
        read_gguf_header(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return caught.value


def _peak_allocation(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
    except GGUFFormatError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_tables_agree_with_the_gguf_package() -> None:
    for type_id, ggml_type in GGML_TYPES.items():
        quant = gguf.GGMLQuantizationType(type_id)
        assert quant.name == ggml_type.name
        assert gguf.GGML_QUANT_SIZES[quant] == (ggml_type.block_size, ggml_type.type_size)
    for file_type, name in FILE_TYPE_NAMES.items():
        assert gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_") == name


def test_tiny_model_header_matches_the_gguf_package(tiny_model_path: Path) -> None:
    header = read_gguf_header(tiny_model_path, array_limit=None)
    reference = gguf.GGUFReader(tiny_model_path)
    expected = {k: f.contents() for k, f in reference.fields.items() if not k.startswith("GGUF.")}
    assert header.version == 3
    assert header.file_size == tiny_model_path.stat().st_size
    assert header.metadata.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert header.metadata[key] == pytest.approx(value), key
        else:
            assert header.metadata[key] == value, key
    assert len(header.tensors) == len(reference.tensors)
    for ours, theirs in zip(header.tensors, reference.tensors):
        assert ours.name == theirs.name
        assert ours.shape == tuple(int(d) for d in theirs.shape)
        assert ours.ggml_type.id == int(theirs.tensor_type)
        assert header.data_offset + ours.offset == theirs.data_offset
        assert ours.n_bytes == theirs.n_bytes
    assert header.data_offset % header.alignment == 0


def test_large_arrays_are_walked_but_left_unloaded(tiny_model_path: Path) -> None:
    header = read_gguf_header(tiny_model_path, array_limit=100)
    tokens = header.metadata["tokenizer.ggml.tokens"]
    assert tokens == UnloadedArray(T.STRING, 466)
    assert header.array_length("tokenizer.ggml.tokens") == 466
    full = read_gguf_header(tiny_model_path, array_limit=None)
    assert len(full.metadata["tokenizer.ggml.tokens"]) == 466  # type: ignore[arg-type]
    assert full.tensors == header.tensors


def test_tiny_model_agrees_with_llama_cpp(tiny_model_path: Path) -> None:
    header = read_gguf_header(tiny_model_path, array_limit=None)
    view = llama_cpp_view(tiny_model_path).facts
    assert sum(t.n_elements for t in header.tensors) == view["n_params"]
    assert sum(t.n_bytes for t in header.tensors) == view["size"]
    assert header.metadata["llama.context_length"] == view["n_ctx_train"]
    assert len(header.metadata["tokenizer.ggml.tokens"]) == view["n_vocab"]  # type: ignore[arg-type]
    for key, text in view["meta"].items():
        value = header.metadata[key]
        if isinstance(value, bool):
            assert text == str(value).lower(), key
        elif isinstance(value, float):
            assert float(text) == pytest.approx(value), key
        elif isinstance(value, (int, str)):
            assert text == str(value), key
    tokens = header.metadata["tokenizer.ggml.tokens"]
    for index, text in view["token_text"].items():
        assert tokens[int(index)] == text  # type: ignore[index]


@pytest.mark.gemma
def test_gemma_header_agrees_with_llama_cpp(gemma_model_path: Path) -> None:
    header = read_gguf_header(gemma_model_path)
    assert header.metadata["general.architecture"] == "gemma3"
    assert header.metadata["general.file_type"] == 15  # Q4_K_M
    assert header.metadata["tokenizer.ggml.tokens"] == UnloadedArray(T.STRING, 262_144)
    assert header.metadata["tokenizer.ggml.scores"] == UnloadedArray(T.FLOAT32, 262_144)

    view = llama_cpp_view(gemma_model_path).facts
    assert view["n_vocab"] == 262_144
    assert sum(t.n_elements for t in header.tensors) == view["n_params"]
    assert sum(t.n_bytes for t in header.tensors) == view["size"]
    assert header.metadata["gemma3.context_length"] == view["n_ctx_train"]
    assert header.metadata["gemma3.attention.sliding_window"] == view["n_swa"]
    for key, text in view["meta"].items():
        value = header.metadata[key]
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            assert text == str(value), key

    full = read_gguf_header(gemma_model_path, array_limit=None)
    tokens = full.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, list) and len(tokens) == 262_144
    for index, text in view["token_text"].items():
        assert tokens[int(index)] == text


def test_every_value_type_and_nested_arrays_round_trip(write_file: Callable[[bytes], Path]) -> None:
    scalars = [
        (T.UINT8, 255),
        (T.INT8, -128),
        (T.UINT16, 65535),
        (T.INT16, -32768),
        (T.UINT32, 2**32 - 1),
        (T.INT32, -(2**31)),
        (T.FLOAT32, 1.5),
        (T.BOOL, True),
        (T.UINT64, 2**64 - 1),
        (T.INT64, -(2**63)),
        (T.FLOAT64, -2.25),
        (T.STRING, "héllo ✓"),
    ]
    metadata = [(f"k.{t.name.lower()}", Value(t, v)) for t, v in scalars]
    metadata += [
        ("k.ints", Value(T.ARRAY, [1, -2, 3], T.INT32)),
        ("k.bools", Value(T.ARRAY, [True, False], T.BOOL)),
        ("k.strings", Value(T.ARRAY, ["a", "", "ccc"], T.STRING)),
        ("k.empty", Value(T.ARRAY, [], T.FLOAT64)),
        (
            "k.nested",
            Value(T.ARRAY, [Value(T.ARRAY, [1, 2], T.UINT8), Value(T.ARRAY, ["x"], T.STRING)], T.ARRAY),
        ),
    ]
    for version in (2, 3):
        header = read_gguf_header(write_file(gguf_bytes(metadata, version=version)))
        assert header.version == version
        assert header.tensors == ()
        for t, v in scalars:
            assert header.metadata[f"k.{t.name.lower()}"] == v
        assert header.metadata["k.ints"] == [1, -2, 3]
        assert header.metadata["k.bools"] == [True, False]
        assert header.metadata["k.strings"] == ["a", "", "ccc"]
        assert header.metadata["k.empty"] == []
        assert header.metadata["k.nested"] == [[1, 2], ["x"]]


def test_tensor_infos_and_custom_alignment(write_file: Callable[[bytes], Path]) -> None:
    q8_row = bytes(34 * 2)  # two Q8_0 blocks of 32 elements
    tensors = [
        Tensor("a", (64,), 8, q8_row),
        Tensor("b", (4, 3), 0, np.arange(12, dtype=np.float32).tobytes()),
    ]
    metadata = [("general.alignment", Value(T.UINT32, 64))]
    header = read_gguf_header(write_file(gguf_bytes(metadata, tensors, alignment=64)))
    assert header.alignment == 64
    assert header.data_offset % 64 == 0
    a, b = header.tensors
    assert (a.name, a.shape, a.ggml_type.name, a.n_elements, a.n_bytes, a.offset) == (
        "a",
        (64,),
        "Q8_0",
        64,
        68,
        0,
    )
    assert (b.name, b.shape, b.ggml_type.name, b.n_bytes, b.offset) == ("b", (4, 3), "F32", 48, 128)


def test_errors_are_bad_requests_naming_the_file(tmp_path: Path) -> None:
    assert issubclass(GGUFFormatError, ModelFileError)
    assert issubclass(ModelFileError, BadRequest)
    missing = tmp_path / "missing.gguf"
    with pytest.raises(ModelFileError, match="missing.gguf: cannot read the file"):
        read_gguf_header(missing)
    with pytest.raises(ModelFileError, match="cannot read the file"):
        read_gguf_header(tmp_path)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "truncated"),
        (b"GGUF\x03\x00", "truncated"),
        (b"GGML" + bytes(40), "not a GGUF file"),
        (b"PK\x03\x04" + bytes(40), "not a GGUF file"),
        (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "version 1 is not supported"),
        (b"GGUF" + struct.pack("<IQQ", 99, 0, 0), "version 99 is not supported"),
        (b"GGUF" + struct.pack(">IQQ", 3, 0, 0), "big-endian"),
    ],
)
def test_refuses_what_is_not_gguf(write_file: Callable[[bytes], Path], data: bytes, fragment: str) -> None:
    _expect_format_error(write_file(data), fragment)


def test_refuses_inconsistent_contents(write_file: Callable[[bytes], Path]) -> None:
    def header_with(metadata: list[tuple[str, Value]], tensors: tuple[Tensor, ...] = ()) -> Path:
        return write_file(gguf_bytes(metadata, tensors))

    f32 = bytes(16)
    one = ("a", Value(T.UINT8, 1))
    _expect_format_error(header_with([one, one]), "duplicate metadata key 'a'")
    _expect_format_error(header_with([("b", Value(T.BOOL, 2))]), "bool")
    _expect_format_error(header_with([("g", Value(T.ARRAY, [2], T.BOOL))]), "bool")
    _expect_format_error(header_with([("general.alignment", Value(T.UINT32, 48))]), "power of two")
    _expect_format_error(
        header_with(
            [],
            (
                Tensor("w", (4,), 0, f32),
                Tensor("w", (4,), 0, f32),
            ),
        ),
        "duplicate tensor",
    )
    _expect_format_error(header_with([], (Tensor("w", (4,), 77, f32),)), "unknown ggml type 77")
    _expect_format_error(header_with([], (Tensor("w", (1, 1, 1, 1, 4), 0, f32),)), "5 dimensions")
    _expect_format_error(header_with([], (Tensor("w", (20,), 2, bytes(18)),)), "not a multiple")

    unknown_type = bytearray(gguf_bytes([one]))
    struct.pack_into("<I", unknown_type, 24 + 8 + 1, 13)
    _expect_format_error(write_file(bytes(unknown_type)), "unknown value type 13")

    bad_utf8 = gguf_bytes([("k\xff", Value(T.UINT8, 1))]).replace("k\xff".encode(), b"k\xff")
    _expect_format_error(write_file(bad_utf8), "not valid UTF-8")

    too_deep = Value(T.UINT8, 1)
    for _ in range(10):
        too_deep = Value(T.ARRAY, [too_deep], too_deep.type)
    _expect_format_error(header_with([("deep", too_deep)]), "nests arrays deeper")

    overlapping = bytearray(gguf_bytes([], [Tensor("x", (4,), 0, f32), Tensor("y", (4,), 0, f32)]))
    second_offset = overlapping.rindex(b"y") + 1 + 4 + 8 + 4
    struct.pack_into("<Q", overlapping, second_offset, 0)
    _expect_format_error(write_file(bytes(overlapping)), "overlaps")
    struct.pack_into("<Q", overlapping, second_offset, 8)
    _expect_format_error(write_file(bytes(overlapping)), "not aligned")


def test_truncation_at_every_header_byte_and_in_the_data(tiny_model_path: Path, tmp_path: Path) -> None:
    header = read_gguf_header(tiny_model_path)
    section_starts = {f.offset for f in gguf.GGUFReader(tiny_model_path).fields.values()}
    cuts = set(range(header.data_offset + 1)) | {header.data_offset + t.offset + 1 for t in header.tensors}
    cuts |= {header.file_size - 1}
    assert section_starts <= cuts
    truncated = tmp_path / "truncated.gguf"
    shutil.copyfile(tiny_model_path, truncated)
    for cut in sorted(cuts, reverse=True):
        os.truncate(truncated, cut)
        with pytest.raises(GGUFFormatError) as caught:
            read_gguf_header(truncated)
        message = str(caught.value)
        assert message.startswith(f"{truncated}: ") and "\n" not in message, cut
        assert "truncated" in message or "cannot fit" in message, (cut, message)


@pytest.mark.gemma
def test_truncated_gemma_headers(gemma_model_path: Path, tmp_path: Path) -> None:
    header = read_gguf_header(gemma_model_path)
    truncated = tmp_path / "gemma-truncated.gguf"
    with open(gemma_model_path, "rb") as source:
        prefix = source.read(header.data_offset + 4096)
    for cut in (header.data_offset + 4096, header.data_offset, header.data_offset // 2, 1_000_000, 5000, 100):
        truncated.write_bytes(prefix[:cut])
        _expect_format_error(truncated, "truncated")


def _tiny_with(tiny_model_path: Path, tmp_path: Path, patch: Callable[[bytearray], None]) -> Path:
    data = bytearray(tiny_model_path.read_bytes())
    patch(data)
    path = tmp_path / "patched.gguf"
    path.write_bytes(data)
    return path


def test_huge_lengths_and_counts_fail_fast_without_allocating(tiny_model_path: Path, tmp_path: Path) -> None:
    def first_key_length(data: bytearray) -> None:
        struct.pack_into("<Q", data, 24, 2**40)

    def tensor_count(data: bytearray) -> None:
        struct.pack_into("<Q", data, 8, 2**60)

    def metadata_count(data: bytearray) -> None:
        struct.pack_into("<Q", data, 16, 2**40)

    def token_count(data: bytearray) -> None:
        key = b"tokenizer.ggml.tokens"
        struct.pack_into("<Q", data, data.index(key) + len(key) + 4 + 4, 2**50)

    def merges_string_length(data: bytearray) -> None:
        key = b"tokenizer.ggml.merges"
        struct.pack_into("<Q", data, data.index(key) + len(key) + 4 + 4 + 8, 2**40)

    cases = [
        (first_key_length, "1099511627776 bytes"),
        (tensor_count, "tensor count 1152921504606846976 cannot fit"),
        (metadata_count, "metadata count 1099511627776 cannot fit"),
        (token_count, "has 1125899906842624 elements, which cannot fit"),
        (merges_string_length, "tokenizer.ggml.merges'[0] (1099511627776 bytes)"),
    ]
    for patch, fragment in cases:
        path = _tiny_with(tiny_model_path, tmp_path, patch)
        _expect_format_error(path, fragment)
        assert _peak_allocation(partial(read_gguf_header, path, array_limit=None)) < MiB


@pytest.mark.gemma
def test_gemma_header_reads_within_a_small_allocation(gemma_model_path: Path) -> None:
    assert _peak_allocation(lambda: read_gguf_header(gemma_model_path)) < 4 * MiB
