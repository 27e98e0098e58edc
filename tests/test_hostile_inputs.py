"""Hostile input, generated in code: malformed and mislabelled images, decompression bombs, crafted inversion and
direction files, manifests that try to write outside -o, and out-of-range or non-finite values for every numeric flag.

Every refusal is checked the same way (`assert_refused`): a non-zero exit, a one-line error that names the input,
no traceback, nothing written outside -o, no existing file changed, and bounds on time and memory: under
REFUSAL_SECONDS of wall time and under REFUSAL_EXTRA_RSS_MB of extra peak memory (resident set size, measured
with `resource.getrusage`; Python allocations also with tracemalloc). The model named in these commands does not
exist, so a check that ran after the model load would fail with the wrong message.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import struct
import time
import tracemalloc
import zlib
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from diffusers import DiffusionPipeline  # noqa: F401  what a hub id's preset lookup imports: loaded before timing
from PIL import Image
from safetensors.torch import save_file

from pix2pix_zero import api, batch  # noqa: F401  imported once here, so the timings measure refusals, not imports
from pix2pix_zero.api import Inversion, read_inversion_file
from pix2pix_zero.batch import read_items
from pix2pix_zero.cli import main
from pix2pix_zero.config import EditConfig, ImageConfig, InversionConfig
from pix2pix_zero.directions import load_direction, save_direction
from pix2pix_zero.files import TensorFileError, atomic_write, remove_stale_temp_files, safe_name
from pix2pix_zero.images import ImageError, load_image
from pix2pix_zero.masks import MaskError, check_mask, read_mask

REFUSAL_SECONDS = 2.0
REFUSAL_EXTRA_RSS_MB = 1024
NO_MODEL = (
    "nobody/no-such-model"  # a hub id: offline, loading it fails, so a check after the load shows the wrong error
)


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.stat().st_size < 2**26
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def assert_refused(args: list[str], root: Path, names: str, output: Path | None = None) -> str:
    """Run the CLI and check the refusal (see the module docstring); returns the error line."""
    before = _snapshot(root)
    rss_before = _peak_rss_mb()
    tracemalloc.start()
    started = time.perf_counter()
    result = CliRunner().invoke(main, args)
    seconds = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    error = errors[0]
    assert names.lower() in error.lower(), (names, error)
    assert seconds < REFUSAL_SECONDS, (args, seconds)
    assert _peak_rss_mb() - rss_before < REFUSAL_EXTRA_RSS_MB and traced_peak < REFUSAL_EXTRA_RSS_MB * 2**20
    after = _snapshot(root)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    assert not changed, f"existing files changed: {changed}"
    new = [name for name in after if name not in before]
    outside = [name for name in new if output is None or not (root / name).resolve().is_relative_to(output.resolve())]
    assert not outside, f"written outside -o: {outside}"
    return error


@pytest.fixture()
def root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing.txt").write_text("keep me\n")
    return tmp_path


# -- images ---------------------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _truncated_png() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.radial_gradient("L").resize((64, 64)).save(buffer, format="PNG")
    return buffer.getvalue()[:200]


HOSTILE_IMAGES = {
    "random-bytes.png": os.urandom(4096),
    "empty.png": b"",
    "truncated.png": _truncated_png(),
    "postscript.png": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
    "pdf.jpg": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    "svg.png": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    "html.webp": b"<html><body>not an image</body></html>",
    "bomb-header.png": _png_bomb(100_000, 100_000),
    "bomb-gif.gif": b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00;",
    "jpeg-header-only.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_IMAGES))
def test_hostile_images_are_refused_before_the_model_loads(root, name):
    path = root / name
    path.write_bytes(HOSTILE_IMAGES[name])
    out = root / "out"
    assert_refused(["edit", str(path), "-s", "cat", "-t", "dog", "-o", str(out), "-m", NO_MODEL, "-q"], root, name, out)
    with pytest.raises(ImageError, match=name):
        load_image(path)


def test_a_real_image_with_too_many_pixels_is_refused(root):
    path = root / "large.png"
    Image.new("1", (9000, 8000)).save(path)  # 72 million pixels, 9 kB on disk
    assert "more than the limit" in assert_refused(
        ["edit", str(path), "-s", "cat", "-t", "dog", "-m", NO_MODEL], root, "large.png"
    )


@pytest.mark.parametrize(
    ("read", "error", "message"),
    [
        (load_image, ImageError, "not a PNG, JPEG, WebP, GIF, TIFF or BMP"),
        (check_mask, MaskError, "is not an image this program reads"),
    ],
    ids=["image", "mask"],
)
def test_postscript_is_never_handed_to_ghostscript(root, monkeypatch, read, error, message):
    from PIL import EpsImagePlugin

    called = []
    monkeypatch.setattr(
        EpsImagePlugin, "Ghostscript", lambda *a, **k: called.append(a) or (_ for _ in ()).throw(OSError)
    )
    path = root / "drawing.png"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(error, match=message):
        read(path)
    assert not called


def test_a_mask_is_turned_by_its_orientation_tag_as_the_photo_is(tmp_path):
    painted = Image.new("L", (40, 30), 0)
    painted.paste(255, (0, 0, 10, 30))  # the left quarter, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise, as a phone held upright stores it
    painted.save(tmp_path / "tagged.png", exif=exif)
    turned = painted.transpose(Image.Transpose.ROTATE_270)  # what the photo's viewer shows: 30 wide, 40 high
    from_file = read_mask(tmp_path / "tagged.png", (30, 40))
    assert torch.equal(from_file.pixels, read_mask(turned, (30, 40)).pixels)
    assert from_file.pixels[0, 0, :10].all() and not from_file.pixels[0, 0, 10:].any()  # the top quarter, as shown


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [("PNG", ".jpg"), ("JPEG", ".png"), ("WEBP", ".png"), ("GIF", ".png"), ("TIFF", ".jpg"), ("BMP", ".webp")],
)
def test_every_documented_format_is_read_by_content_whatever_its_name(tmp_path, fmt, suffix):
    path = tmp_path / f"picture{suffix}"
    Image.new("RGB", (12, 8), (200, 40, 10)).save(path, format=fmt)
    image = load_image(path)
    assert image.size == (12, 8) and image.mode == "RGB"


# -- inversion files --------------------------------------------------------------------------------------------------


def _inversion_tensors(side: int = 2, dtype=torch.float32) -> dict[str, torch.Tensor]:
    return {
        "x_T": torch.zeros(1, 4, side, side, dtype=dtype),
        "latents": torch.zeros(1, 4, side, side, dtype=dtype),
        "image": torch.zeros(1, 3, side * 8, side * 8, dtype=dtype),
    }


def _inversion_meta(**changes: str) -> dict[str, str]:
    meta = {
        "caption": "a cat",
        "config": json.dumps({"num_steps": 4}),
        "model": "m",
        "seed": "0",
        "image_sha256": "0" * 64,
        "model_fingerprint": "f",
    }
    return {**meta, **changes}


def _with(tensors: dict, **changes) -> dict:
    return {**tensors, **changes}


def _sparse(path: Path, size: int) -> None:
    """A file of `size` bytes that uses no disk space."""
    with path.open("wb") as handle:
        handle.truncate(size)


def _pickle_file(path: Path) -> None:
    torch.save(_inversion_tensors(), path)


HOSTILE_INVERSIONS = {
    "pickle": lambda p: _pickle_file(p),
    "random-bytes": lambda p: p.write_bytes(os.urandom(2048)),
    "huge-header-length": lambda p: p.write_bytes(struct.pack("<Q", 2**62) + b"{}"),
    "header-not-json": lambda p: p.write_bytes(struct.pack("<Q", 8) + b"not json"),
    "missing-keys": lambda p: save_file({"x_T": torch.zeros(1, 4, 2, 2)}, str(p), metadata=_inversion_meta()),
    "extra-key": lambda p: save_file(
        _with(_inversion_tensors(), payload=torch.zeros(3)), str(p), metadata=_inversion_meta()
    ),
    "wrong-rank": lambda p: save_file(
        _with(_inversion_tensors(), x_T=torch.zeros(4, 2, 2)), str(p), metadata=_inversion_meta()
    ),
    "integer-dtype": lambda p: save_file(
        _with(_inversion_tensors(), x_T=torch.zeros(1, 4, 2, 2, dtype=torch.int32)), str(p), metadata=_inversion_meta()
    ),
    "nan": lambda p: save_file(
        _with(_inversion_tensors(), x_T=torch.full((1, 4, 2, 2), math.nan)), str(p), metadata=_inversion_meta()
    ),
    "inf-image": lambda p: save_file(
        _with(_inversion_tensors(), image=torch.full((1, 3, 16, 16), math.inf)), str(p), metadata=_inversion_meta()
    ),
    "huge-latent": lambda p: save_file(
        {
            "x_T": torch.zeros(1, 4, 300, 300, dtype=torch.float16),
            "latents": torch.zeros(1, 4, 300, 300, dtype=torch.float16),
            "image": torch.zeros(1, 3, 300, 300, dtype=torch.float16),
        },
        str(p),
        metadata=_inversion_meta(),
    ),
    "shapes-differ": lambda p: save_file(
        _with(_inversion_tensors(), latents=torch.zeros(1, 4, 3, 3)), str(p), metadata=_inversion_meta()
    ),
    "image-off-grid": lambda p: save_file(
        _with(_inversion_tensors(), image=torch.zeros(1, 3, 17, 16)), str(p), metadata=_inversion_meta()
    ),
    "no-metadata": lambda p: save_file(_inversion_tensors(), str(p)),
    "config-not-json": lambda p: save_file(_inversion_tensors(), str(p), metadata=_inversion_meta(config="{oops")),
    "config-nan": lambda p: save_file(
        _inversion_tensors(), str(p), metadata=_inversion_meta(config='{"lambda_ac": NaN}')
    ),
    "config-unknown-field": lambda p: save_file(
        _inversion_tensors(), str(p), metadata=_inversion_meta(config='{"evil": 1}')
    ),
    "seed-not-a-number": lambda p: save_file(_inversion_tensors(), str(p), metadata=_inversion_meta(seed="x")),
    "larger-than-the-limit": lambda p: _sparse(p, api.MAX_INVERSION_BYTES + 1),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_INVERSIONS))
def test_crafted_inversion_files_are_refused_in_one_line(root, kind):
    path = root / f"{kind}.inversion.safetensors"
    HOSTILE_INVERSIONS[kind](path)
    out = root / "out"
    error = assert_refused(
        ["edit", str(path), "-s", "cat", "-t", "dog", "-o", str(out), "-m", NO_MODEL, "-q"], root, path.name, out
    )
    assert "invert the image again" in error
    with pytest.raises(TensorFileError, match=kind):
        read_inversion_file(path)


def test_a_wellformed_inversion_file_passes_the_checks(tmp_path):
    path = tmp_path / "fine.safetensors"
    save_file(_inversion_tensors(), str(path), metadata=_inversion_meta())
    inversion = Inversion.load(path)
    assert (
        inversion.x_T.shape == (1, 4, 2, 2) and inversion.model_fingerprint == "f" and inversion.config.num_steps == 4
    )


# -- direction files ---------------------------------------------------------------------------------------------------

HOSTILE_DIRECTIONS = {
    "pickle": lambda p: torch.save({"direction": torch.zeros(77, 16)}, p),
    "random-bytes": lambda p: p.write_bytes(os.urandom(512)),
    "wrong-key": lambda p: save_file({"delta": torch.zeros(77, 16)}, str(p)),
    "rank-4": lambda p: save_file({"direction": torch.zeros(1, 1, 77, 16)}, str(p)),
    "integer-dtype": lambda p: save_file({"direction": torch.zeros(77, 16, dtype=torch.int64)}, str(p)),
    "nan": lambda p: save_file({"direction": torch.full((77, 16), math.nan)}, str(p)),
    "too-many-tokens": lambda p: save_file({"direction": torch.zeros(1, 5000, 2, dtype=torch.float16)}, str(p)),
    "larger-than-the-limit": lambda p: _sparse(p, 64 * 2**20 + 1),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_DIRECTIONS))
def test_crafted_direction_files_are_refused_in_one_line(tmp_path, kind):
    path = tmp_path / f"{kind}.safetensors"
    HOSTILE_DIRECTIONS[kind](path)
    started = time.perf_counter()
    with pytest.raises(TensorFileError) as caught:
        load_direction(path)
    assert time.perf_counter() - started < REFUSAL_SECONDS
    message = str(caught.value)
    assert "\n" not in message and path.name in message and "direction build" in message


def test_a_saved_direction_loads_and_refuses_to_be_overwritten(tmp_path):
    path = save_direction(tmp_path / "d.safetensors", torch.ones(1, 77, 16), source="cat", target="dog")
    assert load_direction(path, expected_shape=(1, 77, 16)).shape == (1, 77, 16)
    with pytest.raises(FileExistsError):
        save_direction(path, torch.zeros(1, 77, 16), overwrite=False)
    assert float(load_direction(path).sum()) == 77 * 16


# -- manifests --------------------------------------------------------------------------------------------------------


@pytest.fixture()
def manifest_dir(root):
    folder = root / "data"
    folder.mkdir()
    Image.new("RGB", (16, 16), "red").save(folder / "a.png")
    (root / "outside.txt").write_text("a secret line\n")
    return folder


HOSTILE_MANIFESTS = {
    "traversal.csv": ("image,id\na.png,../escaped\n", "id"),
    "absolute.csv": ("image,id\na.png,/tmp/escaped\n", "id"),
    "separator.csv": ("image,id\na.png,sub/x\n", "id"),
    "backslash.csv": ("image,id\na.png,..\\x\n", "id"),
    "dotdot.csv": ("image,id\na.png,..\n", "id"),
    "hidden.csv": ("image,id\na.png,.bashrc\n", "id"),
    "newline.csv": ('image,id\na.png,"two\nlines"\n', "id"),
    "duplicate.csv": ("image,id\na.png,same\na.png,same\n", "same"),
    "duplicate-case.csv": ("image,id\na.png,Same\na.png,same\n", "same"),
    "no-header.csv": ("a.png,cat,dog\n", "no 'image' column"),
    "list-row.jsonl": ('["a.png"]\n', "not an object"),
    "string-row.jsonl": ('"a.png"\n', "not an object"),
    "wrong-type.jsonl": ('{"image": 5}\n', "'image' must be text"),
    "target-object.jsonl": ('{"image": "a.png", "target": {"x": 1}}\n', "'target' must be"),
    "bad-json.jsonl": ('{"image": "a.png"\n', "not JSON"),
    "sentences-outside.csv": ("image,source,target\na.png,../outside.txt,dog\n", "outside the manifest's folder"),
    "sentences-absolute.csv": ("image,source,target\na.png,cat,/etc/passwd\n", "outside the manifest's folder"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_MANIFESTS))
def test_hostile_manifests_are_refused_before_the_model_loads(root, manifest_dir, name):
    text, reason = HOSTILE_MANIFESTS[name]
    manifest = manifest_dir / name
    manifest.write_text(text)
    out = root / "out"
    error = assert_refused(
        ["batch", str(manifest), "-s", "cat", "-t", "dog", "-o", str(out), "-m", NO_MODEL, "-q"], root, name, out
    )
    assert reason.lower() in error.lower()
    assert not (root / "escaped").exists() and not Path("/tmp/escaped").exists()


def test_a_manifest_in_another_encoding_is_refused(root, manifest_dir):
    manifest = manifest_dir / "latin1.csv"
    manifest.write_bytes("image,caption\na.png,caf\xe9 au lait\n".encode("latin-1"))
    assert "not UTF-8" in assert_refused(
        ["batch", str(manifest), "-s", "cat", "-t", "dog", "-o", str(root / "out"), "-m", NO_MODEL],
        root,
        "latin1.csv",
        root / "out",
    )


def test_excel_csv_with_a_byte_order_mark_is_read(manifest_dir):
    manifest = manifest_dir / "excel.csv"
    manifest.write_bytes("\ufeffimage,target\r\na.png,dog\r\n".encode())
    items = read_items(manifest, source="cat")
    assert [(item.id, item.targets) for item in items] == [("a", ("dog",))]


def test_ids_made_from_image_paths_never_leave_the_output_folder(manifest_dir):
    manifest = manifest_dir / "paths.jsonl"
    rows = [{"image": "../../a.png"}, {"image": str(manifest_dir / "a.png"), "target": ["dog", "horse"]}]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items = read_items(manifest, "cat", ["dog"])
    for item in items:
        assert "/" not in item.id and "\\" not in item.id and not item.id.startswith(".")
        assert (manifest_dir / "out" / "images" / item.id).resolve().parent == (
            manifest_dir / "out" / "images"
        ).resolve()
    assert items[1].targets == ("dog", "horse")


def test_sentence_files_inside_the_manifests_folder_are_read_from_there(manifest_dir):
    (manifest_dir / "banks").mkdir()
    (manifest_dir / "banks" / "fox.txt").write_text("a photo of a fox\n")
    manifest = manifest_dir / "m.csv"
    manifest.write_text("image,source,target\na.png,cat,banks/fox.txt\n")
    assert read_items(manifest)[0].targets == (str((manifest_dir / "banks" / "fox.txt").resolve()),)


# -- numeric flags ----------------------------------------------------------------------------------------------------

CONFIG_FLAGS = [
    (cls, f) for cls in (InversionConfig, EditConfig, ImageConfig) for f in fields(cls) if "bounds" in f.metadata
]


def _flag(cls, f) -> str:
    from pix2pix_zero.cli import RENAMED

    return "--" + RENAMED.get((cls, f.name), f.name.replace("_", "-"))


def _bad_values(f) -> list[str]:
    low, high = f.metadata["bounds"]
    if f.type == "float":
        return ["nan", "inf", "-inf", repr(low - 1.5), repr(high * 10 + 1)]
    return ["nan", str(low - 1), str(int(high) + 1)]


@pytest.mark.parametrize(("cls", "f"), CONFIG_FLAGS, ids=[f"{c.__name__}.{f.name}" for c, f in CONFIG_FLAGS])
def test_every_config_flag_refuses_non_finite_and_out_of_range_values(root, cls, f):
    photo = root / "photo.png"
    Image.new("RGB", (16, 16)).save(photo)
    command = "invert" if cls is InversionConfig else "edit"
    args = [command, str(photo), *(["-s", "cat", "-t", "dog"] if command == "edit" else []), "-m", NO_MODEL]
    for value in _bad_values(f):
        assert_refused([*args, _flag(cls, f), value], root, _flag(cls, f).lstrip("-"))
    low, high = f.metadata["bounds"]
    for bad in (math.nan, math.inf, low - 1, high * 10 + 1):
        with pytest.raises(ValueError, match=f.name):
            cls(**{f.name: bad if f.type == "float" else (bad if not math.isfinite(bad) else int(bad))})


OTHER_FLAGS = [
    (["generate", "-p", "a cat", "-s", "cat", "-t", "dog", "--size"], ["-64", "0", "100000", "nan"], "--size"),
    (["edit", "PHOTO", "-s", "cat", "-t", "dog", "--seed"], ["-1", str(2**64), "nan"], "--seed"),
    (["edit", "PHOTO", "-s", "cat", "-t", "dog", "--add"], ["cat:dog:nan", "cat:dog:inf", "cat:dog:1e9"], "--add"),
    (["batch", "PHOTO", "-s", "cat", "-t", "dog", "-o", "OUT", "--replicas"], ["0", "-3"], "--replicas"),
    (
        ["batch", "PHOTO", "-s", "cat", "-t", "dog", "-o", "OUT", "--cpus-per-replica"],
        ["nan", "inf", "0", "-1"],
        "--cpus-per-replica",
    ),
    (["demo", "--steps"], ["0", "100000"], "--steps"),
    (["direction", "show", "cat", "--num"], ["-1"], "--num"),
    (["ui", "--port"], ["0", "70000"], "--port"),
    (["ui", "--max-upload-mb"], ["0", "-5"], "--max-upload-mb"),
]


@pytest.mark.parametrize(("args", "values", "flag"), OTHER_FLAGS, ids=[f"{a[0]}{flag}" for a, _, flag in OTHER_FLAGS])
def test_every_other_numeric_flag_refuses_bad_values(root, args, values, flag):
    photo = root / "photo.png"
    Image.new("RGB", (16, 16)).save(photo)
    args = [str(photo) if a == "PHOTO" else str(root / "out") if a == "OUT" else a for a in args]
    model = ["-m", NO_MODEL] if args[0] in ("edit", "generate", "batch") else []
    for value in values:
        assert_refused([*args, value, *model], root, flag.lstrip("-"), root / "out")


def test_unknown_device_and_non_utf8_text_are_one_line_errors(root):
    photo = root / "photo.png"
    Image.new("RGB", (16, 16)).save(photo)
    base = ["edit", str(photo), "-s", "cat", "-t", "dog", "-m", NO_MODEL]
    assert "unknown device" in assert_refused([*base, "--device", "warp-drive"], root, "--device")
    assert "unsupported device" in assert_refused([*base, "--device", "meta"], root, "--device")
    bad_caption = b"caf\xe9".decode("utf-8", "surrogateescape")  # how Python hands over a Latin-1 argument
    assert "UTF-8" in assert_refused([*base, "--caption", bad_caption], root, "--caption")
    assert "UTF-8" in assert_refused(
        ["generate", "-p", bad_caption, "-s", "cat", "-t", "dog", "-m", NO_MODEL], root, "--prompt"
    )


def test_edit_generate_and_direction_build_refuse_existing_outputs_before_the_model_loads(root):
    photo = root / "photo.png"
    Image.new("RGB", (16, 16)).save(photo)
    out = root / "out"
    out.mkdir()
    (out / "photo.edit-dog.json").write_text("{}")
    error = assert_refused(
        ["edit", str(photo), "-s", "cat", "-t", "dog", "-o", str(out), "-m", NO_MODEL], root, "photo.edit-dog.json"
    )
    assert "exists already" in error
    (out / "photo.edit-dog.json").unlink()
    (out / "photo.mask.png").write_bytes(b"old")  # written only by a run with a mask
    masked = ["edit", str(photo), "-s", "cat", "-t", "dog", "-o", str(out), "-m", NO_MODEL, "--mask", "auto"]
    assert "exists already" in assert_refused(masked, root, "photo.mask.png")
    (out / "seed4.grid.png").write_bytes(b"old")
    generate = ["generate", "-p", "a photo of a cat", "-s", "cat", "-t", "dog", "--seed", "4", "-o", str(out)]
    assert "exists already" in assert_refused([*generate, "-m", NO_MODEL], root, "seed4.grid.png")
    existing = root / "d.safetensors"
    existing.write_bytes(b"old")
    assert "exists already" in assert_refused(
        ["direction", "build", "-s", "cat", "-t", "dog", "-o", str(existing), "-m", NO_MODEL], root, "d.safetensors"
    )


# -- the shared file helpers ------------------------------------------------------------------------------------------


def test_an_output_under_a_file_or_an_inversion_not_named_safetensors_is_refused_before_the_model_loads(root):
    photo = root / "photo.png"
    Image.new("RGB", (16, 16)).save(photo)
    afile = root / "afile"
    afile.write_bytes(b"mine")
    under = str(afile / "sub")
    message = assert_refused(["invert", str(photo), "-o", f"{under}.safetensors", "-m", NO_MODEL], root, "afile")
    assert "is a file, not a folder" in message
    assert "is a file" in assert_refused(["demo", "-o", under, "-m", NO_MODEL], root, "afile")
    assert "is a file" in assert_refused(
        ["edit", str(photo), "-s", "cat", "-t", "dog", "-o", under, "-m", NO_MODEL], root, "afile"
    )
    assert "must end in .safetensors" in assert_refused(
        ["invert", str(photo), "-o", str(root / "x.png"), "-m", NO_MODEL], root, "--output"
    )


def test_a_failed_write_names_the_file_asked_for_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    import errno

    def full_disk(source, destination):
        raise OSError(errno.ENOSPC, "No space left on device", str(source))

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left on device") as error:
        atomic_write(tmp_path / "a.bin", b"one")
    assert error.value.errno == errno.ENOSPC and error.value.filename == str(tmp_path / "a.bin")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_gives_the_umasks_permissions_and_refuses_to_overwrite(tmp_path):
    old = os.umask(0o027)
    try:
        path = atomic_write(tmp_path / "a.bin", b"one")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640  # not the temporary file's 0600
    old = os.umask(0o002)
    try:
        assert atomic_write(tmp_path / "b.bin", b"two").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)
    with pytest.raises(FileExistsError):
        atomic_write(path, b"changed")
    assert path.read_bytes() == b"one" and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "text", ["../../etc/passwd", "/etc/passwd", "..", "a/../../b", "C:\\Windows\\x", "\x00nul", "", ".hidden"]
)
def test_safe_name_flattens_paths_into_one_plain_name(text):
    name = safe_name(text, "item")
    assert name and "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


def test_stale_temp_files_are_removed_and_fresh_ones_kept(tmp_path):
    stale, fresh, output = tmp_path / ".x.png.abc.tmp", tmp_path / ".y.png.def.tmp", tmp_path / "x.png"
    for path in (stale, fresh, output):
        path.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert remove_stale_temp_files(tmp_path) == [stale]
    assert fresh.exists() and output.exists()


def test_invert_refuses_a_bad_image_before_the_model_loads(root):
    path = root / "scan.png"
    path.write_bytes(HOSTILE_IMAGES["postscript.png"])
    assert_refused(["invert", str(path), "-m", NO_MODEL], root, "scan.png")
