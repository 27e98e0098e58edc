"""Dataset-scale runs: a folder or a manifest of images in, edited images and a results manifest out.

Resumable: every finished image appends one JSON line to `results.jsonl` (flushed and fsynced),
and a restarted run skips the images already recorded there, so after a crash or a kill nothing
written is lost and nothing is done twice. A bad image is recorded with its error and skipped.
Calls only the public API; the Ray runner (ray_batch.py) reuses `read_items` and `process_item`.
"""

from __future__ import annotations

import csv
import json
import os
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .api import EditOptions, Pix2PixZero
from .config import EditConfig, ImageConfig, InversionConfig
from .files import safe_name
from .images import save_png

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
RESULTS_FILE = "results.jsonl"


@dataclass(frozen=True)
class BatchItem:
    id: str  # unique output stem, from the image's path relative to the input
    image: str
    source: str
    targets: tuple[str, ...]
    caption: str | None = None
    mask: str | None = None  # a mask file (white = may change) or "auto"


@dataclass
class BatchSummary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)


def read_items(source_input: str | os.PathLike[str], source: str | None = None, targets: Sequence[str] = (),
               recursive: bool = True, mask: str | None = None) -> list[BatchItem]:
    """Items from a folder of images (same source/targets for all) or a CSV/JSONL manifest.

    Manifest columns: `image` (path, relative to the manifest's folder), and optionally `source`,
    `target` (several separated by '|'), `caption`, `mask` (a mask file relative to the manifest's folder, or
    "auto") and `id`; missing ones fall back to the flags.
    """
    path = Path(source_input)
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        files = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"no .jpg/.png/.webp images in {path}")
        rows: Iterable[dict[str, Any]] = ({"image": str(p), "id": _id_for(p.relative_to(path))} for p in files)
        base = Path()
    elif path.is_file() and path.suffix.lower() in (".csv", ".jsonl"):
        rows, base = _read_manifest(path), path.parent
    elif path.is_file():
        raise ValueError(f"{path}: the input must be a folder of images or a .csv/.jsonl manifest")
    else:
        raise FileNotFoundError(f"batch input not found: {path}")
    items, seen = [], set()
    for number, row in enumerate(rows, start=1):
        if not row.get("image"):
            raise ValueError(f"{path}: row {number} has no 'image'")
        image = Path(row["image"]) if Path(row["image"]).is_absolute() else base / row["image"]
        row_targets = tuple(t.strip() for t in str(row["target"]).split("|") if t.strip()) if row.get("target") else tuple(targets)
        row_source = row.get("source") or source
        if not row_source or not row_targets:
            raise ValueError(f"{path}: row {number} ({row['image']}) has no source/target and none was given with --source/--target")
        item_id = str(row.get("id") or _id_for(Path(row["image"])))
        if item_id in seen:
            raise ValueError(f"{path}: two rows share the output name {item_id!r}; give them distinct 'id' values")
        seen.add(item_id)
        row_mask = str(row.get("mask") or "").strip() or None
        if row_mask is not None and row_mask != "auto" and not Path(row_mask).is_absolute():
            row_mask = str(base / row_mask)
        items.append(BatchItem(item_id, str(image), row_source, row_targets, row.get("caption") or None, row_mask or mask))
    return items


def _id_for(relative: Path) -> str:
    return "__".join(relative.with_suffix("").parts)


def _read_manifest(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: line {number} is not JSON ({error.msg})") from None
    return rows


class ResultsLog:
    """Append-only JSONL of finished items; a torn last line (a kill mid-write) is ignored on reading."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return found

    def finished_ids(self, retry_failed: bool = False) -> set[str]:
        return {r["id"] for r in self.records() if r.get("status") == "ok" or not retry_failed}

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as handle:
            end = handle.seek(0, os.SEEK_END)
            last = b"\n"
            if end > 0:
                handle.seek(end - 1)
                last = handle.read(1)  # only the last byte, not the whole log, on every append
            prefix = b"" if last == b"\n" else b"\n"  # close a torn line first
            handle.write(prefix + (json.dumps(record, sort_keys=True, default=str) + "\n").encode())
            handle.flush()
            os.fsync(handle.fileno())


def process_item(editor: Pix2PixZero, item: BatchItem, output: Path, export_pairs: Path | None = None,
                 config: EditConfig | None = None, inversion_config: InversionConfig | None = None,
                 image_config: ImageConfig | None = None, seed: int = 0) -> dict[str, Any]:
    """Edit one item and write its outputs; returns its results record (status 'ok' or 'error')."""
    started = time.perf_counter()
    record: dict[str, Any] = {"id": item.id, "image": item.image, "source": item.source, "targets": list(item.targets),
                              **({"mask": item.mask} if item.mask else {})}
    try:
        options = EditOptions(config=config, inversion=inversion_config, image=image_config, caption=item.caption, seed=seed,
                              mask=item.mask)
        result = editor.edit(item.image, item.source, list(item.targets), options=options)
        # An unrecorded item may have left complete files from an interrupted attempt: replacing them is redoing unfinished work.
        written = result.save(output / "images", stem=item.id, overwrite=True)
        if export_pairs is not None:
            save_png(result.input, export_pairs / "A" / f"{item.id}.png", overwrite=True)
            for edit, image in zip(result.edits, result.images):
                save_png(image, export_pairs / "B" / safe_name(Path(edit["target"]).stem, "target") / f"{item.id}.png", overwrite=True)
        record.update(status="ok", caption=result.caption, outputs=[str(p) for p in written], timings_s=result.timings)
    except Exception as error:  # one bad item never stops the run
        record.update(status="error", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc(limit=3))
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def run_batch(editor: Pix2PixZero, items: Sequence[BatchItem], output: str | os.PathLike[str], export_pairs: str | os.PathLike[str] | None = None,
              retry_failed: bool = False, progress: bool = True, **edit_kwargs: Any) -> BatchSummary:
    """Process every item not yet recorded in <output>/results.jsonl, appending a record after each one."""
    output = Path(output)
    log = ResultsLog(output / RESULTS_FILE)
    finished = log.finished_ids(retry_failed)
    todo = [item for item in items if item.id not in finished]
    summary = BatchSummary(skipped=len(items) - len(todo))
    started = time.perf_counter()
    pairs = Path(export_pairs) if export_pairs is not None else None
    with tqdm(total=len(items), initial=summary.skipped, desc="batch", unit="image", disable=not progress) as bar:
        for item in todo:
            record = process_item(editor, item, output, pairs, **edit_kwargs)
            log.append(record)
            if record["status"] == "ok":
                summary.done += 1
            else:
                summary.failed += 1
                summary.failures.append({"id": item.id, "error": record["error"]})
            bar.update(1)
            bar.set_postfix(failed=summary.failed)
    summary.seconds = time.perf_counter() - started
    return summary

