"""Property-based fuzzing (Hypothesis) of everything that reads files strangers may hand over: the image loader,
the manifest reader, and the inversion and direction readers. Each either accepts its input or raises its one
documented error type (ImageError, ValueError, TensorFileError); nothing else escapes, and accepted manifests never
yield an output name that leaves -o. Small example budgets keep the whole file to a few seconds.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save

from pix2pix_zero.api import read_inversion_file
from pix2pix_zero.batch import read_items
from pix2pix_zero.directions import load_direction
from pix2pix_zero.files import TensorFileError
from pix2pix_zero.images import ImageError, load_image

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
WORK = Path(tempfile.mkdtemp(prefix="pix2pix-zero-fuzz-"))


def _image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.radial_gradient("L").resize((24, 16)).convert("RGB").save(buffer, format=fmt)
    return buffer.getvalue()


SEEDS = [_image_bytes(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")]


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    mutable = bytearray(data)
    for position, value in edits:
        mutable[position % len(mutable)] = value
    return bytes(mutable[: max(1, len(mutable) - cut)])


def _write(name: str, data: bytes) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 64),
)
def test_image_loader_on_mutated_images(seed, edits, cut):
    path = _write("mutated.png", _mutate(seed, edits, cut))
    try:
        image = load_image(path)
    except ImageError as error:
        assert "mutated.png" in str(error) and "\n" not in str(error)
    else:
        assert image.mode == "RGB" and image.width * image.height <= 64_000_000


@FUZZ
@given(data=st.binary(max_size=512))
def test_image_loader_on_arbitrary_bytes(data):
    try:
        load_image(_write("arbitrary.jpg", data))
    except ImageError as error:
        assert "arbitrary.jpg" in str(error)


MANIFEST_TEXT = st.text(
    alphabet=st.sampled_from(list("a.png,|/\\\"'\n\r:\ufeff{}[]\x00 id image target source ..")), max_size=120
)


def _check_items(items) -> None:
    for item in items:
        assert item.id and "/" not in item.id and "\\" not in item.id and not item.id.startswith(".")
        assert "\n" not in item.id and "\x00" not in item.id


@FUZZ
@given(text=MANIFEST_TEXT)
def test_csv_manifest_reader(text):
    try:
        items = read_items(_write("m.csv", text.encode("utf-8", "surrogatepass")), source="cat", targets=["dog"])
    except ValueError as error:
        assert "m.csv" in str(error)
    else:
        _check_items(items)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
ROWS = st.dictionaries(
    st.sampled_from(["image", "id", "source", "target", "caption", "other"]), JSON_VALUES, max_size=5
)


@FUZZ
@given(rows=st.lists(ROWS | JSON_VALUES, min_size=1, max_size=4))
def test_jsonl_manifest_reader(rows):
    path = _write("m.jsonl", ("\n".join(json.dumps(row) for row in rows) + "\n").encode())
    try:
        items = read_items(path, source="cat", targets=["dog"])
    except ValueError as error:
        assert "m.jsonl" in str(error) and "\n" not in str(error)
    else:
        _check_items(items)


def _safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    return save(tensors, metadata=metadata)


VALID_INVERSION = _safetensors(
    {"x_T": torch.zeros(1, 4, 2, 2), "latents": torch.zeros(1, 4, 2, 2), "image": torch.zeros(1, 3, 16, 16)},
    {"caption": "a cat", "config": json.dumps({"num_steps": 4}), "model": "m", "seed": "0", "image_sha256": "0"},
)
VALID_DIRECTION = _safetensors({"direction": torch.zeros(1, 8, 4)})


@FUZZ
@given(
    seed=st.sampled_from([VALID_INVERSION, VALID_DIRECTION]),
    edits=st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 32),
    header=st.one_of(st.none(), st.integers(0, 2**64 - 1)),
)
def test_inversion_and_direction_readers_on_mutated_files(seed, edits, cut, header):
    data = _mutate(seed, edits, cut)
    if header is not None:
        data = struct.pack("<Q", header) + data[8:]
    path = _write("fuzzed.safetensors", data)
    for reader in (read_inversion_file, load_direction):
        try:
            reader(path)
        except TensorFileError as error:
            assert "fuzzed.safetensors" in str(error) and "\n" not in str(error)


@FUZZ
@given(
    shape=st.lists(st.integers(0, 9), min_size=0, max_size=5),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.int8]),
    fill=st.sampled_from([0.0, 1.0, float("nan"), float("inf")]),
    key=st.sampled_from(["x_T", "direction", "image"]),
)
def test_readers_on_wellformed_files_with_odd_tensors(shape, dtype, fill, key):
    tensor = torch.full(shape, fill if dtype.is_floating_point else 1).to(dtype)
    path = _write("odd.safetensors", _safetensors({key: tensor}))
    for reader in (read_inversion_file, load_direction):
        try:
            loaded = reader(path)
        except TensorFileError as error:
            assert "odd.safetensors" in str(error)
        else:
            assert reader is load_direction and bool(torch.isfinite(loaded).all()) and loaded.dim() == 3
