"""The pix2pix-zero web app (Gradio), a thin layer over the public API (`Pix2PixZero`).

    editor = Pix2PixZero.from_pretrained("shapesworld")      # the model loads once, before the app is built
    build_app(editor).launch()                                # or: launch(model=..., device=..., port=...)

Upload an image (or pick an example); its caption appears and can be edited; pick or type the
source and one or more targets (a concept without a bank gets its direction built on the fly);
set xa-guidance, direction strength, steps, guidance scale and seed; press Edit. The input, its
reconstruction and the edits appear side by side, and the PNGs (run metadata embedded, as the CLI
writes them) can be downloaded.

Inversions are cached on disk by the API and in memory here (by the uploaded file's hash,
caption, inversion settings and seed); model calls run one at a time behind a queue and a lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no analytics, no version check

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from .. import sentences as sentence_banks  # noqa: E402
from ..api import EditOptions, Inversion, Pix2PixZero  # noqa: E402
from ..cli_common import USER_ERRORS  # noqa: E402  (as the CLI: shown as one clear message)
from ..components import model_name  # noqa: E402
from ..config import override  # noqa: E402
from ..files import safe_name  # noqa: E402

INVERSION_MEMORY = 8  # inversions kept in memory (the disk cache keeps all)
OUTPUT_MAX_AGE_S = 3600  # per-request download folders older than this are removed
MAX_STEPS = 100
MASK_MODES = ("Whole image", "Automatic", "Painted")  # where the edit may act
# EditConfig.direction_from, as the web app names it
DIRECTIONS = {"Caption's words": "caption", "Sentence banks": "sentences"}
# EditConfig.negative_prompt, as the web app names it
NEGATIVE_PROMPTS = {"Caption": "caption", "Empty prompt": "empty"}
# late guidance's two sliders: (defaults key, low, high, step, label, elem_id, info)
LATE_GUIDANCE_SLIDERS = (
    (
        "late_guidance_factor",
        1.0,
        3.0,
        0.1,
        "Late guidance",
        "late-guidance",
        "From half the steps on, guidance × this for the edit of a small object (its word's attention covers little "
        "of the image). 1 = off.",
    ),
    (
        "late_guidance_xa",
        0.0,
        1.0,
        0.05,
        "Late cross-attention guidance",
        "late-guidance-xa",
        "From half the steps on, cross-attention guidance × this for the edit of a small object, whose outline it "
        "holds. 1 = off.",
    ),
)
MAX_CONCEPT_CHARS = 80
MAX_TARGETS = 8  # edits per request: each is one more batch row of every UNet call
MAX_SESSION_CONCEPTS = 64  # words one session has typed, offered back in its own dropdowns only
_PATH = re.compile(r"(?<![\w.~-])(?:[A-Za-z]:)?(?:[/\\][^\s'\"/\\]+)+[/\\]?")  # an absolute path inside a message
# small images fill their box
CSS = "#input-out img, #reconstruction-out img { width: 100%; height: 100%; object-fit: contain; }"

DESCRIPTION = """\
# pix2pix-zero
Zero-shot image-to-image translation (Parmar et al., SIGGRAPH 2023): the image is captioned, inverted
to noise with regularized DDIM inversion, and denoised with an edit direction (source → target, from
the caption's words when it names the source, else from sentence banks) under cross-attention guidance that keeps its
structure.
"""


def _md(text: str) -> str:
    """User text shown as Markdown: its markup characters are escaped."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()<>#+-.!|~" else ch for ch in text)


def _looks_like_path(concept: str) -> bool:
    return (
        any(ch in concept for ch in "/\\") or concept.lower().endswith(".txt") or Path(concept).expanduser().is_file()
    )


def _without_paths(message: str) -> str:
    """A message for the page: every absolute path in it shortened to its last part (server paths stay private)."""
    return _PATH.sub(lambda match: re.split(r"[/\\]", match.group(0).rstrip("/\\"))[-1] or "…", message)


def _check_concept(concept: str) -> None:
    """A concept typed into the page is a word or phrase, never a path: the API reads sentence files, the app must
    not."""
    if len(concept) > MAX_CONCEPT_CHARS:
        raise gr.Error(f"The concept {concept[:20]!r}... is too long: at most {MAX_CONCEPT_CHARS} characters.")
    if _looks_like_path(concept):
        raise gr.Error(
            f"{concept!r} looks like a file; the web app takes words or phrases (e.g. dog), not sentence files."
        )


class EditorApp:
    """The app's callbacks, on one loaded `Pix2PixZero`; `build()` wires them into a `gr.Blocks`.

    The callbacks are plain methods so they can be called (and tested) without a browser.
    """

    def __init__(
        self,
        editor: Pix2PixZero,
        max_upload_mb: float = 20,
        examples: Sequence[str | os.PathLike[str]] | None = None,
        output_root: str | os.PathLike[str] | None = None,
    ) -> None:
        if max_upload_mb <= 0:
            raise ValueError(f"max_upload_mb must be positive, got {max_upload_mb}")
        self.editor = editor
        self.max_upload_mb = float(max_upload_mb)
        self.examples = [Path(e) for e in examples or []]
        missing = [str(e) for e in self.examples if not e.is_file()]
        if missing:
            raise FileNotFoundError(f"example images not found: {', '.join(missing)}")
        self.output_root = Path(output_root) if output_root else Path(tempfile.mkdtemp(prefix="pix2pix-zero-ui-"))
        self.output_root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # the UNet's attention processors are swapped per edit: one model call at a time
        self._captions: OrderedDict[str, str] = OrderedDict()
        self._inversions: OrderedDict[tuple[Any, ...], Inversion] = OrderedDict()
        self.inversion_hits = 0

    # -- choices ----------------------------------------------------------------------------------

    def concept_choices(self, session_concepts: Sequence[str] | None = None) -> list[str]:
        """The directions library: the model's own sentence banks, the shipped banks, then the words this session
        typed (`session_concepts`, from its gr.State). Words other users typed are never shown, although their
        embeddings share the disk cache."""
        model_dir = self.editor.components.model_dir
        own = model_dir / "sentences" if model_dir else None
        banks = sentence_banks.list_banks([own] if own else [])
        names = sorted(banks, key=lambda key: (own is None or banks[key].parent != own, key))
        choices = [key.replace("_", " ") for key in names]
        known = {sentence_banks.bank_key_or_raw(c) for c in choices}
        for concept in session_concepts or []:
            if isinstance(concept, str) and sentence_banks.bank_key_or_raw(concept) not in known:
                choices.append(concept)
                known.add(sentence_banks.bank_key_or_raw(concept))
        return choices

    def defaults(self) -> dict[str, Any]:
        cfg = self.editor.preset.edit
        return {
            "xa_guidance": cfg.xa_guidance,
            "strength": cfg.strength,
            "steps": cfg.num_steps,
            "guidance_scale": cfg.guidance_scale,
            "seed": 0,
            "exact_inversion": cfg.exact_inversion,
            "self_attention_injection": cfg.self_attention_injection,
            "direction_from": next(label for label, value in DIRECTIONS.items() if value == cfg.direction_from),
            "negative_prompt": next(label for label, value in NEGATIVE_PROMPTS.items() if value == cfg.negative_prompt),
            "late_guidance_factor": cfg.late_guidance_factor,
            "late_guidance_xa": cfg.late_guidance_xa,
        }

    # -- checks -----------------------------------------------------------------------------------

    def check_upload(self, image: str | os.PathLike[str] | None) -> Path:
        """The uploaded file's path, or a clear gr.Error (no image, missing, too large)."""
        if image is None or (isinstance(image, str) and not image.strip()):
            raise gr.Error("No image: upload an image or pick an example first.")
        path = Path(image)
        if not path.is_file():
            raise gr.Error(f"The uploaded image {path.name} is gone; upload it again.")
        size_mb = path.stat().st_size / 2**20
        if size_mb > self.max_upload_mb:
            raise gr.Error(f"The image {path.name} is {size_mb:.1f} MB; the limit is {self.max_upload_mb:g} MB.")
        return path

    @staticmethod
    def _concepts(source: str | None, targets: str | Sequence[str] | None) -> tuple[str, list[str]]:
        source = (source or "").strip()
        if not source:
            raise gr.Error("Empty source: pick or type the concept to edit away (e.g. cat).")
        if isinstance(targets, str):
            targets = [targets]
        cleaned: list[str] = []
        for target in targets or []:
            target = (target or "").strip()
            if target and target.lower() not in {t.lower() for t in cleaned}:
                cleaned.append(target)
        if not cleaned:
            raise gr.Error("Empty target: pick or type at least one concept to edit toward (e.g. dog).")
        if len(cleaned) > MAX_TARGETS:
            raise gr.Error(f"{len(cleaned)} targets: at most {MAX_TARGETS} per edit; remove some and press Edit again.")
        same = [t for t in cleaned if t.lower() == source.lower()]
        if same:
            raise gr.Error(f"Source and target are the same ({same[0]!r}): choose a different target.")
        for concept in [source, *cleaned]:
            _check_concept(concept)
        return source, cleaned

    def _user_error(self, error: BaseException, path: Path | None = None) -> gr.Error:
        message = str(error) or type(error).__name__
        if path is not None:
            message = message.replace(str(path), path.name)
        return gr.Error(_without_paths(message))

    def _prepare(self, path: Path) -> tuple[Image.Image, str]:
        try:
            prepared = self.editor.prepare_image(path)
        except USER_ERRORS as error:
            raise self._user_error(error, path) from error
        return prepared, hashlib.sha256(path.read_bytes()).hexdigest()

    def _caption(self, prepared: Image.Image, digest: str) -> str:
        with self._lock:
            if digest in self._captions:
                self._captions.move_to_end(digest)
                return self._captions[digest]
            try:
                caption = self.editor.caption(prepared).strip()
            except USER_ERRORS as error:  # e.g. no captioning model offline: the user can still type the caption
                reason = _without_paths(str(error))
                raise gr.Error(f"Captioning failed: {reason}\nType the caption in the Caption box instead.") from error
            self._captions[digest] = caption
            while len(self._captions) > 64:
                self._captions.popitem(last=False)
            return caption

    # -- callbacks --------------------------------------------------------------------------------

    def caption_image(self, image: str | None, progress: gr.Progress = gr.Progress()) -> str:
        """Caption a freshly uploaded or picked image ('' when the image was cleared)."""
        if image is None:
            return ""
        path = self.check_upload(image)
        progress(0.0, desc="Captioning the image")
        prepared, digest = self._prepare(path)
        return self._caption(prepared, digest)

    def run_edit(
        self,
        image: str | None,
        caption: str | None,
        source: str | None,
        targets: str | Sequence[str] | None,
        xa_guidance: float,
        strength: float,
        steps: float,
        guidance_scale: float,
        seed: float,
        exact_inversion: bool | None = None,
        self_attention_injection: float | None = None,
        mask_mode: str = MASK_MODES[0],
        painted: Any = None,
        session_concepts: list[str] | None = None,
        direction_from: str | None = None,
        negative_prompt: str | None = None,
        late_guidance_factor: float | None = None,
        late_guidance_xa: float | None = None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),
    ) -> tuple[Any, ...]:
        """Invert (or reuse the inversion of) the image and edit it toward every target, where the mask allows
        (`mask_mode`: the whole image, automatic, or `painted` with the brush).

        Returns (input PNG, reconstruction PNG, [(edit PNG, label)], caption used, [PNG files to download],
        a Markdown summary, source choices, target choices, this session's typed concepts).
        """
        path = self.check_upload(image)
        source, target_list = self._concepts(source, targets)
        numbers = {
            "Cross-attention guidance": xa_guidance,
            "Direction strength": strength,
            "Steps": steps,
            "Guidance scale": guidance_scale,
            "Seed": seed,
        }
        for name, value in numbers.items():
            if not isinstance(value, (int, float)) or value != value:  # None (a cleared field) or NaN
                raise gr.Error(f"{name} must be a number.")
        if seed != int(seed) or steps != int(steps):
            raise gr.Error("Steps and seed must be whole numbers.")
        if direction_from is not None and direction_from not in DIRECTIONS:
            raise gr.Error(f"Direction must be one of {', '.join(DIRECTIONS)}.")
        if negative_prompt is not None and negative_prompt not in NEGATIVE_PROMPTS:
            raise gr.Error(f"Negative prompt must be one of {', '.join(NEGATIVE_PROMPTS)}.")
        steps, seed = int(steps), int(seed)
        if not 1 <= steps <= MAX_STEPS:
            raise gr.Error(f"Steps must be between 1 and {MAX_STEPS}, got {steps}.")
        try:
            edit_cfg = override(
                self.editor.preset.edit,
                num_steps=steps,
                xa_guidance=float(xa_guidance),
                strength=float(strength),
                guidance_scale=float(guidance_scale),
                exact_inversion=None if exact_inversion is None else bool(exact_inversion),
                self_attention_injection=None if self_attention_injection is None else float(self_attention_injection),
                direction_from=DIRECTIONS.get(direction_from or ""),
                negative_prompt=NEGATIVE_PROMPTS.get(negative_prompt or ""),
                late_guidance_factor=None if late_guidance_factor is None else float(late_guidance_factor),
                late_guidance_xa=None if late_guidance_xa is None else float(late_guidance_xa),
                auto_mask=mask_mode == MASK_MODES[1],  # "Whole image" means the whole image, whatever the preset
            )
            inversion_cfg = override(self.editor.preset.inversion, num_steps=steps)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        if mask_mode not in MASK_MODES:
            raise gr.Error(f"Mask must be one of {', '.join(MASK_MODES)}.")
        mask = self._mask(mask_mode, painted)  # before any work: a mode without its strokes is refused now

        progress(0.0, desc="Loading the image")
        prepared, digest = self._prepare(path)
        try:
            caption = (caption or "").strip()
            if not caption:
                progress(0.02, desc="Captioning the image")
                caption = self._caption(prepared, digest)
            # the caption's own words need no sentence banks
            by_caption = self.editor.uses_caption_direction(caption, source, edit_cfg, target_list)
            concepts = [source, *target_list]
            with self._lock:
                for i, concept in enumerate(
                    [] if by_caption else concepts
                ):  # embedded once per concept and model, then read from the disk cache
                    sentences, _ = self.editor.sentences(concept)
                    cached = self.editor.concepts.has(concept, self.editor.components.fingerprint(), sentences)
                    desc = (
                        f"Direction: '{concept}' is cached"
                        if cached
                        else f"Building a new direction: embedding {len(sentences)} sentences for '{concept}'"
                    )
                    progress(0.05 + 0.15 * i / len(concepts), desc=desc)
                    self.editor.concept_embedding(concept)
                key = (digest, caption, json.dumps(asdict(inversion_cfg), sort_keys=True), seed)
                inversion = self._inversions.get(key)
                reused = inversion is not None
                started = time.perf_counter()
                if inversion is None:
                    progress(0.2, desc=f"Inverting the image ({steps} DDIM steps)")
                    # from the file, as the CLI inverts it: a non-square input padded by the model is cropped back
                    inversion = self.editor.invert(path, caption=caption, config=inversion_cfg, seed=seed)
                    self._inversions[key] = inversion
                    while len(self._inversions) > INVERSION_MEMORY:
                        self._inversions.popitem(last=False)
                else:
                    self.inversion_hits += 1
                    self._inversions.move_to_end(key)
                invert_s = time.perf_counter() - started
                progress(0.5, desc=f"Editing toward {', '.join(target_list)} ({steps} steps)")
                options = EditOptions(config=edit_cfg, seed=seed, mask=mask)
                result = self.editor.edit(inversion, source, target_list, options)
            progress(0.95, desc="Saving PNGs with metadata")
            folder = self._request_folder()
            written = result.save(folder, stem=safe_name(Path(path.name).stem, "image"))
        except gr.Error:
            raise
        except USER_ERRORS as error:
            raise self._user_error(error, path) from error

        pngs = [p for p in written if p.suffix == ".png"]
        input_png, reconstruction_png = pngs[:2]
        edit_pngs = [p for p in pngs if ".edit-" in p.name]
        gallery = [(str(p), f"{e['source']} → {e['target']}") for p, e in zip(edit_pngs, result.edits)]
        gallery += [(str(p), "mask") for p in pngs if ".mask" in p.name]
        session = [c for c in (session_concepts or []) if isinstance(c, str)]
        session += [c for c in concepts if c not in session]
        session = session[-MAX_SESSION_CONCEPTS:]
        choices = self.concept_choices(session)
        return (
            str(input_png),
            str(reconstruction_png),
            gallery,
            result.caption,
            [str(p) for p in pngs],
            self._summary(result, reused, invert_s),
            gr.update(choices=choices),
            gr.update(choices=choices),
            session,
        )

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _mask(mode: str, painted: Any) -> Image.Image | str | None:
        """The mask of the chosen mode: None (whole image), 'auto', or the brush strokes (white = may change)."""
        if mode == MASK_MODES[1]:
            return "auto"
        if mode != MASK_MODES[2]:
            return None
        mask = mask_from_strokes(painted)
        if mask is None:
            raise gr.Error(
                "Painted mask: paint over the part of the image the edit may change, or choose another mask."
            )
        return mask

    def _summary(self, result: Any, reused_inversion: bool, invert_s: float) -> str:
        lines = [
            f"**Caption:** {_md(result.caption)}  ",
            f"**Model:** `{model_name(result.config['model'])}` · preset `{result.config['preset']}` · "
            f"seed {result.config['seed']} · {result.config['edit_config']['num_steps']} steps",
        ]
        for edit in result.edits:
            if "sentences" in edit:
                origin, count = edit["sentences"]["target"]
                how = f"target sentences: {origin}, {count}"
            else:
                how = f"from the caption: {_md(edit.get('edited_caption', edit['direction']))}"
            lines.append(f"- {_md(edit['source'])} → {_md(edit['target'])} (strength {edit['strength']:g}; {how})")
        timings = {"invert": invert_s, **{k: v for k, v in result.timings.items() if k != "invert"}}
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        lines.append(f"\n**Time:** {timing}" + (" (inversion reused from memory)" if reused_inversion else ""))
        return "\n".join(lines)

    def _request_folder(self) -> Path:
        now = time.time()
        for old in self.output_root.glob("run-*"):
            try:
                if now - old.stat().st_mtime > OUTPUT_MAX_AGE_S:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        return Path(tempfile.mkdtemp(prefix="run-", dir=self.output_root))

    # -- layout -----------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        defaults, choices = self.defaults(), self.concept_choices()
        any_word = self.editor.known_words is None  # the bundled model takes its own words only
        model = model_name(self.editor.components.model_id)
        with gr.Blocks(title="pix2pix-zero", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
            gr.Markdown(DESCRIPTION + f"\nModel: `{model}` · preset `{self.editor.preset.name}`")
            with gr.Row():
                with gr.Column(scale=1):
                    # image_mode=None: the file reaches `load_image` as uploaded, so the app edits what the CLI would
                    image = gr.Image(
                        label=f"Image (at most {self.max_upload_mb:g} MB)",
                        type="filepath",
                        image_mode=None,
                        sources=["upload", "clipboard"],
                        elem_id="input-image",
                        height=300,
                    )
                    if self.examples:
                        gr.Examples([[str(e)] for e in self.examples], inputs=[image], label="Examples")
                    caption = gr.Textbox(
                        label="Caption",
                        elem_id="caption",
                        lines=1,
                        info="Written by the captioner when an image arrives; edit it freely. "
                        "Empty: captioned when you press Edit.",
                    )
                with gr.Column(scale=1):
                    source = gr.Dropdown(
                        choices,
                        value=None,
                        label="Source",
                        elem_id="source",
                        allow_custom_value=True,
                        info="The concept to edit away: pick one from the directions library or type "
                        + ("any word." if any_word else "a word this model was trained on."),
                    )
                    targets = gr.Dropdown(
                        choices,
                        value=[],
                        multiselect=True,
                        label="Targets",
                        elem_id="targets",
                        allow_custom_value=True,
                        info="One or more concepts to edit toward (type a word and press Enter); each gives "
                        "one edit of the same inversion. "
                        + (
                            "A word without a bank gets a new direction from template sentences."
                            if any_word
                            else "This model takes only the words it was trained on."
                        ),
                    )
                    with gr.Accordion("Settings", open=True):
                        xa = gr.Slider(
                            0.0,
                            0.5,
                            value=defaults["xa_guidance"],
                            step=0.01,
                            label="Cross-attention guidance (λ_xa)",
                            elem_id="xa-guidance",
                            info="How strongly the edit keeps the input's structure.",
                        )
                        strength = gr.Slider(
                            0.0,
                            2.0,
                            value=defaults["strength"],
                            step=0.05,
                            label="Direction strength",
                            elem_id="strength",
                            info="Multiplier of the source → target direction.",
                        )
                        steps = gr.Slider(
                            1,
                            MAX_STEPS,
                            value=defaults["steps"],
                            step=1,
                            label="Steps",
                            elem_id="steps",
                            info="DDIM steps of the inversion and of the edit (fewer: faster, rougher).",
                        )
                        guidance = gr.Slider(
                            0.0,
                            15.0,
                            value=defaults["guidance_scale"],
                            step=0.5,
                            label="Guidance scale",
                            elem_id="guidance-scale",
                            info="Classifier-free guidance toward the edit, away from the negative prompt.",
                        )
                        seed = gr.Number(
                            value=defaults["seed"],
                            precision=0,
                            label="Seed",
                            elem_id="seed",
                            info="Seed of the inversion's random draws.",
                        )
                        exact = gr.Checkbox(
                            value=defaults["exact_inversion"],
                            label="Exact inversion",
                            elem_id="exact-inversion",
                            info="Keep the reconstruction on the inversion's own path (Direct Inversion).",
                        )
                        self_attention = gr.Slider(
                            0.0,
                            1.0,
                            value=defaults["self_attention_injection"],
                            step=0.05,
                            label="Self-attention injection",
                            elem_id="self-attention",
                            info="Fraction of the first steps that take the input's layout.",
                        )
                        direction = gr.Radio(
                            list(DIRECTIONS),
                            value=defaults["direction_from"],
                            label="Direction",
                            elem_id="direction-from",
                            info="The caption with the source word replaced (when it names it), or the sentence "
                            "banks of both concepts.",
                        )
                        negative = gr.Radio(
                            list(NEGATIVE_PROMPTS),
                            value=defaults["negative_prompt"],
                            label="Negative prompt",
                            elem_id="negative-prompt",
                            info="What guidance pushes away from: the caption (stronger edits) or the empty prompt "
                            "(milder, keeps the shapes closer to the input).",
                        )
                        late_guidance, late_xa = (
                            gr.Slider(low, high, value=defaults[key], step=step, label=label, elem_id=elem, info=info)
                            for key, low, high, step, label, elem, info in LATE_GUIDANCE_SLIDERS
                        )
                    with gr.Accordion("Mask: where the edit may act", open=False):
                        mask_mode = gr.Radio(
                            list(MASK_MODES),
                            value=MASK_MODES[1] if self.editor.preset.edit.auto_mask else MASK_MODES[0],
                            label="Mask",
                            elem_id="mask-mode",
                            info="Outside the mask the input's pixels are kept.",
                        )
                        painted = gr.ImageEditor(
                            label="Paint where the edit may change the image",
                            type="numpy",
                            elem_id="mask-brush",
                            height=300,
                            sources=(),
                            layers=False,
                            brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"),
                        )
                    run = gr.Button("Edit", variant="primary", elem_id="edit-button")
            with gr.Row(equal_height=True):
                input_out = gr.Image(
                    label="Input",
                    type="filepath",
                    format="png",
                    interactive=False,
                    elem_id="input-out",
                    height=300,
                    scale=1,
                )
                recon_out = gr.Image(
                    label="Reconstruction",
                    type="filepath",
                    format="png",
                    interactive=False,
                    elem_id="reconstruction-out",
                    height=300,
                    scale=1,
                )
                edits_out = gr.Gallery(
                    label="Edits",
                    elem_id="edits-out",
                    columns=3,
                    height=300,
                    format="png",
                    object_fit="contain",
                    interactive=False,
                    scale=2,
                )
            with gr.Row():
                summary = gr.Markdown(elem_id="summary")
                files = gr.File(
                    label="Download (PNG with the run's metadata embedded)",
                    file_count="multiple",
                    interactive=False,
                    elem_id="downloads",
                )

            session_concepts = gr.State([])  # per browser session: one user's words never reach another's dropdowns
            image.change(lambda _: "", inputs=[image], outputs=[caption], queue=False, show_progress="hidden").then(
                self.caption_image, inputs=[image], outputs=[caption], concurrency_id="model"
            )
            image.change(
                lambda path: {"background": path, "layers": [], "composite": path},
                inputs=[image],
                outputs=[painted],
                queue=False,
                show_progress="hidden",
            )
            run.click(
                self.run_edit,
                inputs=[
                    image,
                    caption,
                    source,
                    targets,
                    xa,
                    strength,
                    steps,
                    guidance,
                    seed,
                    exact,
                    self_attention,
                    mask_mode,
                    painted,
                    session_concepts,
                    direction,
                    negative,
                    late_guidance,
                    late_xa,
                ],
                outputs=[input_out, recon_out, edits_out, caption, files, summary, source, targets, session_concepts],
                concurrency_id="model",
            )
        return demo


def mask_from_strokes(value: Any) -> Image.Image | None:
    """The brush strokes of a gr.ImageEditor value (numpy layers) as a mask, white where painted; None if none."""
    layers = value.get("layers") if isinstance(value, dict) else None
    if not layers:
        return None
    painted = None
    for layer in layers:
        array = np.asarray(layer)
        if array.ndim != 3 or array.shape[-1] != 4:
            continue
        strokes = array[..., 3] > 0
        painted = strokes if painted is None else painted | strokes
    if painted is None or not painted.any():
        return None
    return Image.fromarray((painted * 255).astype(np.uint8))


def build_app(editor: Pix2PixZero, *, max_upload_mb: float = 20, examples: list[str | Path] | None = None) -> gr.Blocks:
    """The web app on a loaded editor (load the model once, before this). Serve it with `serve()` (or
    `.launch(css=CSS)`)."""
    return EditorApp(editor, max_upload_mb=max_upload_mb, examples=examples).build()


def serve(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    max_upload_mb: float = 20,
    concurrency: int = 1,
    block: bool = True,
    quiet: bool = False,
) -> Any:
    """Queue (`concurrency` model calls at once; others wait in line) and launch; `block=False` returns at once."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    demo.queue(default_concurrency_limit=concurrency)
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=int(max_upload_mb * 2**20),
        prevent_thread_lock=not block,
        quiet=quiet,
        ssr_mode=False,
        show_error=True,
        footer_links=["gradio"],
        css=CSS,
    )


def default_examples(model: str | os.PathLike[str]) -> list[Path]:
    """The shipped ShapesWorld scenes for the bundled model; none for other models."""
    if str(model) != "shapesworld":
        return []
    from .. import shapesworld

    return [shapesworld.example_path(name) for name in shapesworld.list_examples()]


def launch(
    model: str = "shapesworld",
    device: str = "cpu",
    dtype: str = "float32",
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    max_upload_mb: float = 20,
    cache_dir: str | os.PathLike[str] | None = None,
    concurrency: int = 1,
    preset: str = "default",
    captioner: str | None = None,
    examples: list[str | Path] | None = None,
) -> None:
    """Load the model once, build the app and serve it until interrupted."""
    editor = Pix2PixZero.from_pretrained(
        model, device=device, dtype=dtype, captioner=captioner, cache_dir=cache_dir, progress=True, preset=preset
    )
    demo = build_app(
        editor, max_upload_mb=max_upload_mb, examples=examples if examples is not None else default_examples(model)
    )
    serve(demo, host=host, port=port, share=share, max_upload_mb=max_upload_mb, concurrency=concurrency)
