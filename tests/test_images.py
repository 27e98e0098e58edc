"""Tests for pix2pix_zero.images: loading, resizing, tensors, atomic PNG output, grids."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from pix2pix_zero import images
from pix2pix_zero.images import (
    ImageError,
    OutputExistsError,
    atomic_write_bytes,
    fit_size,
    labelled_grid,
    load_image,
    pil_to_tensor,
    prepare_image,
    read_png_metadata,
    save_png,
    tensor_to_pil,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def _rgb(image: Image.Image, xy: tuple[int, int]) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)[xy[1], xy[0]]


def _close(actual, expected, tol: int = 0) -> bool:
    return bool(np.all(np.abs(np.asarray(actual, dtype=np.int16) - np.asarray(expected, dtype=np.int16)) <= tol))


def _loaded(image: Image.Image) -> None:
    assert image.mode == "RGB"


# --------------------------------------------------------------------------------------------
# load_image: orientation and modes


@pytest.mark.parametrize(
    ("orientation", "size", "marker_at", "blue_at"),
    [
        (6, (32, 64), (32 - 6, 6), (6, 6)),  # rotate 90° CW: top-left corner goes to top-right
        (8, (32, 64), (6, 64 - 6), (6, 6)),  # rotate 90° CCW: top-left corner goes to bottom-left
        (3, (64, 32), (64 - 6, 32 - 6), (6, 6)),  # rotate 180°: top-left corner goes to bottom-right
    ],
)
def test_load_image_honours_exif_orientation(tmp_path, orientation, size, marker_at, blue_at):
    raw = Image.new("RGB", (64, 32), BLUE)
    raw.paste(Image.new("RGB", (16, 16), RED), (0, 0))  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"oriented-{orientation}.jpg"
    raw.save(path, format="JPEG", quality=95, exif=exif.tobytes())

    with Image.open(path) as stored:  # the file itself is not rotated: only the tag says so
        assert stored.size == (64, 32)
        assert stored.getexif().get(0x0112) == orientation

    loaded = load_image(path)
    _loaded(loaded)
    assert loaded.size == size
    assert _close(_rgb(loaded, marker_at), RED, tol=40)
    assert _close(_rgb(loaded, blue_at), BLUE, tol=40)


def test_load_image_rgba_composited_on_white(tmp_path):
    array = np.zeros((2, 3, 4), np.uint8)
    array[0, 0] = (255, 0, 0, 0)  # fully transparent red -> white
    array[0, 1] = (0, 0, 255, 255)  # opaque blue stays blue
    array[0, 2] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    array[1, :] = (10, 200, 30, 255)
    path = tmp_path / "rgba.png"
    Image.fromarray(array, "RGBA").save(path)

    loaded = load_image(path)
    _loaded(loaded)
    assert loaded.size == (3, 2)
    out = np.asarray(loaded)
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == BLUE
    assert _close(out[0, 2], (127, 127, 127), tol=2)
    assert tuple(out[1, 1]) == (10, 200, 30)


def test_load_image_la_composited_on_white(tmp_path):
    array = np.array([[[0, 0], [100, 255], [0, 128]]], np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(array, "LA").save(path)
    with Image.open(path) as stored:
        assert stored.mode == "LA"

    out = np.asarray(load_image(path))
    assert out.shape == (1, 3, 3)
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (100, 100, 100)
    assert _close(out[0, 2], (127, 127, 127), tol=2)


def test_load_image_greyscale(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.array([[0, 77, 255]], np.uint8), "L").save(path)
    loaded = load_image(path)
    _loaded(loaded)
    assert np.asarray(loaded)[0].tolist() == [[0, 0, 0], [77, 77, 77], [255, 255, 255]]


def _palette_image() -> Image.Image:
    image = Image.new("P", (3, 1))
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0, 0, 0] * 253)
    image.putdata([0, 1, 2])
    return image


def test_load_image_palette_without_transparency(tmp_path):
    path = tmp_path / "palette.png"
    _palette_image().save(path)
    with Image.open(path) as stored:
        assert stored.mode == "P" and "transparency" not in stored.info
    out = np.asarray(load_image(path))
    assert out[0].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]


def test_load_image_palette_with_transparency(tmp_path):
    path = tmp_path / "palette-t.png"
    _palette_image().save(path, transparency=0)  # index 0 (red) is transparent
    with Image.open(path) as stored:
        assert stored.mode == "P" and "transparency" in stored.info
    loaded = load_image(path)
    _loaded(loaded)
    assert np.asarray(loaded)[0].tolist() == [[255, 255, 255], [0, 255, 0], [0, 0, 255]]


@pytest.mark.parametrize("fmt", ["TIFF", "JPEG"])
def test_load_image_cmyk(tmp_path, fmt):
    image = Image.new("CMYK", (4, 2), (0, 0, 0, 0))  # white
    image.paste((255, 0, 0, 0), (0, 0, 2, 2))  # full cyan on the left
    path = tmp_path / f"cmyk.{fmt.lower()}"
    image.save(path, format=fmt)
    with Image.open(path) as stored:
        assert stored.mode == "CMYK"

    loaded = load_image(path)
    _loaded(loaded)
    assert loaded.size == (4, 2)
    tol = 0 if fmt == "TIFF" else 12
    assert _close(_rgb(loaded, (0, 0)), (0, 255, 255), tol)
    assert _close(_rgb(loaded, (3, 1)), (255, 255, 255), tol)


def test_load_image_16bit_greyscale(tmp_path):
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as stored:
        assert stored.mode.startswith("I")

    out = np.asarray(load_image(path))
    assert out.shape == (16, 16, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all()
    assert out[..., 0].ravel().tolist() == list(range(256))  # 16-bit v -> 8-bit v / 257


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I", [87, 245], [87, 245]),  # 8-bit values in a 32-bit image: kept, not stretched to 0-255
        ("I", [0, 32896, 65535], [0, 128, 255]),  # 16-bit values: the 16-bit scale
        ("I", [-5, 5], [0, 255]),  # no known scale fits: stretched
        ("F", [0.0, 0.5, 1.0], [0, 128, 255]),  # floats in [0, 1]
        ("F", [10.0, 200.0], [10, 200]),  # floats in [0, 255]
    ],
)
def test_32_bit_images_keep_their_levels_where_a_scale_fits(tmp_path, mode, values, expected):
    path = tmp_path / "deep.tif"
    Image.fromarray(np.array([values], dtype=np.int32 if mode == "I" else np.float32), mode).save(path)
    with Image.open(path) as stored:
        assert stored.mode == mode
    assert np.asarray(load_image(path))[0, :, 0].tolist() == expected


@pytest.mark.parametrize(("value16", "value8"), [(65535, 255), (32896, 128), (0, 0), (2570, 10)])
def test_load_image_16bit_flat_keeps_its_level(tmp_path, value16, value8):
    # A flat (or dark) 16-bit image must not be stretched: white stays white, dark stays dark.
    path = tmp_path / "flat16.png"
    Image.fromarray(np.full((3, 5), value16, np.uint16)).save(path)
    out = np.asarray(load_image(path))
    assert out.shape == (3, 5, 3)
    assert (out == value8).all()


def test_load_image_pil_input_passes_through():
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    loaded = load_image(Image.fromarray(array))
    _loaded(loaded)
    assert np.array_equal(np.asarray(loaded), array)

    grey = load_image(Image.fromarray(array[..., 0]))  # an in-memory L image is converted too
    _loaded(grey)
    assert np.array_equal(np.asarray(grey)[..., 2], array[..., 0])


def test_load_image_pil_input_over_limit():
    with pytest.raises(ImageError, match="<image>"):
        load_image(Image.new("RGB", (20, 10)), max_pixels=199)
    assert load_image(Image.new("RGB", (20, 10)), max_pixels=200).size == (20, 10)


# --------------------------------------------------------------------------------------------
# load_image: bad inputs


def _png_bytes(size=(64, 64), seed=0) -> bytes:
    array = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("random.png", np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()),
        ("truncated.png", _png_bytes()[: len(_png_bytes()) // 2]),
        ("bad-body.png", _png_bytes()[:33] + b"\x00" * 200),  # valid signature and header, junk after
        ("notes.txt", b"this is a text file, not a picture\n" * 10),
        ("notes.png", b"this is a text file, not a picture\n" * 10),
        ("empty.png", b""),
    ],
)
def test_load_image_bad_files_raise_image_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError) as excinfo:
        load_image(path)
    assert name in str(excinfo.value)


def test_load_image_missing_path(tmp_path):
    with pytest.raises(ImageError, match="missing-file.png"):
        load_image(tmp_path / "missing-file.png")
    with pytest.raises(ImageError, match="a-folder"):
        (tmp_path / "a-folder").mkdir()
        load_image(tmp_path / "a-folder")


def test_load_image_pixel_limit_from_header_without_decoding(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("1", (5000, 5000)).save(path)
    loads = []
    real_load = ImageFile.ImageFile.load

    def spy(self):
        loads.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    with pytest.raises(ImageError, match="more than the limit") as excinfo:
        load_image(path, max_pixels=1_000_000)
    assert "huge.png" in str(excinfo.value)
    assert loads == []  # refused before any pixel data was decoded

    # A file holding only the header (its pixel data cut off) is refused for its size,
    # not reported as truncated: the limit is checked before decoding.
    header_only = tmp_path / "huge-header-only.png"
    header_only.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ImageError, match="more than the limit") as excinfo:
        load_image(header_only, max_pixels=1_000_000)
    assert "huge-header-only.png" in str(excinfo.value)

    # The same truncated file under a generous limit is decoded, and fails as truncated.
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(header_only, max_pixels=30_000_000)


def test_load_image_exactly_at_limit_is_accepted(tmp_path):
    path = tmp_path / "at-limit.png"
    Image.new("RGB", (20, 10), RED).save(path)
    assert load_image(path, max_pixels=200).size == (20, 10)
    with pytest.raises(ImageError, match="at-limit.png"):
        load_image(path, max_pixels=199)


def test_pillows_bomb_warning_defers_to_max_pixels_and_its_bomb_error_is_an_image_error(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    warned = tmp_path / "warned.png"  # over Pillow's warning level, under its error level: our limit decides
    Image.new("RGB", (40, 40)).save(warned)
    assert load_image(warned, max_pixels=10**9).size == (40, 40)
    with pytest.raises(ImageError, match=r"more than the limit of 1,000 \(max_input_pixels, --max-input-pixels\)"):
        load_image(warned, max_pixels=1000)
    bomb = tmp_path / "bomb.png"  # over Pillow's error level: it will not open it at all
    Image.new("RGB", (100, 100)).save(bomb)
    with pytest.raises(ImageError, match="too large") as excinfo:
        load_image(bomb, max_pixels=10**9)
    assert "bomb.png" in str(excinfo.value)


def test_a_folder_or_an_empty_file_is_named_as_such(tmp_path):
    with pytest.raises(ImageError, match="is a folder, not an image"):
        load_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty.png is empty \(0 bytes\)"):
        load_image(tmp_path / "empty.png")


# --------------------------------------------------------------------------------------------
# fit_size / prepare_image


def test_fit_size_examples():
    assert fit_size(1000, 500, long_side=512, multiple=64) == (512, 256)
    assert fit_size(500, 1000, long_side=512, multiple=64) == (256, 512)
    assert fit_size(512, 512, long_side=512, multiple=64) == (512, 512)
    assert fit_size(1000, 500, long_side=500, multiple=64) == (512, 256)  # 500 rounds to 8 multiples


@pytest.mark.parametrize(
    ("width", "height", "long_side", "multiple"),
    [
        (1000, 500, 512, 64),
        (500, 1000, 512, 64),
        (10, 3, 512, 64),
        (3, 10, 512, 64),
        (10000, 10, 512, 64),
        (640, 480, 768, 8),
        (333, 777, 500, 32),
        (64, 64, 64, 8),
        (1, 1, 256, 64),
        (4000, 3000, 20, 64),  # target below one multiple
    ],
)
def test_fit_size_rules(width, height, long_side, multiple):
    out_w, out_h = fit_size(width, height, long_side=long_side, multiple=multiple)
    for side in (out_w, out_h):
        assert isinstance(side, int)
        assert side % multiple == 0
        assert side >= multiple
    target_long = max(multiple, round(long_side / multiple) * multiple)
    long_out = out_w if width >= height else out_h
    assert long_out == target_long
    # each side is the exact scaled size rounded to a multiple (or clamped up to one multiple)
    scale = long_side / max(width, height)
    for src, out in ((width, out_w), (height, out_h)):
        exact = src * scale
        assert abs(out - exact) <= multiple / 2 or (out == multiple and exact < multiple)
    # orientation is kept
    if width > height:
        assert out_w >= out_h
    elif height > width:
        assert out_h >= out_w
    else:
        assert out_w == out_h


def test_fit_size_keeps_aspect_roughly():
    for width, height in [(1000, 500), (640, 480), (1920, 1080), (300, 900)]:
        out_w, out_h = fit_size(width, height, long_side=1024, multiple=16)
        assert out_w / out_h == pytest.approx(width / height, rel=0.03)


def test_fit_size_tiny_image():
    # 10x3 at 512/64: long side 512, short side 3 * 51.2 = 153.6 -> 2.4 multiples -> 2 -> 128
    assert fit_size(10, 3, long_side=512, multiple=64) == (512, 128)
    assert fit_size(3, 10, long_side=512, multiple=64) == (128, 512)


@pytest.mark.parametrize(
    ("width", "height", "long_side", "multiple", "side"),
    [(1000, 500, 512, 64, 512), (10, 3, 500, 64, 512), (500, 1000, 10, 64, 64), (7, 9, 100, 8, 96)],
)
def test_fit_size_square_when_not_keeping_aspect(width, height, long_side, multiple, side):
    assert fit_size(width, height, long_side=long_side, multiple=multiple, keep_aspect=False) == (side, side)


def test_prepare_image_resizes_to_fit_size():
    image = Image.new("RGB", (1000, 500), RED)
    out = prepare_image(image, long_side=512, multiple=64)
    assert out.size == (512, 256)
    assert out.mode == "RGB"
    assert _close(_rgb(out, (100, 100)), RED, tol=1)
    assert image.size == (1000, 500)  # the input is not modified

    square = prepare_image(image, long_side=512, multiple=64, keep_aspect=False)
    assert square.size == (512, 512)


def test_prepare_image_returns_input_when_size_already_fits():
    image = Image.new("RGB", (512, 256))
    assert prepare_image(image, long_side=512, multiple=64) is image
    assert prepare_image(image, long_side=512, multiple=64, keep_aspect=False) is not image


# --------------------------------------------------------------------------------------------
# tensors


def test_pil_to_tensor_shape_range_and_values():
    array = np.zeros((2, 3, 3), np.uint8)
    array[0, 0] = (255, 0, 128)
    tensor = pil_to_tensor(Image.fromarray(array))
    assert tensor.shape == (1, 3, 2, 3)
    assert tensor.dtype == torch.float32
    assert tensor.is_contiguous()
    assert tensor.min().item() == -1.0
    assert tensor.max().item() == 1.0
    assert tensor[0, :, 0, 0].tolist() == pytest.approx([1.0, -1.0, 128 / 127.5 - 1], abs=1e-6)
    assert tensor[0, :, 1, 2].tolist() == [-1.0, -1.0, -1.0]


def test_pil_to_tensor_converts_other_modes():
    tensor = pil_to_tensor(Image.new("L", (4, 2), 255))
    assert tensor.shape == (1, 3, 2, 4)
    assert (tensor == 1.0).all()


def test_tensor_round_trip_is_exact_for_uint8():
    rng = np.random.default_rng(2)
    array = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    array.reshape(-1)[:256] = np.arange(256, dtype=np.uint8)  # every level appears
    tensor = pil_to_tensor(Image.fromarray(array))
    assert -1.0 <= tensor.min().item() and tensor.max().item() <= 1.0
    (back,) = tensor_to_pil((tensor + 1) / 2)
    assert back.mode == "RGB"
    assert back.size == (24, 16)
    assert np.array_equal(np.asarray(back), array)


def test_tensor_to_pil_batch_and_clamp():
    batch = torch.stack([torch.full((3, 2, 2), -0.5), torch.full((3, 2, 2), 1.5)])
    first, second = tensor_to_pil(batch)
    assert (np.asarray(first) == 0).all()
    assert (np.asarray(second) == 255).all()
    assert len(tensor_to_pil(torch.zeros(3, 3, 4, 5))) == 3


# --------------------------------------------------------------------------------------------
# atomic output


def _names(folder) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_atomic_write_bytes_refuses_existing_unless_overwrite(tmp_path):
    path = tmp_path / "sub" / "out.bin"
    atomic_write_bytes(path, b"first")  # parent folder is created
    assert path.read_bytes() == b"first"
    with pytest.raises(OutputExistsError, match="out.bin"):
        atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"first"
    atomic_write_bytes(path, b"second", overwrite=True)
    assert path.read_bytes() == b"second"
    assert _names(path.parent) == {"out.bin"}
    assert issubclass(OutputExistsError, FileExistsError)


def test_atomic_write_bytes_cleans_up_after_failure(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(images.os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_bytes(path, b"new", overwrite=True)
    assert path.read_bytes() == b"old"
    assert _names(tmp_path) == {"out.bin"}


def _noise(seed: int, size=(8, 6)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_save_png_writes_png_and_sidecar(tmp_path):
    metadata = {"prompt": "a cat", "seed": 7, "strength": 0.25, "steps": [1, 2], "nested": {"k": None}}
    image = _noise(0)
    path = save_png(image, tmp_path / "result.png", metadata)
    assert path == tmp_path / "result.png"
    assert _names(tmp_path) == {"result.png", "result.json"}

    with Image.open(path) as saved:
        assert saved.format == "PNG"
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(image))
    assert json.loads((tmp_path / "result.json").read_text()) == metadata
    assert read_png_metadata(path) == metadata


def test_save_png_adds_suffix_and_stringifies_metadata(tmp_path):
    path = save_png(_noise(0), tmp_path / "result", {"where": tmp_path})
    assert path == tmp_path / "result.png"
    assert read_png_metadata(path) == {"where": str(tmp_path)}
    assert json.loads((tmp_path / "result.json").read_text()) == {"where": str(tmp_path)}


def test_save_png_without_metadata(tmp_path):
    path = save_png(_noise(0), tmp_path / "plain.png")
    assert _names(tmp_path) == {"plain.png"}
    with pytest.raises(ValueError, match="no pix2pix-zero metadata"):
        read_png_metadata(path)


def test_save_png_refuses_existing_and_keeps_first_bytes(tmp_path):
    path = save_png(_noise(0), tmp_path / "out.png", {"run": 1})
    png_bytes = path.read_bytes()
    json_bytes = (tmp_path / "out.json").read_bytes()

    with pytest.raises(OutputExistsError, match="out"):
        save_png(_noise(1), path, {"run": 2})
    assert path.read_bytes() == png_bytes
    assert (tmp_path / "out.json").read_bytes() == json_bytes
    assert _names(tmp_path) == {"out.png", "out.json"}

    save_png(_noise(1), path, {"run": 2}, overwrite=True)
    assert path.read_bytes() != png_bytes
    with Image.open(path) as saved:
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(_noise(1)))
    assert read_png_metadata(path) == {"run": 2}
    assert json.loads((tmp_path / "out.json").read_text()) == {"run": 2}
    assert _names(tmp_path) == {"out.png", "out.json"}


def test_save_png_refuses_when_only_sidecar_exists(tmp_path):
    (tmp_path / "out.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="out.json"):
        save_png(_noise(0), tmp_path / "out.png", {"run": 1})
    assert _names(tmp_path) == {"out.json"}
    assert (tmp_path / "out.json").read_text() == "{}"


def test_save_png_failure_leaves_no_files(tmp_path, monkeypatch):
    image = _noise(0)

    def boom(*args, **kwargs):
        raise OSError("encoder exploded")

    monkeypatch.setattr(image, "save", boom)
    with pytest.raises(OSError, match="encoder exploded"):
        save_png(image, tmp_path / "out.png", {"run": 1})
    assert _names(tmp_path) == set()


def test_save_png_failed_overwrite_keeps_old_files_and_no_temporaries(tmp_path, monkeypatch):
    path = save_png(_noise(0), tmp_path / "out.png", {"run": 1})
    png_bytes = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(images.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        save_png(_noise(1), path, {"run": 2}, overwrite=True)
    assert path.read_bytes() == png_bytes
    assert read_png_metadata(path) == {"run": 1}
    assert json.loads((tmp_path / "out.json").read_text()) == {"run": 1}
    assert _names(tmp_path) == {"out.png", "out.json"}
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))


# --------------------------------------------------------------------------------------------
# labelled_grid


def _grid_cases():
    small = [Image.new("RGB", (64, 64), c) for c in (RED, BLUE, (0, 255, 0))]
    return [
        (small, None, 128),  # small tiles are upscaled to at least 128
        (small[:2], 64, 128),  # an explicit small tile is raised to 128 too
        ([Image.new("RGB", (200, 100), RED), Image.new("RGB", (150, 150), BLUE)], None, 200),
        ([Image.new("RGB", (64, 64), RED)], 300, 300),
    ]


def test_labelled_grid_size_and_content():
    strips = set()
    for tiles, tile_arg, tile in _grid_cases():
        labels = [f"img{i}" for i in range(len(tiles))]
        grid = labelled_grid(tiles, labels, tile=tile_arg)
        assert grid.mode == "RGB"
        assert grid.size[0] == tile * len(tiles)
        strip = grid.size[1] - tile
        assert strip > 0
        strips.add(strip)
        array = np.asarray(grid)
        for i, image in enumerate(tiles):
            centre = (i * tile + tile // 2, tile // 2)
            assert tuple(array[centre[1], centre[0]]) == image.getpixel((image.width // 2, image.height // 2))
            caption = array[tile:, i * tile : (i + 1) * tile]
            assert caption.min() < 128  # some dark text drawn in this tile's strip
    assert len(strips) == 1  # the caption strip has one fixed height


def test_labelled_grid_letterboxes_non_square_images():
    grid = labelled_grid([Image.new("RGB", (200, 100), RED)], ["wide"])
    assert grid.size[0] == 200
    array = np.asarray(grid)
    assert tuple(array[10, 100]) == (255, 255, 255)  # white band above the wide image
    assert tuple(array[100, 100]) == RED


def test_labelled_grid_long_label_is_truncated_without_error():
    grid = labelled_grid([Image.new("RGB", (64, 64), RED)], ["x" * 200])
    assert grid.size[0] == 128


def test_labelled_grid_needs_one_label_per_image():
    tiles = [Image.new("RGB", (64, 64))] * 2
    with pytest.raises(ValueError, match="one label per image"):
        labelled_grid(tiles, ["only one"])
    with pytest.raises(ValueError, match="one label per image"):
        labelled_grid(tiles, ["a", "b", "c"])
