"""The web app (`pix2pix-zero ui`): its callbacks on the tiny model, the command, and one run in a real browser."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import gradio as gr
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from pix2pix_zero import Pix2PixZero
from pix2pix_zero.images import read_png_metadata
from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR
from pix2pix_zero.ui import app as ui_app
from pix2pix_zero.ui.app import EditorApp, build_app, serve
from pix2pix_zero.ui.command import ui as ui_command

STEPS = 4
CHROMIUM = "/usr/bin/chromium"


class FixedCaptioner:
    def __init__(self, text: str = "a photo of a cat") -> None:
        self.text, self.calls = text, 0

    def __call__(self, image: Image.Image) -> str:
        self.calls += 1
        return self.text


class RecordingProgress:
    """Stands in for gr.Progress: records every description."""

    def __init__(self) -> None:
        self.descriptions: list[str] = []

    def __call__(self, progress, desc=None, *args, **kwargs):
        self.descriptions.append(desc or "")


@pytest.fixture()
def captioner():
    return FixedCaptioner()


@pytest.fixture()
def editor(tiny_model_dir, cache_dir, captioner):
    return Pix2PixZero.from_pretrained(tiny_model_dir, captioner=captioner, cache_dir=cache_dir, progress=False)


@pytest.fixture()
def app(editor, tmp_path):
    return EditorApp(editor, output_root=tmp_path / "outputs")


@pytest.fixture(scope="module")
def image_file(tmp_path_factory) -> Path:
    pixels = torch.linspace(0, 255, 40 * 30 * 3).reshape(30, 40, 3).to(torch.uint8).numpy()
    path = tmp_path_factory.mktemp("images") / "gradient.png"
    Image.fromarray(pixels).save(path)
    return path


def edit(
    app,
    image,
    caption="",
    source="cat",
    targets=("dog",),
    xa=0.1,
    strength=1.0,
    steps=STEPS,
    guidance=5.0,
    seed=0,
    progress=None,
    session=None,
    direction=None,
    negative=None,
):
    """The first eight outputs of `run_edit` (the ninth, the session's typed words, is tested on its own)."""
    return app.run_edit(
        None if image is None else str(image),
        caption,
        source,
        list(targets) if not isinstance(targets, str) else targets,
        xa,
        strength,
        steps,
        guidance,
        seed,
        session_concepts=session,
        direction_from=direction,
        negative_prompt=negative,
        progress=progress or RecordingProgress(),
    )[:8]


# -- callbacks --------------------------------------------------------------------------------------


def test_edit_shows_input_reconstruction_edits_and_offers_pngs_with_metadata(app, image_file):
    input_png, recon_png, gallery, caption, files, summary, source_update, target_update = edit(
        app, image_file, source="cat", targets=["dog", "horse"], xa=0.2, strength=1.5, guidance=3.0, seed=3
    )
    assert caption == "a photo of a cat" and "a photo of a cat" in summary
    assert [label for _, label in gallery] == ["cat → dog", "cat → horse"]
    sizes = {Image.open(p).size for p in [input_png, recon_png, *(p for p, _ in gallery)]}
    assert sizes == {(16, 12)}  # input, reconstruction and edits all at the prepared size
    assert Image.open(gallery[0][0]).tobytes() != Image.open(gallery[1][0]).tobytes()
    names = sorted(Path(f).name for f in files)
    assert names == [
        "gradient.edit-dog.png",
        "gradient.edit-horse.png",
        "gradient.grid.png",
        "gradient.input.png",
        "gradient.reconstruction.png",
    ]
    assert all(Path(f).is_relative_to(app.output_root) for f in files)
    meta = read_png_metadata(next(f for f in files if f.endswith("edit-horse.png")))
    assert meta["source"] == "cat" and meta["target"] == "horse" and meta["caption"] == "a photo of a cat"
    assert meta["seed"] == 3 and meta["strength"] == 1.5
    assert meta["edit_config"] == {
        **meta["edit_config"],
        "num_steps": STEPS,
        "xa_guidance": 0.2,
        "strength": 1.5,
        "guidance_scale": 3.0,
    }
    assert meta["inversion_config"]["num_steps"] == STEPS
    assert "dog" in source_update["choices"] and source_update["choices"] == target_update["choices"]


def test_typed_caption_is_used_and_the_captioner_runs_once_per_image(app, captioner, image_file):
    assert app.caption_image(str(image_file), progress=RecordingProgress()) == "a photo of a cat"
    assert app.caption_image(str(image_file), progress=RecordingProgress()) == "a photo of a cat"
    assert captioner.calls == 1  # cached by the file's hash
    assert app.caption_image(None) == ""  # a cleared image clears the caption
    *_, caption, files, summary, _, _ = edit(app, image_file, caption="  a *red* circle  ")
    assert caption == "a *red* circle" and captioner.calls == 1
    assert read_png_metadata(next(f for f in files if f.endswith("edit-dog.png")))["caption"] == "a *red* circle"
    assert r"a \*red\* circle" in summary  # typed text is shown literally, not as Markdown


def test_an_empty_caption_is_filled_by_the_captioner(app, captioner, image_file):
    *_, caption, _, summary, _, _ = edit(app, image_file, caption="   ")
    assert caption == "a photo of a cat" and captioner.calls == 1 and "a photo of a cat" in summary


def test_without_a_working_captioner_a_typed_caption_still_works(tiny_model_dir, cache_dir, tmp_path, image_file):
    def broken(image):
        raise OSError("captioning model 'blip' is not available offline")

    editor = Pix2PixZero.from_pretrained(tiny_model_dir, captioner=broken, cache_dir=cache_dir, progress=False)
    app = EditorApp(editor, output_root=tmp_path)
    for call in (
        lambda: app.caption_image(str(image_file), progress=RecordingProgress()),
        lambda: edit(app, image_file),
    ):
        with pytest.raises(gr.Error) as raised:
            call()
        assert "not available offline" in raised.value.message and "Type the caption" in raised.value.message
    *_, caption, _, _, _, _ = edit(app, image_file, caption="a photo of a dog")
    assert caption == "a photo of a dog"


def test_the_inversion_is_reused_for_more_edits_of_the_same_image(app, editor, image_file):
    edit(app, image_file, targets=["dog"])
    calls = editor.components.eps_model.num_calls
    edit(app, image_file, targets=["horse", "zebra"])
    assert app.inversion_hits == 1
    assert editor.components.eps_model.num_calls - calls == 1 + STEPS * 2  # the edit only: no inversion calls
    edit(app, image_file, targets=["dog"], seed=1)  # another seed is another inversion
    assert app.inversion_hits == 1


def test_a_new_concept_gets_a_direction_built_on_the_fly_with_progress(app, image_file):
    assert "sparrow" not in app.concept_choices()
    progress = RecordingProgress()
    banks = "Sentence banks"  # the caption names 'cat': the caption's words would need no bank
    _, _, gallery, _, files, summary, source_update, _ = edit(
        app, image_file, targets=["sparrow"], progress=progress, direction=banks
    )
    assert any("new direction" in d and "500 sentences" in d and "sparrow" in d for d in progress.descriptions)
    assert any("Inverting" in d for d in progress.descriptions)
    assert [label for _, label in gallery] == ["cat → sparrow"] and "generated, 500" in summary
    assert "sparrow" in source_update["choices"] and "sparrow" in app.concept_choices(
        ["sparrow"]
    )  # in this session's library
    progress = RecordingProgress()
    edit(app, image_file, targets=["sparrow"], progress=progress, direction=banks)
    assert not any("new direction" in d for d in progress.descriptions)
    assert any("'sparrow' is cached" in d for d in progress.descriptions)


def test_the_directions_library_lists_the_shipped_banks(app):
    choices = app.concept_choices()
    assert {"cat", "dog", "tree in autumn", "cat wearing a hat"} <= set(choices)
    assert len(choices) == len(set(choices))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image": None}, "No image"),
        ({"source": "  "}, "Empty source"),
        ({"targets": []}, "Empty target"),
        ({"targets": ["", "  "]}, "Empty target"),
        ({"targets": ["Cat"]}, "Source and target are the same"),
        ({"targets": ["dog", "cat"]}, "Source and target are the same"),
        ({"steps": 0}, "Steps must be between"),
        ({"seed": None}, "Seed must be a number"),
        ({"seed": 1.5}, "whole numbers"),
        ({"xa": -1.0}, "xa_guidance must be a finite number from 0 to 100"),
        ({"targets": ["/etc/hostname"]}, "looks like a file"),  # the server's files are never read as sentence files
        ({"source": "cats.txt"}, "looks like a file"),
        ({"targets": ["..\\secret"]}, "looks like a file"),
        ({"targets": ["dog " * 30]}, "too long"),
    ],
)
def test_bad_input_gives_a_clear_message(app, image_file, change, message):
    kwargs = {"image": image_file, **change}
    with pytest.raises(gr.Error) as raised:
        edit(app, **kwargs)
    assert message in raised.value.message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a PNG, JPEG, WebP, GIF, TIFF or BMP image"),
        (b"just some text, not a picture", "not a PNG, JPEG, WebP, GIF, TIFF or BMP image"),
    ],
)
def test_a_corrupt_upload_gives_a_clear_message_without_the_server_path(app, tmp_path, content, message):
    bad = tmp_path / "upload" / "broken.png"
    bad.parent.mkdir()
    bad.write_bytes(content)
    for call in (lambda: app.caption_image(str(bad), progress=RecordingProgress()), lambda: edit(app, bad)):
        with pytest.raises(gr.Error) as raised:
            call()
        assert message in raised.value.message and "broken.png" in raised.value.message
        assert str(bad.parent) not in raised.value.message


def test_a_truncated_image_gives_a_clear_message(app, tmp_path, image_file):
    data = image_file.read_bytes()
    bad = tmp_path / "truncated.png"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(gr.Error) as raised:
        edit(app, bad)
    assert "corrupt or truncated" in raised.value.message


def test_uploads_over_the_size_limit_are_refused(editor, tmp_path, image_file):
    small_limit = EditorApp(editor, max_upload_mb=image_file.stat().st_size / 2**20 / 2, output_root=tmp_path)
    for call in (
        lambda: small_limit.caption_image(str(image_file), progress=RecordingProgress()),
        lambda: edit(small_limit, image_file),
    ):
        with pytest.raises(gr.Error) as raised:
            call()
        assert "the limit is" in raised.value.message and "MB" in raised.value.message
    large_limit = EditorApp(editor, max_upload_mb=image_file.stat().st_size / 2**20 * 2, output_root=tmp_path)
    assert large_limit.caption_image(str(image_file), progress=RecordingProgress()) == "a photo of a cat"
    with pytest.raises(ValueError, match="positive"):
        EditorApp(editor, max_upload_mb=0)


def test_build_app_wires_the_controls_and_checks_examples(editor, image_file, tmp_path):
    demo = build_app(editor, max_upload_mb=5, examples=[image_file])
    assert isinstance(demo, gr.Blocks)
    ids = {block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    assert {
        "input-image",
        "caption",
        "source",
        "targets",
        "xa-guidance",
        "strength",
        "steps",
        "guidance-scale",
        "seed",
        "edit-button",
        "input-out",
        "reconstruction-out",
        "edits-out",
        "downloads",
    } <= ids
    sliders = {b.elem_id: b for b in demo.blocks.values() if isinstance(b, gr.Slider)}
    assert (
        sliders["steps"].value == editor.preset.edit.num_steps
        and sliders["xa-guidance"].value == editor.preset.edit.xa_guidance
    )
    with pytest.raises(FileNotFoundError, match="missing.png"):
        build_app(editor, examples=[tmp_path / "missing.png"])


# -- the command ------------------------------------------------------------------------------------


def test_the_mask_brush_exact_inversion_and_self_attention_reach_the_edit(app, editor, image_file):
    import numpy as np

    from pix2pix_zero.ui.app import MASK_MODES, mask_from_strokes

    strokes = np.zeros((30, 40, 4), dtype=np.uint8)
    strokes[:, :20] = (255, 255, 255, 255)  # the left half painted
    painted = {"background": None, "layers": [strokes], "composite": None}
    assert np.asarray(mask_from_strokes(painted))[:, :20].min() == 255 and mask_from_strokes({"layers": []}) is None
    input_png, _, gallery, _, files, _, _, _, _ = app.run_edit(
        str(image_file),
        "",
        "cat",
        ["dog"],
        0.1,
        1.0,
        STEPS,
        5.0,
        0,
        True,
        0.5,
        MASK_MODES[2],
        painted,
        late_guidance_factor=2.0,
        late_guidance_xa=0.5,
        progress=RecordingProgress(),
    )
    meta = read_png_metadata(files[2])
    assert meta["edit_config"]["exact_inversion"] is True and meta["edit_config"]["self_attention_injection"] == 0.5
    assert meta["edit_config"]["late_guidance_factor"] == 2.0 and "strengthened" in meta["late_guidance"]
    assert meta["edit_config"]["late_guidance_xa"] == 0.5 and "small" in meta["late_guidance"]
    assert meta["mask"] == "image" and gallery[-1][1] == "mask"
    edited, original = np.asarray(Image.open(gallery[0][0])), np.asarray(Image.open(input_png))
    assert np.array_equal(edited[:, 8 + 2 :], original[:, 8 + 2 :])  # 16 px wide: right of the edge and its soft band
    unpainted = RecordingProgress()
    with pytest.raises(gr.Error, match="Painted mask"):
        app.run_edit(
            str(image_file),
            "",
            "cat",
            ["dog"],
            0.1,
            1.0,
            STEPS,
            5.0,
            0,
            None,
            None,
            MASK_MODES[2],
            None,
            progress=unpainted,
        )
    assert unpainted.descriptions == []  # refused before loading, captioning or inverting anything
    with pytest.raises(gr.Error, match="Mask must be one of"):
        app.run_edit(str(image_file), "", "cat", ["dog"], 0.1, 1.0, STEPS, 5.0, 0, None, None, "Bogus", None)
    ids = {block.elem_id for block in build_app(editor).blocks.values() if getattr(block, "elem_id", None)}
    assert {"exact-inversion", "self-attention", "late-guidance", "late-guidance-xa", "mask-mode", "mask-brush"} <= ids


def test_the_ui_command_documents_every_option_and_passes_them_on(monkeypatch, tmp_path, image_file):
    assert all(param.help for param in ui_command.params), "every option needs help text"
    result = CliRunner().invoke(ui_command, ["--help"])
    assert result.exit_code == 0
    for flag in ("--model", "--device", "--dtype", "--host", "--port", "--max-upload-mb", "--cache-dir", "--preset"):
        assert flag in result.output
    seen = {}
    monkeypatch.setattr(ui_app, "launch", lambda **kwargs: seen.update(kwargs))
    result = CliRunner().invoke(
        ui_command,
        [
            "--model",
            "some/model",
            "--device",
            "cuda",
            "--dtype",
            "float16",
            "--port",
            "8123",
            "--host",
            "0.0.0.0",
            "--max-upload-mb",
            "3.5",
            "--cache-dir",
            str(tmp_path),
            "--preset",
            "official",
            "--example",
            str(image_file),
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen == {
        "model": "some/model",
        "device": "cuda",
        "dtype": "float16",
        "host": "0.0.0.0",
        "port": 8123,
        "share": False,
        "max_upload_mb": 3.5,
        "cache_dir": tmp_path,
        "concurrency": 1,
        "preset": "official",
        "captioner": None,
        "examples": [image_file],
    }


def test_the_ui_command_says_how_to_install_gradio_when_it_is_missing(monkeypatch):
    monkeypatch.setitem(
        sys.modules, "gradio", None
    )  # `import gradio` now fails, as on an install without the [ui] extra
    monkeypatch.delitem(sys.modules, "pix2pix_zero.ui.app")
    result = CliRunner().invoke(ui_command, [])
    assert result.exit_code == 1 and "pip install -e '.[ui]'" in result.output


def test_the_ui_command_reports_a_missing_model_clearly(tmp_path):
    result = CliRunner().invoke(ui_command, ["--model", str(tmp_path / "no-such-model"), "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Error:" in result.output and "no-such-model" in result.output
    assert "Traceback" not in result.output


# -- end to end in a real browser -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is missing (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


class BrightnessCaptioner:
    """Tells a white image from the gradient, so a picked example visibly gets its own caption."""

    def __call__(self, image: Image.Image) -> str:
        mean = float(torch.tensor(list(image.convert("L").tobytes()), dtype=torch.float32).mean())
        return "a white picture" if mean > 200 else "a photo of a cat"


@pytest.mark.slow
def test_edit_in_a_real_browser(browser, tiny_model_dir, cache_dir, image_file, tmp_path):
    from playwright.sync_api import expect

    white = tmp_path / "white.png"
    Image.new("RGB", (20, 20), "white").save(white)
    editor = Pix2PixZero.from_pretrained(
        tiny_model_dir, captioner=BrightnessCaptioner(), cache_dir=cache_dir, progress=False
    )
    noise = tmp_path / "noise.png"  # about 66 KB: over the 50 KB limit below
    Image.fromarray(
        torch.randint(0, 256, (150, 150, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)).numpy()
    ).save(noise)
    limit_mb = 0.05
    assert image_file.stat().st_size < limit_mb * 2**20 < noise.stat().st_size
    app = EditorApp(editor, output_root=tmp_path / "outputs", examples=[white], max_upload_mb=limit_mb)
    demo = app.build()
    port = _free_port()
    serve(demo, port=port, block=False, quiet=True, max_upload_mb=limit_mb)
    origin = f"http://127.0.0.1:{port}"
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        outside: list[str] = []
        local: list[str] = []

        def offline(route):  # the app must work with no network: anything not local is refused and recorded
            url = route.request.url
            if url.startswith((origin, "data:", "blob:")):
                local.append(url)
                route.continue_()
            else:
                outside.append(url)
                route.abort()

        page.route("**/*", offline)
        page.goto(origin + "/")
        page.locator("#input-image input[type=file]").set_input_files(str(image_file))
        expect(page.locator("#caption textarea")).to_have_value("a photo of a cat", timeout=30_000)

        page.locator("#source input").fill("cat")
        page.keyboard.press("Enter")
        for target in ("dog", "sparrow"):  # a bank, and a word without one (direction built on the fly)
            page.locator("#targets input").fill(target)
            page.keyboard.press("Enter")
        page.locator("#steps input[type=number]").fill(str(STEPS))
        page.keyboard.press("Enter")
        page.locator("#edit-button").click()

        edits = page.locator("#edits-out img")
        expect(edits).to_have_count(2, timeout=60_000)
        expect(page.locator("#edits-out")).to_contain_text("cat → dog")
        expect(page.locator("#edits-out")).to_contain_text("cat → sparrow")
        expect(page.locator("#reconstruction-out img")).to_be_visible()
        expect(page.locator("#input-out img")).to_be_visible()
        expect(page.locator("#summary")).to_contain_text("Caption: a photo of a cat")
        expect(page.locator("#downloads")).to_contain_text("gradient.edit-sparrow")
        for img in [edits.first, edits.last, page.locator("#reconstruction-out img")]:
            img.scroll_into_view_if_needed()
            expect(img).to_have_js_property("complete", True)
            assert img.evaluate("img => img.naturalWidth") == 16  # the served PNG decoded at its real size
        page.screenshot(path=str(tmp_path / "ui.png"), full_page=True)
        assert (tmp_path / "ui.png").stat().st_size > 10_000
        if os.environ.get("PIX2PIX_ZERO_UI_SCREENSHOT"):
            shutil.copy(tmp_path / "ui.png", os.environ["PIX2PIX_ZERO_UI_SCREENSHOT"])

        page.locator("#targets input").fill("cat")  # source == target: a clear error, shown in the page
        page.keyboard.press("Enter")
        page.locator("#edit-button").click()
        expect(page.get_by_text("Source and target are the same")).to_be_visible(timeout=30_000)

        page.get_by_role("button").filter(has=page.locator("img[src*='white']")).first.click()  # pick the example
        expect(page.locator("#caption textarea")).to_have_value("a white picture", timeout=30_000)

        page.locator("#input-image input[type=file]").set_input_files(str(noise))  # too large: refused at upload
        expect(page.get_by_text("exceed the maximum allowed size")).to_be_visible(timeout=30_000)
        assert outside == [] and len(local) > 10  # every request was seen, and none left the machine
    finally:
        demo.close()


DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "ui.png"


def test_a_wide_image_comes_back_at_its_own_shape_with_the_painted_mask_on_it(tmp_path):
    """On a model that pads non-square inputs (the bundled one) the web app writes what `edit` writes: the input's own
    shape (cropped back), and a painted mask placed on the input's part of the padded square, not stretched."""
    import numpy as np

    from pix2pix_zero.ui.app import MASK_MODES

    wide = tmp_path / "wide.png"
    Image.new("RGB", (128, 64), "white").save(wide)
    strokes = np.zeros((64, 128, 4), dtype=np.uint8)
    strokes[:, :64] = 255  # the left half of the wide image
    editor = Pix2PixZero.from_pretrained("shapesworld", cache_dir=tmp_path / "cache", progress=False)
    app = EditorApp(editor, output_root=tmp_path / "outputs")
    caption = "a large red circle in the center on a white background"
    _, _, gallery, _, files, *_ = app.run_edit(
        str(wide),
        caption,
        "circle",
        ["square"],
        0.03,
        1.0,
        3,
        4.0,
        0,
        None,
        None,
        MASK_MODES[2],
        {"layers": [strokes]},
        progress=RecordingProgress(),
    )
    written = {Path(f).name: Image.open(f) for f in files if str(f).endswith(".png")}
    assert {image.size for image in written.values() if "grid" not in str(image.filename)} == {(64, 32)}
    mask = np.asarray(written["wide.mask.png"].convert("L"))
    assert mask[:, :28].min() > 200 and mask[:, 36:].max() < 50  # the left half, where it was painted


@pytest.mark.slow
def test_a_real_edit_on_the_bundled_model_in_a_real_browser(browser, tmp_path):
    """The bundled model edits a shipped scene in the browser: the reconstruction matches the input and every edit is
    the target shape the judge reads, in the input's colour. PIX2PIX_ZERO_UPDATE_DOCS=1 writes the screenshot to
    docs/ui.png, so the README's picture of the app is always this run."""
    from playwright.sync_api import expect

    from pix2pix_zero import shapesworld
    from pix2pix_zero.shapesworld.judge import Judge

    editor = Pix2PixZero.from_pretrained("shapesworld", cache_dir=tmp_path / "cache", progress=False)
    scene = shapesworld.example_path("red_circle_white")
    app = EditorApp(editor, output_root=tmp_path / "outputs", examples=ui_app.default_examples("shapesworld"))
    demo = app.build()
    port = _free_port()
    serve(demo, port=port, block=False, quiet=True)
    targets = ("square", "heart", "triangle")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        page.locator("#input-image input[type=file]").set_input_files(str(scene))
        expect(page.locator("#caption textarea")).to_have_value(
            "a large red circle in the center on a white background", timeout=60_000
        )
        page.locator("#source input").fill("circle")
        page.keyboard.press("Enter")
        for target in targets:
            page.locator("#targets input").fill(target)
            page.keyboard.press("Enter")
        page.locator("#edit-button").click()
        edits = page.locator("#edits-out img")
        # the edits, then the automatic masks the bundled model's default edits with (one, or one per target)
        page.wait_for_function(
            f"document.querySelectorAll('#edits-out img').length >= {len(targets) + 1}", timeout=600_000
        )
        for img in [edits.first, edits.last, page.locator("#reconstruction-out img")]:
            img.scroll_into_view_if_needed()
            expect(img).to_have_js_property("complete", True)
        shown = edits.count()
        page.mouse.move(0, 0)
        page.screenshot(path=str(tmp_path / "ui.png"), full_page=True)
    finally:
        demo.close()

    masks = sorted((tmp_path / "outputs").rglob("*.mask*.png"))
    assert len(masks) in (1, len(targets)) and shown == len(targets) + len(masks)

    outputs = {p.name.split(".")[-2]: Image.open(p).convert("RGB") for p in (tmp_path / "outputs").rglob("*.png")}
    source = torch.tensor(list(outputs["input"].tobytes()), dtype=torch.float32)
    error = torch.tensor(list(outputs["reconstruction"].tobytes()), dtype=torch.float32) - source
    assert 10 * torch.log10(255**2 / error.pow(2).mean()) > 20  # a reconstruction, not noise
    judged = Judge.load(shapesworld.BUNDLED_MODEL_DIR / "judge").predict([outputs[f"edit-{t}"] for t in targets])
    for target, seen in zip(targets, judged):
        assert (seen["shapes"], seen["colors"], seen["background"]) == ([target], ["red"], "white"), (target, seen)
    if os.environ.get("PIX2PIX_ZERO_UPDATE_DOCS"):
        shutil.copy(tmp_path / "ui.png", DOCS_SCREENSHOT)


# -- hardening: per-session words, no server paths, capped targets, the CLI's loader --------------------------------


def test_words_one_session_types_never_reach_another_sessions_dropdowns(app, image_file):
    outputs = app.run_edit(
        str(image_file),
        "",
        "cat",
        ["kestrel"],
        0.1,
        1.0,
        STEPS,
        5.0,
        0,
        session_concepts=[],
        progress=RecordingProgress(),
    )
    session_a = outputs[8]
    assert "kestrel" in session_a and "kestrel" in outputs[6]["choices"]
    other = app.run_edit(
        str(image_file), "", "cat", ["dog"], 0.1, 1.0, STEPS, 5.0, 0, session_concepts=[], progress=RecordingProgress()
    )
    assert (
        "kestrel" not in other[6]["choices"] and "kestrel" not in other[8]
    )  # a second session sees only its own words
    assert "kestrel" not in app.concept_choices() and "kestrel" in app.concept_choices(session_a)


def test_too_many_targets_are_refused(app, image_file):
    with pytest.raises(gr.Error, match=f"at most {ui_app.MAX_TARGETS}"):
        edit(app, image_file, targets=[f"thing{i}" for i in range(ui_app.MAX_TARGETS + 1)])


def test_errors_never_show_server_paths(app, image_file, tmp_path):
    bad = tmp_path / "deep" / "server" / "folder" / "bad.png"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")  # PostScript named .png
    with pytest.raises(gr.Error) as caught:
        edit(app, bad)
    assert (
        "server" not in str(caught.value) and str(tmp_path) not in str(caught.value) and "bad.png" in str(caught.value)
    )
    assert (
        ui_app._without_paths("cannot write /srv/app/cache/x.safetensors: full") == "cannot write x.safetensors: full"
    )


def test_uploads_reach_the_clis_loader_unconverted(app, tmp_path):
    """A 16-bit greyscale upload: the app edits exactly what `load_image` makes of the file, as the CLI does."""
    from pix2pix_zero.images import load_image

    pixels = (torch.arange(24 * 32, dtype=torch.int32).reshape(24, 32) * 80).numpy().astype("uint16")
    path = tmp_path / "deep16.png"
    Image.fromarray(pixels).save(path)
    upload = [c for c in app.build().blocks.values() if isinstance(c, gr.Image) and c.elem_id == "input-image"][0]
    assert upload.image_mode is None  # Gradio hands over the file as uploaded, without converting it itself
    input_png, *_ = edit(app, path)
    expected = app.editor.prepare_image(load_image(path))
    assert Image.open(input_png).convert("RGB").tobytes() == expected.tobytes()


def test_the_direction_control_picks_the_captions_words_or_the_sentence_banks(app, image_file):
    from pix2pix_zero.images import read_png_metadata

    def run(direction, progress):
        edited = edit(app, image_file, progress=progress, session=[], direction=direction)[2][0][0]
        return Path(edited).read_bytes(), read_png_metadata(edited)

    words_progress, banks_progress = RecordingProgress(), RecordingProgress()
    words, words_meta = run("Caption's words", words_progress)
    banks, banks_meta = run("Sentence banks", banks_progress)
    assert words_meta["direction"] == "caption" and words_meta["edited_caption"] == "a photo of a dog"
    assert banks_meta["direction"] == "sentences" and words != banks
    # the caption's words need no sentence bank; the banks are embedded (or read) first
    assert not any("'cat'" in d for d in words_progress.descriptions)
    assert any("'cat'" in d for d in banks_progress.descriptions)
    with pytest.raises(gr.Error, match="Direction must be one of"):
        run("sideways", RecordingProgress())


def test_the_negative_prompt_control_sets_what_guidance_pushes_away_from(app, image_file):
    from pix2pix_zero.images import read_png_metadata

    assert app.defaults()["negative_prompt"] == "Caption"  # the preset's, as the control shows it

    def run(negative):
        edited = edit(app, image_file, session=[], negative=negative)[2][0][0]
        return Path(edited).read_bytes(), read_png_metadata(edited)["edit_config"]["negative_prompt"]

    caption, caption_recorded = run("Caption")
    empty, empty_recorded = run("Empty prompt")
    assert (caption_recorded, empty_recorded) == ("caption", "empty")
    assert caption != empty
    with pytest.raises(gr.Error, match="Negative prompt must be one of"):
        run("nothing")


def test_a_word_the_bundled_model_never_saw_is_a_clear_message(tmp_path):
    bundled = Pix2PixZero.from_pretrained("shapesworld", cache_dir=tmp_path / "cache", progress=False)
    scene = tmp_path / "scene.png"
    Image.new("RGB", (64, 64), "white").save(scene)
    with pytest.raises(gr.Error) as caught:
        edit(EditorApp(bundled, output_root=tmp_path / "outputs"), scene, caption="a red circle", source="circle")
    message = str(caught.value)
    assert (
        "the model 'shapesworld' was trained on a few words only and 'dog'" in message
        and str(BUNDLED_MODEL_DIR) not in message
    )
    # the page says so beside the concept boxes, and says "any word" for a model without a word list
    hints = {b.elem_id: b.info for b in build_app(bundled).blocks.values() if getattr(b, "elem_id", None) == "targets"}
    assert "takes only the words it was trained on" in hints["targets"]


def test_the_concept_boxes_offer_any_word_on_a_model_without_a_word_list(editor):
    hints = {b.elem_id: b.info for b in build_app(editor).blocks.values() if getattr(b, "elem_id", None)}
    assert hints["source"].endswith("type any word.") and "template sentences" in hints["targets"]
