"""`pix2pix-zero bench piebench DATA_DIR`: PIE-Bench (Ju et al., "PnP Inversion", ICLR 2024) in, its Table 1 out.

Reads the benchmark as its authors distribute it (DATA_DIR/mapping_file.json and DATA_DIR/annotation_images/...),
runs `bench quality`'s methods (its registry, plus pix2pix-zero with the prompt pair as the direction) on each row,
and scores every edit with PIE-Bench's seven metrics (bench/pie_metrics.py). Rows go to a JSONL file one by one
through `quality.run_quality`, so a rerun skips the (method, image) pairs already there, only under the settings
that made them. How each method gets its edit from a row (docs/piebench.md):

- word-swap baselines and references: the prompts as given, brackets removed; the caption is the original prompt
  and the swap is the smallest span of whole words that turns it into the editing prompt;
- pix2pix-zero with its sentence directions: source and target concepts from `blended_word` ("cat dog"); when it
  is empty or names one word twice ("cake cake", attribute and style edits), the words that differ between the two
  prompts (widened by a neighbouring word when one side is empty: added or deleted objects);
- pix2pix-zero, prompt-pair direction: E(editing prompt) − E(original prompt), what PIE-Bench's own row used.
pix2pix-zero captions the image itself (the captioner) unless `captions='prompt'` gives it the original prompt.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..api import EditOptions, EditResult, Pix2PixZero, swap_word
from ..components import preset_for
from ..files import atomic_write
from ..images import load_image
from . import pie_metrics, quality

MAPPING_FILE, IMAGES_DIR = "mapping_file.json", "annotation_images"
FIELDS = (
    "image_path",
    "original_prompt",
    "editing_prompt",
    "editing_instruction",
    "editing_type_id",
    "blended_word",
    "mask",
)
EDIT_TYPES = {
    "0": "random",
    "1": "change object",
    "2": "add object",
    "3": "delete object",
    "4": "change content",
    "5": "change pose",
    "6": "change color",
    "7": "change material",
    "8": "change background",
    "9": "change style",
}
TYPE_FOLDERS = {
    "0": "0_random_140",
    "1": "1_change_object_80",
    "2": "2_add_object_80",
    "3": "3_delete_object_80",
    "4": "4_change_attribute_content_40",
    "5": "5_change_attribute_pose_40",
    "6": "6_change_attribute_color_40",
    "7": "7_change_attribute_material_40",
    "8": "8_change_background_80",
    "9": "9_change_style_80",
}
PROMPT_PAIR = "prompt-pair direction"
DEFAULT_METHODS = (
    "pix2pix-zero",
    "pix2pix-zero (official)",
    f"pix2pix-zero, {PROMPT_PAIR}",
    f"pix2pix-zero (official), {PROMPT_PAIR}",
    "prompt-to-prompt (CFG 7.5)",
)
METRICS = (  # key, column, scale, format: PIE-Bench Table 1's columns and units
    ("structure_distance", "Structure: Distance ×10³ ↓", 1e3, "{:.2f}"),
    ("psnr_unedit", "Background: PSNR ↑", 1.0, "{:.2f}"),
    ("lpips_unedit", "Background: LPIPS ×10³ ↓", 1e3, "{:.2f}"),
    ("mse_unedit", "Background: MSE ×10⁴ ↓", 1e4, "{:.2f}"),
    ("ssim_unedit", "Background: SSIM ×10² ↑", 1e2, "{:.2f}"),
    ("clip_whole", "CLIP: Whole ↑", 1.0, "{:.2f}"),
    ("clip_edited", "CLIP: Edited ↑", 1.0, "{:.2f}"),
)
PAPER = "Ju et al., PnP Inversion (ICLR 2024), Table 1, Stable Diffusion 1.4"
LITERATURE = [  # (method, source, {metric: value in the table's units}); only the columns carried here
    (
        "DDIM + pix2pix-zero",
        PAPER,
        {"structure_distance": 61.68, "psnr_unedit": 20.44, "lpips_unedit": 172.22, "clip_edited": 20.54},
    ),
    (
        "Direct Inversion + pix2pix-zero",
        PAPER,
        {"structure_distance": 49.22, "psnr_unedit": 21.53, "lpips_unedit": 138.98, "clip_edited": 21.05},
    ),
    (
        "DDIM + prompt-to-prompt",
        PAPER,
        {"structure_distance": 69.43, "psnr_unedit": 17.87, "lpips_unedit": 208.80, "clip_edited": 22.44},
    ),
    (
        "Null-text inversion + prompt-to-prompt",
        PAPER,
        {"structure_distance": 13.44, "psnr_unedit": 27.03, "lpips_unedit": 60.67, "clip_edited": 21.86},
    ),
    (
        "Direct Inversion + prompt-to-prompt",
        PAPER,
        {"structure_distance": 11.65, "psnr_unedit": 27.22, "lpips_unedit": 54.55, "clip_edited": 22.10},
    ),
    ("InfEdit", "its paper's PIE-Bench table", {"structure_distance": 13.78, "psnr_unedit": 28.51}),
    ("UniEdit-Flow (FLUX)", "its paper's PIE-Bench table", {"structure_distance": 10.14, "psnr_unedit": 29.54}),
]


@dataclass(frozen=True)
class PieRow:
    """One entry of mapping_file.json."""

    id: str
    image_path: str
    original_prompt: str
    editing_prompt: str
    editing_instruction: str
    editing_type_id: str
    blended_word: str
    mask: tuple[int, ...]

    @property
    def source_prompt(self) -> str:
        return _unbracket(self.original_prompt)

    @property
    def target_prompt(self) -> str:
        return _unbracket(self.editing_prompt)

    @property
    def edit_type(self) -> str:
        return f"{self.editing_type_id} {EDIT_TYPES.get(self.editing_type_id, 'unknown')}"


def _unbracket(prompt: str) -> str:
    return prompt.replace("[", "").replace("]", "")


def read_benchmark(data_dir: Path, types: Sequence[str] = (), limit: int | None = None) -> list[PieRow]:
    """The rows of DATA_DIR/mapping_file.json (sorted by id), of the edit types `types` (all when empty), at most
    `limit` per type; each image must exist under DATA_DIR/annotation_images."""
    data_dir = Path(data_dir)
    mapping = data_dir / MAPPING_FILE
    if not mapping.is_file():
        raise FileNotFoundError(
            f"{data_dir} has no {MAPPING_FILE}: give the folder that holds PIE-Bench's {MAPPING_FILE} "
            f"and {IMAGES_DIR}/ (docs/piebench.md says how to get them)"
        )
    try:
        entries = json.loads(mapping.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{mapping} is not JSON: {error}") from error
    if not isinstance(entries, dict):
        raise ValueError(f"{mapping} must map ids to entries, as PIE-Bench's does")
    unknown = sorted(set(types) - set(EDIT_TYPES))
    if unknown:
        raise ValueError(
            f"unknown edit types {unknown}; PIE-Bench's are {', '.join(f'{k} ({v})' for k, v in EDIT_TYPES.items())}"
        )
    images_root = (data_dir / IMAGES_DIR).resolve()
    rows, per_type = [], {}
    for key in sorted(entries):
        entry = entries[key]
        missing = [f for f in FIELDS if not isinstance(entry, dict) or f not in entry]
        if missing:
            raise ValueError(f"{mapping}: entry {key} lacks {', '.join(missing)}")
        type_id = str(entry["editing_type_id"])
        if type_id not in EDIT_TYPES:
            raise ValueError(f"{mapping}: entry {key}'s editing_type_id {type_id!r} is not one of PIE-Bench's 0-9")
        if types and type_id not in types:
            continue
        if limit is not None and per_type.get(type_id, 0) >= limit:
            continue
        image = (images_root / str(entry["image_path"])).resolve()
        if not image.is_relative_to(images_root):
            raise ValueError(f"{mapping}: entry {key}'s image_path {entry['image_path']!r} leaves {IMAGES_DIR}/")
        if not image.is_file():
            raise FileNotFoundError(
                f"{mapping}: entry {key}'s image {data_dir / IMAGES_DIR / entry['image_path']} does not exist"
            )
        mask = entry["mask"]
        if not isinstance(mask, list) or not all(isinstance(v, int) for v in mask):
            raise ValueError(
                f"{mapping}: entry {key}'s mask is not a list of integers (PIE-Bench's run-length encoding)"
            )
        try:  # every row's mask decodes before any model loads
            pie_metrics.decode_mask(mask)
        except ValueError as error:
            raise ValueError(f"{mapping}: entry {key}'s mask: {error}") from error
        if (
            _unbracket(str(entry["original_prompt"])).strip().lower()
            == _unbracket(str(entry["editing_prompt"])).strip().lower()
        ):
            raise ValueError(f"{mapping}: entry {key}'s original and editing prompts are the same: there is no edit")
        rows.append(
            PieRow(
                str(key),
                str(entry["image_path"]),
                str(entry["original_prompt"]),
                str(entry["editing_prompt"]),
                str(entry["editing_instruction"]),
                type_id,
                str(entry["blended_word"]),
                tuple(mask),
            )
        )
        per_type[type_id] = per_type.get(type_id, 0) + 1
    if not rows:
        raise ValueError(f"{mapping} has no entries" + (f" of edit types {', '.join(types)}" if types else ""))
    return rows


# -- what each method gets from a row ----------------------------------------------------------------

_WORD = re.compile(r"\w+")


def _word_spans(source: str, target: str) -> list[tuple[str, str]]:
    """Spans of whole words (source, target) around the words that differ, smallest first, each widened by one word
    on both sides where there is one, up to the whole prompts."""
    s_words, t_words = list(_WORD.finditer(source)), list(_WORD.finditer(target))
    s_low, t_low = [m.group().lower() for m in s_words], [m.group().lower() for m in t_words]
    prefix = 0
    while prefix < min(len(s_low), len(t_low)) and s_low[prefix] == t_low[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(s_low), len(t_low)) - prefix and s_low[-1 - suffix] == t_low[-1 - suffix]:
        suffix += 1
    spans = []
    low, high = prefix, suffix
    while True:
        s_end, t_end = len(s_words) - high, len(t_words) - high
        s_span = source[s_words[low].start() : s_words[s_end - 1].end()] if low < s_end else ""
        t_span = target[t_words[low].start() : t_words[t_end - 1].end()] if low < t_end else ""
        spans.append((s_span, t_span))
        if low == 0 and high == 0:
            return spans
        low, high = max(low - 1, 0), max(high - 1, 0)


def prompt_swap(source: str, target: str) -> tuple[str, str]:
    """The smallest whole-word span pair with swap_word(source, s, t) == target: how the word-swap baselines, whose
    target is the caption with a word swapped, get exactly the editing prompt."""
    if source.strip().lower() == target.strip().lower():
        raise ValueError(f"the original and editing prompts are the same ({source!r}); there is no edit")
    for s_span, t_span in _word_spans(source, target):
        if s_span and t_span:
            try:
                if swap_word(source, s_span, t_span) == target:
                    return s_span, t_span
            except ValueError:
                continue
    raise ValueError(f"no word swap turns {source!r} into {target!r} (they differ outside their words)")


def concepts(row: PieRow) -> tuple[str, str, str]:
    """(source concept, target concept, rule) for pix2pix-zero's sentence directions: `blended_word`'s two words when
    they differ, else the words that differ between the prompts (widened by a neighbouring word if one side is
    empty)."""
    words = row.blended_word.split()
    if len(words) == 2 and words[0].lower() != words[1].lower():
        return words[0], words[1], "blended_word"
    if row.source_prompt.strip().lower() == row.target_prompt.strip().lower():
        raise ValueError(f"entry {row.id}: the original and editing prompts are the same; there is no edit")
    for s_span, t_span in _word_spans(row.source_prompt, row.target_prompt):
        if s_span and t_span and s_span.lower() != t_span.lower():
            return s_span, t_span, "prompt difference"
    raise ValueError(f"entry {row.id}: no concepts in {row.source_prompt!r} -> {row.target_prompt!r}")


def reads_prompts(method: quality.Method) -> bool:
    """Whether a registry method edits from a word swap of the prompts; pix2pix-zero's own methods and ablations read
    concepts (sentence directions), except the ablation whose direction is the word swap."""
    return not method.name.startswith(("pix2pix-zero", "ablation:")) or method.settings.get("direction") == "word swap"


def _prompt_pair(preset: str, num_steps: int) -> Callable[[Pix2PixZero, Any, quality.Case], EditResult]:
    def run(editor: Pix2PixZero, image: Any, case: quality.Case) -> EditResult:
        from ..config import override

        p = editor.preset if editor.preset.name == preset else preset_for(preset, editor.components.model_dir)
        encode = editor.components.encode_text
        direction = encode([case.target]) - encode([case.source])  # E(editing prompt) − E(original prompt)
        options = EditOptions(
            config=override(p.edit, num_steps=num_steps),
            inversion=override(p.inversion, num_steps=num_steps),
            caption=case.caption or None,
            seed=case.seed,
            direction=direction,
        )
        return editor.edit(image, case.source, case.target, options)

    return run


def methods(num_steps: int = 50) -> dict[str, tuple[quality.Method, str]]:
    """Every method `bench quality` has, plus pix2pix-zero (default and official presets) with the prompt pair as the
    direction; each with what it reads from a row: 'concepts', 'prompts' or 'prompt pair'."""
    table = {name: (m, "prompts" if reads_prompts(m) else "concepts") for name, m in quality.methods(num_steps).items()}
    for preset, label in (("default", "pix2pix-zero"), ("official", "pix2pix-zero (official)")):
        name = f"{label}, {PROMPT_PAIR}"
        table[name] = (
            quality.Method(name, _prompt_pair(preset, num_steps), {"preset": preset, "direction": "prompt pair"}),
            "prompt pair",
        )
    return table


class RowEdits:
    """Turns the methods into ones that take a PIE-Bench row (a quality.Case whose id is the row's) and hand each
    method the edit it reads; captions of the captioner are made once per image."""

    def __init__(self, rows: Sequence[PieRow], captions: str = "captioner") -> None:
        if captions not in ("captioner", "prompt"):
            raise ValueError("captions must be 'captioner' or 'prompt'")
        self.rows, self.captions, self._captions = {r.id: r for r in rows}, captions, {}

    def caption(self, editor: Pix2PixZero, image: Any, row: PieRow) -> str:
        if self.captions == "prompt":
            return row.source_prompt
        if row.id not in self._captions:
            self._captions[row.id] = editor.caption(editor.prepare_image(image))
        return self._captions[row.id]

    def case_for(self, editor: Pix2PixZero, image: Any, case: quality.Case, reads: str) -> quality.Case:
        row = self.rows[case.id]
        if reads == "prompts":
            source, target = prompt_swap(row.source_prompt, row.target_prompt)
            return quality.Case(case.id, case.task, source, target, row.source_prompt, case.image, seed=case.seed)
        if reads == "prompt pair":
            return quality.Case(
                case.id,
                case.task,
                row.source_prompt,
                row.target_prompt,
                self.caption(editor, image, row),
                case.image,
                seed=case.seed,
            )
        source, target, _ = concepts(row)
        return quality.Case(
            case.id, case.task, source, target, self.caption(editor, image, row), case.image, seed=case.seed
        )

    def wrap(self, method: quality.Method, reads: str) -> quality.Method:
        def run(editor: Pix2PixZero, image: Any, case: quality.Case) -> EditResult:
            return method.run(editor, image, self.case_for(editor, image, case, reads))

        return quality.Method(method.name, run, {**method.settings, "reads": reads})


def cases(rows: Sequence[PieRow], data_dir: Path) -> list[quality.Case]:
    """One quality.Case per row: its id, its edit type as the task, its image; the edit itself comes from RowEdits."""
    return [
        quality.Case(r.id, r.edit_type, "", "", r.source_prompt, str(Path(data_dir) / IMAGES_DIR / r.image_path))
        for r in rows
    ]


# -- scoring ---------------------------------------------------------------------------------------


class PieBenchScorer:
    """The seven metrics of an edit against its row's source image, mask and editing prompt."""

    def __init__(
        self,
        rows: Sequence[PieRow],
        data_dir: Path,
        clip: Callable[..., float] | Any,
        dino: Callable[..., float],
        lpips: Callable[..., Any] | None = None,
    ) -> None:
        self.rows, self.data_dir, self.clip, self.dino, self.lpips = (
            {r.id: r for r in rows},
            Path(data_dir),
            clip,
            dino,
            lpips,
        )

    def source_image(self, row: PieRow) -> Image.Image:
        image = load_image(self.data_dir / IMAGES_DIR / row.image_path).convert("RGB")
        size = (pie_metrics.PIE_SIZE, pie_metrics.PIE_SIZE)
        return image if image.size == size else image.resize(size, Image.BICUBIC)

    def score(self, row: PieRow, output: Image.Image) -> dict[str, float]:
        """The seven metrics of one edited image (read as PIE-Bench reads outputs) against its row."""
        source, edited = self.source_image(row), pie_metrics.read_output(output)
        mask = pie_metrics.decode_mask(row.mask)
        keep = ~mask
        scores: dict[str, float] = {"structure_distance": self.dino(source, edited)}
        if keep.any():
            scores.update(
                psnr_unedit=pie_metrics.masked_psnr(source, edited, keep),
                mse_unedit=pie_metrics.masked_mse(source, edited, keep),
                ssim_unedit=pie_metrics.masked_ssim(source, edited, keep),
            )
            if self.lpips is not None:
                from .metrics import background_lpips

                scores["lpips_unedit"] = background_lpips(source, edited, mask, self.lpips)
        else:  # PIE-Bench writes nan when nothing is outside the mask
            scores.update({k: float("nan") for k in ("psnr_unedit", "mse_unedit", "ssim_unedit")})
            if self.lpips is not None:
                scores["lpips_unedit"] = float("nan")
        scores["clip_whole"] = self.clip(edited, row.target_prompt)
        scores["clip_edited"] = self.clip.edited_region(edited, row.target_prompt, mask)
        return scores

    def __call__(self, case: quality.Case, result: EditResult) -> dict[str, Any]:
        edit = result.edits[0] if result.edits else {}
        return {
            **self.score(self.rows[case.id], result.image),
            "caption": result.caption,
            "edit_source": edit.get("source"),
            "edit_target": edit.get("target"),
        }


def score_outputs(
    rows: Sequence[PieRow],
    outputs: Path,
    label: str,
    scorer: PieBenchScorer,
    output: Path,
    settings: dict[str, Any],
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Score another tool's edited images, laid out like annotation_images/ under `outputs` (PIE-Bench's own result
    folders are), as method `label`; resumable like the edits' rows, under the same settings only."""
    from tqdm.auto import tqdm

    from ..batch import ResultsLog

    output = Path(output)
    run_file = output / quality.RUN_FILE
    current = json.loads(json.dumps(settings, sort_keys=True))
    if run_file.is_file():
        recorded = json.loads(run_file.read_text())
        changed = sorted(k for k in {*recorded, *current} if k in current and recorded.get(k) != current.get(k))
        if changed:
            raise ValueError(
                f"{output} holds rows made with other settings ({', '.join(changed)} differ from "
                f"{run_file}); "
                "choose another --output to keep both"
            )
    else:
        atomic_write(run_file, (json.dumps(current, indent=2, sort_keys=True) + "\n").encode())
    log = ResultsLog(output / "rows.jsonl")
    done = {(r["method"], r["id"]) for r in log.records()}
    for row in tqdm([r for r in rows if (label, r.id) not in done], desc="score", unit="image", disable=not progress):
        path = Path(outputs) / row.image_path
        try:
            record = {"status": "ok", **scorer.score(row, load_image(path))}
        except Exception as error:  # a missing or unreadable output is a data point, not the end of the run
            record = {"status": "error", "error": f"{type(error).__name__}: {error}"}
        log.append({"method": label, "id": row.id, "task": row.edit_type, **record})
    return log.records()


def settings_of(data_dir: Path, steps: int, captions: str, clip: str, dino: str, lpips: str | None) -> dict[str, Any]:
    """What the rows depend on beyond the model and the methods: resuming needs all of it unchanged."""
    mapping = hashlib.sha256((Path(data_dir) / MAPPING_FILE).read_bytes()).hexdigest()[:16]
    return {
        "benchmark": "PIE-Bench",
        "mapping_file_sha256": mapping,
        "steps": steps,
        "captions": captions,
        "clip": clip,
        "dino": dino,
        "lpips": lpips,
    }


def run_piebench(
    editor: Pix2PixZero,
    data_dir: Path,
    rows: Sequence[PieRow],
    chosen: Sequence[tuple[quality.Method, str]],
    scorer: Callable[[quality.Case, EditResult], dict[str, Any]],
    output: Path,
    settings: dict[str, Any],
    captions: str = "captioner",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Every (method, row) not yet in <output>/rows.jsonl; returns all rows (earlier runs' included)."""
    edits = RowEdits(rows, captions)
    wrapped = [edits.wrap(m, reads) for m, reads in chosen]
    return quality.run_quality(
        editor, cases(rows, data_dir), wrapped, scorer, Path(output), progress=progress, settings=settings
    )


# -- reporting -------------------------------------------------------------------------------------


def summarize(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """Mean of each metric per (method, edit type) and over 'all', in the table's units; non-finite values (nan where
    nothing is outside the mask, inf for identical pixels) are left out of the means and counted."""
    cells: dict[tuple[str, str], dict[str, list[float]]] = {}
    for row in rows:
        for task in (row["task"], "all"):
            cell = cells.setdefault((row["method"], task), {"n": [], "errors": [], "left_out": []})
            cell["n"].append(1.0)
            cell["errors"].append(float(row["status"] != "ok"))
            if row["status"] != "ok":
                continue
            for key, _, scale, _ in METRICS:
                value = row.get(key)
                if value is None:
                    continue
                if math.isfinite(float(value)):
                    cell.setdefault(key, []).append(float(value) * scale)
                else:
                    cell["left_out"].append(1.0)
    return {
        k: {m: (float(sum(v)) if m in ("n", "errors", "left_out") else float(np.mean(v))) for m, v in cell.items()}
        for k, cell in cells.items()
    }


def format_table(summary: dict[tuple[str, str], dict[str, float]], task: str = "all", literature: bool = True) -> str:
    """Table 1's layout: method, structure distance, four background-preservation numbers, two CLIP similarities."""
    lines = [
        "| Method | n | " + " | ".join(label for _, label, _, _ in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for (method, t), cell in summary.items():
        if t != task:
            continue
        values = [fmt.format(cell[k]) if k in cell else "–" for k, _, _, fmt in METRICS]
        notes = [f"{int(cell['errors'])} failed"] if cell["errors"] else []
        lines.append(
            f"| {method} | {int(cell['n'])}{' (' + ', '.join(notes) + ')' if notes else ''} | "
            + " | ".join(values)
            + " |"
        )
    if literature and task == "all":
        for method, source, values in LITERATURE:
            shown = [fmt.format(values[k]) if k in values else "–" for k, _, _, fmt in METRICS]
            lines.append(f"| *{method}* ({source}) | 700 | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def format_report(summary: dict[tuple[str, str], dict[str, float]], header: str) -> str:
    tasks = sorted({t for _, t in summary if t != "all"})
    parts = [
        header,
        "",
        "## All edit types",
        "",
        format_table(summary),
        "",
        "Rows in italics are the literature's, for reference (their paper, their checkpoint, all 700 images; "
        "'–': not carried here). Structure ×10³, LPIPS ×10³, MSE ×10⁴, SSIM ×10²; "
        "CLIP as torchmetrics' CLIPScore.",
    ]
    left_out = {m: int(c["left_out"]) for (m, t), c in summary.items() if t == "all" and c.get("left_out")}
    if left_out:
        parts += [
            "",
            "Values left out of the means, per method (nan where the mask covers the whole image, inf PSNR "
            "where the background is unchanged): " + ", ".join(f"{m} {n}" for m, n in left_out.items()) + ".",
        ]
    for task in tasks:
        parts += ["", f"## {task}", "", format_table(summary, task, literature=False)]
    return "\n".join(parts) + "\n"


def plot_summary(summary: dict[tuple[str, str], dict[str, float]], path: Path) -> Path | None:
    """Bars per metric over all edit types, with the literature's pix2pix-zero and prompt-to-prompt rows as lines."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = [m for (m, t) in summary if t == "all"]
    keys = [(k, label) for k, label, _, _ in METRICS if any(k in summary[(m, "all")] for m in names)]
    if not names or not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 4.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], keys):
        ax.bar(range(len(names)), [summary[(m, "all")].get(key, float("nan")) for m in names], color="tab:blue")
        for (method, _, values), style in zip(LITERATURE[:5], ("--", ":", "-.", (0, (1, 3)), (0, (5, 5)))):
            if key in values:
                ax.axhline(values[key], color="tab:gray", linestyle=style, linewidth=1, label=method)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=6)
        ax.set_title(label, fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=6, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- a miniature benchmark in PIE-Bench's layout ------------------------------------------------------


def write_shapesworld_example(folder: Path, num_scenes: int = 3, seed: int = 0) -> Path:
    """A PIE-Bench-layout folder of ShapesWorld scenes at 512×512 (mapping_file.json, annotation_images/...): per
    scene in turn a shape change (type 1, blended_word 'circle square'), a colour change (type 6, the shape named
    twice) and a style change (type 9, empty blended_word, the whole image may change). Masks are the objects'
    visible pixels of the source and the ideal edit, dilated by 2 pixels, RLE-encoded."""
    from ..shapesworld import world

    folder = Path(folder)
    rng = np.random.default_rng([world.EVAL_SEED_BASE + 700_000, seed])
    size = pie_metrics.PIE_SIZE
    entries = {}
    for i in range(num_scenes):
        kind = ("1", "6", "9")[i % 3]
        scene = world.sample_scene(rng, num_objects=1)
        obj = scene.objects[0]
        caption = world.canonical_caption(scene)
        if kind == "1":
            target_shape = next(s for s in world.SHAPES if s != obj.shape)
            edited_scene = world.edit_scene(scene, 0, shape=target_shape)
            editing = caption.replace(obj.shape, f"[{target_shape}]", 1)
            instruction, blended = f"change the {obj.shape} into a {target_shape}", f"{obj.shape} {target_shape}"
        elif kind == "6":
            target_color = next(c for c in world.OBJECT_COLORS if c != obj.color)
            edited_scene = world.edit_scene(scene, 0, color=target_color)
            editing = caption.replace(f" {obj.color} ", f" [{target_color}] ", 1)
            instruction, blended = f"make the {obj.shape} {target_color}", f"{obj.shape} {obj.shape}"
        else:
            edited_scene, caption = scene, f"a photo of {caption}"
            editing, instruction, blended = caption.replace("a photo of", "a [drawing] of", 1), "make it a drawing", ""
        if kind == "9":
            mask = np.ones((size, size), bool)
        else:
            small = quality._dilate(world.render(scene).masks[0] | world.render(edited_scene).masks[0], 2)
            mask = np.asarray(Image.fromarray(small).resize((size, size), Image.NEAREST))
        key = f"{kind}11{i:09d}"
        image_path = f"{TYPE_FOLDERS[kind]}/1_artificial/4_outdoor/{key}.jpg"
        picture = Image.fromarray(world.render(scene).image).resize((size, size), Image.BICUBIC)
        atomic_write(
            folder / IMAGES_DIR / image_path,
            lambda path, p=picture: p.save(path, format="JPEG", quality=95),
            overwrite=True,
        )
        entries[key] = {
            "image_path": image_path,
            "original_prompt": caption,
            "editing_prompt": editing,
            "editing_instruction": instruction,
            "editing_type_id": kind,
            "blended_word": blended,
            "mask": pie_metrics.encode_mask(mask),
        }
    atomic_write(folder / MAPPING_FILE, json.dumps(entries, indent=1).encode(), overwrite=True)
    return folder
