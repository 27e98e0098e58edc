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
import re
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .api import EditOptions, Pix2PixZero
from .config import EditConfig, ImageConfig, InversionConfig
from .files import remove_stale_temp_files, safe_name
from .images import IMAGE_SUFFIXES, save_png

RESULTS_FILE = "results.jsonl"
MAX_ID_CHARS = 150
MANIFEST_FIELDS = {"image": str, "source": str, "target": (str, list), "caption": str, "id": (str, int), "mask": str}
_UNSAFE_ID = re.compile(r"[/\\:\x00-\x1f\x7f]")  # separators, drive colons, control characters (newlines included)


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


def read_items(
    source_input: str | os.PathLike[str],
    source: str | None = None,
    targets: Sequence[str] = (),
    recursive: bool = True,
    exclude: Sequence[str | os.PathLike[str]] = (),
    on_skip: Callable[[Path, str], None] | None = None,
    mask: str | None = None,
) -> list[BatchItem]:
    """Items from a folder of images (same source/targets for all) or a CSV/JSONL manifest.

    Folders: every file whose extension is one of IMAGE_SUFFIXES, except those inside `exclude` (the output
    folders, so a rerun never edits its own outputs); each other file is reported to `on_skip(path, reason)`.
    `x.png` and `x.jpg` side by side get the outputs `x-png` and `x-jpg`.

    Manifest columns: `image` (path, relative to the manifest's folder), and optionally `source`,
    `target` (several separated by '|'), `caption`, `mask` (a mask file relative to the manifest's folder, or
    "auto") and `id`; missing ones fall back to the flags. An `id` names the outputs inside -o: one with a path
    separator, '..', a drive colon or a control character is refused, never mapped. Sentence files named as
    source/target must lie inside the manifest's folder.
    """
    path = Path(source_input)
    if path.is_dir():
        rows: Iterable[dict[str, Any]] = _folder_rows(path, recursive, exclude, on_skip)
        base, manifest = Path(), False
    elif path.is_file() and path.suffix.lower() in (".csv", ".jsonl"):
        rows, base, manifest = _read_manifest(path), path.parent, True
    elif path.is_file():
        raise ValueError(f"{path}: the input must be a folder of images or a .csv/.jsonl manifest")
    else:
        raise FileNotFoundError(f"batch input not found: {path}")
    items, seen = [], set()
    for number, row in enumerate(rows, start=1):
        where = f"{path}: row {number}"
        if not row.get("image"):
            raise ValueError(f"{where} has no 'image'")
        image = Path(row["image"]) if Path(row["image"]).is_absolute() else base / row["image"]
        raw_targets = row.get("target")
        if isinstance(raw_targets, list):
            row_targets = tuple(t.strip() for t in raw_targets if t.strip())
        else:
            split = str(raw_targets).split("|") if raw_targets else []
            row_targets = tuple(t.strip() for t in split if t.strip()) if raw_targets else tuple(targets)
        row_source = row.get("source") or source
        if not row_source or not row_targets:
            raise ValueError(f"{where} ({row['image']}) has no source/target and none was given with --source/--target")
        if manifest:
            row_source = _manifest_concept(row_source, base, where) if row.get("source") else row_source
            row_targets = tuple(_manifest_concept(t, base, where) for t in row_targets) if raw_targets else row_targets
        explicit = row.get("id") not in (None, "")
        item_id = _check_id(str(row["id"]), where) if explicit else _id_for(Path(row["image"]))
        if item_id.lower() in seen:  # case-insensitive: the files would collide on macOS and Windows
            hint = "give them distinct 'id' values" if manifest else "rename one of the files"
            raise ValueError(f"{path}: two rows share the output name {item_id!r}; {hint}")
        seen.add(item_id.lower())
        row_mask = str(row.get("mask") or "").strip() or None
        if row_mask is not None and row_mask != "auto" and not Path(row_mask).is_absolute():
            row_mask = str(base / row_mask)
        items.append(
            BatchItem(item_id, str(image), row_source, row_targets, row.get("caption") or None, row_mask or mask)
        )
    return items


def _folder_rows(
    folder: Path,
    recursive: bool,
    exclude: Sequence[str | os.PathLike[str]],
    on_skip: Callable[[Path, str], None] | None,
) -> list[dict[str, Any]]:
    excluded = [Path(e).resolve() for e in exclude if e is not None]
    files = []
    for candidate in sorted(folder.glob("**/*" if recursive else "*")):
        if not candidate.is_file():
            continue
        resolved = candidate.resolve()
        if any(resolved.is_relative_to(e) for e in excluded):
            continue  # an output folder inside the input is never read back (nor reported: it may hold thousands)
        if candidate.suffix.lower() not in IMAGE_SUFFIXES:
            if on_skip is not None:
                on_skip(
                    candidate,
                    f"not an image type batch reads ({candidate.suffix or 'no extension'}; it reads "
                    f"{', '.join(IMAGE_SUFFIXES)})",
                )
            continue
        files.append(candidate)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    ids = [_id_for(p.relative_to(folder)) for p in files]
    counts: dict[str, int] = {}
    for item_id in ids:
        counts[item_id.lower()] = counts.get(item_id.lower(), 0) + 1
    # x.png and x.jpg side by side: the extension names them apart (only those, so other ids stay as they were)
    return [
        {"image": str(p), "id": f"{i}-{p.suffix.lstrip('.').lower()}" if counts[i.lower()] > 1 else i}
        for p, i in zip(files, ids)
    ]


def _id_for(relative: Path) -> str:
    """An output stem from an image path: its folders joined by '__', never a path (no root, '..' or separators)."""
    parts = [part for part in relative.with_suffix("").parts if part not in ("", ".", "..") and part != relative.anchor]
    return _UNSAFE_ID.sub("_", "__".join(parts))[:MAX_ID_CHARS].lstrip(".") or "image"


def _check_id(item_id: str, where: str) -> str:
    """A manifest's `id` as given, or a clear error: ids name files inside -o and must never point elsewhere."""
    if (
        not item_id.strip()
        or item_id in (".", "..")
        or item_id.startswith(".")
        or _UNSAFE_ID.search(item_id)
        or len(item_id) > MAX_ID_CHARS
    ):
        raise ValueError(
            f"{where}: id {item_id[:60]!r} cannot name output files (no '/', '\\', ':', leading '.', "
            "control "
            f"characters, at most {MAX_ID_CHARS} characters); use letters, digits, '-' and '_'"
        )
    return item_id


def _manifest_concept(concept: str, base: Path, where: str) -> str:
    """A manifest's source/target: a word, or a sentence file inside the manifest's folder (made absolute)."""
    if not (concept.lower().endswith(".txt") or any(sep in concept for sep in "/\\") or Path(concept).is_absolute()):
        return concept
    resolved = (base / concept).resolve()
    if not resolved.is_relative_to(base.resolve()):
        raise ValueError(f"{where}: sentence file {concept!r} lies outside the manifest's folder {base}; move it there")
    return str(resolved)


def _read_manifest(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV (a UTF-8 byte-order mark, as Excel writes, is fine) or JSONL manifest, each checked for types."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start}); save the manifest as UTF-8") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines(keepends=True))
        try:
            rows = list(reader)
        except csv.Error as error:
            raise ValueError(f"{path}: not a valid CSV file ({error})") from None
        if reader.fieldnames is None or "image" not in [f.strip() for f in reader.fieldnames]:
            raise ValueError(f"{path}: the CSV has no 'image' column (columns: {reader.fieldnames}); add a header row")
        rows = [{(k or "").strip(): v for k, v in row.items()} for row in rows]
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}: line {number} is not JSON ({error.msg})") from None
                if not isinstance(rows[-1], dict):
                    raise ValueError(
                        f"{path}: line {number} is a JSON {type(rows[-1]).__name__}, not an object "
                        '({"image": ..., "target": ...})'
                    )
    for number, row in enumerate(rows, start=1):
        for key, kind in MANIFEST_FIELDS.items():
            value = row.get(key)
            if value is not None and (
                not isinstance(value, kind)
                or isinstance(value, bool)
                or (isinstance(value, list) and not all(isinstance(v, str) for v in value))
            ):
                kind_name = "text or a list of text" if key == "target" else "text"
                raise ValueError(f"{path}: row {number}: '{key}' must be {kind_name}, got {json.dumps(value)[:60]}")
    return rows


class ResultsLog:
    """Append-only JSONL of finished items; a torn last line (a kill mid-write) is ignored on reading."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):  # a hand-edited line is ignored too
                found.append(record)
        return found

    def finished_ids(self, retry_failed: bool = False) -> set[str]:
        return {r["id"] for r in self.records() if r.get("status") == "ok" or not retry_failed}

    def earlier_failures(self) -> dict[str, str]:
        """id -> error of every item recorded as failed and never since as done."""
        done = {r.get("id") for r in self.records() if r.get("status") == "ok"}
        records = self.records()
        return {r["id"]: r.get("error", "?") for r in records if r.get("status") != "ok" and r.get("id") not in done}

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


def plan_batch(log: ResultsLog, items: Sequence[BatchItem], retry_failed: bool) -> tuple[list[BatchItem], BatchSummary]:
    """The items still to do, and a summary that counts items done earlier as skipped and items that failed
    earlier (and are not retried) as failed, with their recorded errors."""
    finished = log.finished_ids(retry_failed)
    todo = [item for item in items if item.id not in finished]
    earlier = {} if retry_failed else log.earlier_failures()
    failed_before = [item for item in items if item.id in earlier and item.id in finished]
    summary = BatchSummary(
        skipped=len(items) - len(todo) - len(failed_before),
        failed=len(failed_before),
        failures=[
            {"id": item.id, "error": f"{earlier[item.id]} (an earlier run; --retry-failed retries it)"}
            for item in failed_before
        ],
    )
    return todo, summary


def prepare_output(output: Path, export_pairs: Path | None) -> None:
    """Delete temporary files a killed run left in the folders this run writes into."""
    for folder in (output, output / "images", *([export_pairs / "A"] if export_pairs else [])):
        remove_stale_temp_files(folder)
    if export_pairs is not None and (export_pairs / "B").is_dir():
        for folder in (export_pairs / "B").iterdir():
            remove_stale_temp_files(folder)


def process_item(
    editor: Pix2PixZero,
    item: BatchItem,
    output: Path,
    export_pairs: Path | None = None,
    config: EditConfig | None = None,
    inversion_config: InversionConfig | None = None,
    image_config: ImageConfig | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Edit one item and write its outputs; returns its results record (status 'ok' or 'error')."""
    started = time.perf_counter()
    record: dict[str, Any] = {
        "id": item.id,
        "image": item.image,
        "source": item.source,
        "targets": list(item.targets),
        **({"mask": item.mask} if item.mask else {}),
    }
    try:
        options = EditOptions(
            config=config,
            inversion=inversion_config,
            image=image_config,
            caption=item.caption,
            seed=seed,
            mask=item.mask,
        )
        result = editor.edit(item.image, item.source, list(item.targets), options=options)
        # An unrecorded item may have left complete files from an interrupted attempt: replacing them is redoing
        # unfinished work.
        written = result.save(output / "images", stem=item.id, overwrite=True)
        if export_pairs is not None:
            save_png(result.input, export_pairs / "A" / f"{item.id}.png", overwrite=True)
            for edit, image in zip(result.edits, result.images):
                save_png(
                    image,
                    export_pairs / "B" / safe_name(Path(edit["target"]).stem, "target") / f"{item.id}.png",
                    overwrite=True,
                )
        record.update(status="ok", caption=result.caption, outputs=[str(p) for p in written], timings_s=result.timings)
    except Exception as error:  # one bad item never stops the run
        record.update(status="error", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc(limit=3))
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def run_batch(
    editor: Pix2PixZero,
    items: Sequence[BatchItem],
    output: str | os.PathLike[str],
    export_pairs: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    **edit_kwargs: Any,
) -> BatchSummary:
    """Process every item not yet recorded in <output>/results.jsonl, appending a record after each one."""
    output = Path(output)
    log = ResultsLog(output / RESULTS_FILE)
    todo, summary = plan_batch(log, items, retry_failed)
    started = time.perf_counter()
    pairs = Path(export_pairs) if export_pairs is not None else None
    prepare_output(output, pairs)
    with tqdm(
        total=len(items), initial=len(items) - len(todo), desc="batch", unit="image", disable=not progress
    ) as bar:
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
