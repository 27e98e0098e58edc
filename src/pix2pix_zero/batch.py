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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .api import EditOptions, Pix2PixZero
from .components import BUNDLED_MODELS, model_name, preset_for
from .config import EditConfig, ImageConfig, InversionConfig
from .files import atomic_write, remove_stale_temp_files, safe_name
from .images import IMAGE_SUFFIXES, save_png

RESULTS_FILE = "results.jsonl"
SETTINGS_FILE = "settings.json"  # the settings that decide the results in an output folder (see check_output)
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


class BatchItems(list[BatchItem]):
    """The items `read_items` found, with the command-level `defaults` (source, targets, mask) that rows without
    their own took: part of the settings an output folder records. Slices keep them."""

    def __init__(self, items: Iterable[BatchItem] = (), defaults: dict[str, Any] | None = None) -> None:
        super().__init__(items)
        self.defaults: dict[str, Any] = dict(defaults or {})

    def __getitem__(self, index: Any) -> Any:
        found = super().__getitem__(index)
        return BatchItems(found, self.defaults) if isinstance(index, slice) else found


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
) -> BatchItems:
    """Items from a folder of images (same source/targets for all) or a CSV/JSONL manifest.

    Folders: every file whose extension is one of IMAGE_SUFFIXES, except those inside `exclude` (the output
    folders, so a rerun never edits its own outputs); each other file is reported to `on_skip(path, reason)`.
    `x.png` and `x.jpg` side by side get the outputs `x-png` and `x-jpg`.

    Manifest columns: `image` (path, relative to the manifest's folder), and optionally `source`,
    `target` (several separated by '|'), `caption`, `mask` (a mask file relative to the manifest's folder, or
    "auto") and `id`; missing ones fall back to the flags. An `id` names the outputs inside -o: one with a path
    separator, '..', a drive colon or a control character is refused, never mapped. Sentence files named as
    source/target must lie inside the manifest's folder. Column names are compared without case; unknown columns
    (a misspelt `captoin`), values with no column and manifests with no rows are refused.
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
    items, seen = BatchItems(defaults={"source": source, "targets": list(targets), "mask": mask}), set()
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
    """Rows of a CSV (a UTF-8 byte-order mark, as Excel writes, is fine) or JSONL manifest, each checked for types.

    Column names are compared without case or surrounding spaces; a name not in MANIFEST_FIELDS, a value with no
    column, and a manifest with no rows are refused (a misspelt column would otherwise be silently ignored)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start}); save the manifest as UTF-8") from None
    rows = _read_csv(path, text) if path.suffix.lower() == ".csv" else _read_jsonl(path, text)
    if not rows:
        raise ValueError(f"{path}: no rows: the manifest lists no images (one row per image)")
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


_KNOWN_COLUMNS = ", ".join(MANIFEST_FIELDS)


def _names(names: Iterable[str]) -> str:
    """Column names for a one-line message: quoted (control characters escaped) and shortened."""
    return "[" + ", ".join(repr(name[:40]) for name in names) + "]"


def _separator_hint(line: str) -> str:
    """', it looks ;-separated: ...' when a header line has more ';' or tabs than commas, else ''."""
    counts = {";": line.count(";"), "tab": line.count("\t")}
    name, count = max(counts.items(), key=lambda pair: pair[1])
    if count > line.count(","):
        return f"; it looks {name}-separated: save the manifest comma-separated"
    return ""


def _read_csv(path: Path, text: str) -> list[dict[str, Any]]:
    lines = text.splitlines(keepends=True)
    reader = csv.reader(lines)
    try:
        header = next((row for row in reader if row), None)  # blank lines before the header are fine
        header_line = lines[reader.line_num - 1] if header is not None else ""
        if header is None:
            raise ValueError(f"{path}: empty: a CSV manifest needs a header row ({_KNOWN_COLUMNS}) and a row per image")
        names = [name.strip().lower() for name in header]
        if "image" not in names:
            hint = _separator_hint(header_line)
            if hint or not set(names) & set(MANIFEST_FIELDS):
                raise ValueError(
                    f"{path}: the CSV has no 'image' column: its first row {_names(header)} is not a header of "
                    f"known columns ({_KNOWN_COLUMNS}){hint or '; add a header row'}"
                )
            raise ValueError(
                f"{path}: the CSV header has no 'image' column (columns found: {_names(header)}; "
                f"known columns: {_KNOWN_COLUMNS})"
            )
        unknown = [name for name in header if name.strip() and name.strip().lower() not in MANIFEST_FIELDS]
        if unknown:
            raise ValueError(
                f"{path}: unknown column(s) {_names(unknown)} in the header; the known columns are {_KNOWN_COLUMNS}"
                f"{_separator_hint(header_line)}"
            )
        repeated = sorted({name for name in names if name and names.count(name) > 1})
        if repeated:
            raise ValueError(f"{path}: the header names column(s) {_names(repeated)} more than once")
        rows = []
        for values in reader:
            if not any(value.strip() for value in values):
                continue  # a blank line, or one of only commas as spreadsheets write
            where = f"{path}: row {len(rows) + 1} (line {reader.line_num})"
            # a value with no column name (more values than the header has columns, or an unnamed column) is refused
            # unless blank, as the trailing commas a spreadsheet writes are
            stray = [v for i, v in enumerate(values) if v.strip() and (i >= len(names) or not names[i])]
            if stray:
                raise ValueError(
                    f"{where} has {len(stray)} value(s) with no column {_names(stray)}: the header names "
                    f"{', '.join(n for n in names if n)} (known columns: {_KNOWN_COLUMNS}); add the column to the "
                    "header, or quote values that hold commas"
                )
            rows.append({name: value for name, value in zip(names, values) if name})
    except csv.Error as error:
        raise ValueError(f"{path}: not a valid CSV file ({error})") from None
    return rows


def _read_jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: line {number} is not JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(
                f'{path}: line {number} is a JSON {type(row).__name__}, not an object ({{"image": ..., "target": ...}})'
            )
        normalised = {key.strip().lower(): value for key, value in row.items()}
        unknown = [key for key in row if key.strip().lower() not in MANIFEST_FIELDS]
        if unknown:
            raise ValueError(
                f"{path}: line {number}: unknown field(s) {_names(unknown)}; the known fields are {_KNOWN_COLUMNS}"
            )
        if len(normalised) < len(row):
            raise ValueError(f"{path}: line {number} names a field twice (fields are compared without case)")
        rows.append(normalised)
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


class SettingsChangedError(ValueError):
    """An output folder holds results made with other settings: resuming into it would mix them."""


# A safety limit: it decides which images load at all, not what an edit of one gives (raising it for images that
# failed, with --retry-failed, is fine).
_NOT_RESULTS = {"image": ("max_input_pixels",)}


def _model_key(model: str | os.PathLike[str]) -> str:
    """A model as the settings file records it: a bundled model by name, a local path absolute, a hub id as given."""
    name = str(model)
    if name in BUNDLED_MODELS or model_name(name) != name:  # 'shapesworld' whether given by name or loaded
        return name if name in BUNDLED_MODELS else model_name(name)
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def batch_settings(
    model: str | os.PathLike[str] | None,
    preset: str | None,
    inversion_config: InversionConfig | None,
    edit_config: EditConfig | None,
    image_config: ImageConfig | None,
    seed: int = 0,
    defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The settings that decide a batch's results, as `SETTINGS_FILE` records them: model, preset, seed, the three
    configs and the command-level defaults (source, targets, mask) rows without their own take. Not the device,
    progress or Ray flags, nor per-row values (results.jsonl records those)."""
    settings: dict[str, Any] = {  # an editor that does not say its model or preset records neither
        **({"model": _model_key(model)} if model is not None else {}),
        **({"preset": preset} if preset is not None else {}),
        "seed": seed,
        "inversion": asdict(inversion_config) if inversion_config is not None else None,
        "edit": asdict(edit_config) if edit_config is not None else None,
        "image": asdict(image_config) if image_config is not None else None,
    }
    for section, names in _NOT_RESULTS.items():
        for name in names:
            (settings[section] or {}).pop(name, None)
    if defaults is not None:
        settings.update(
            source=defaults.get("source"), targets=list(defaults.get("targets") or []), mask=defaults.get("mask")
        )
    return json.loads(json.dumps(settings, default=str))  # as the file will hold them (tuples as lists, ...)


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """'name: old → new' for every setting both record with different values (a setting only one side records, as
    an older version's file lacks a newer field, cannot be compared)."""
    found = []
    for key, value in new.items():
        if key not in old:
            continue
        before = old[key]
        if isinstance(before, dict) and isinstance(value, dict):
            found += _differences(before, value, f"{prefix}{key}.")
        elif before != value:
            found.append(f"{prefix}{key}: {json.dumps(before)[:60]} → {json.dumps(value)[:60]}")
    return found


def _merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`old` with the settings only `new` records added."""
    merged = dict(old)
    for key, value in new.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = _merged(merged[key], value)
    return merged


def _changed_rows(log: ResultsLog, items: Sequence[BatchItem], retry_failed: bool) -> list[str]:
    """'id 'x': targets ['dog'] → ['horse']' for every item recorded as done (or failed, and not retried) whose
    source or targets differ from the record's: a manifest row changed since, which the run would skip."""
    finished = log.finished_ids(retry_failed)
    latest: dict[str, dict[str, Any]] = {}
    for record in log.records():
        if record["id"] in finished and (
            record.get("status") == "ok" or latest.get(record["id"], {}).get("status") != "ok"
        ):
            latest[record["id"]] = record
    changed = []
    for item in items:
        record = latest.get(item.id)
        if record is None or not {"source", "targets"} <= record.keys():
            continue  # nothing recorded to compare with
        for name, before, now in (
            ("source", record["source"], item.source),
            ("targets", record["targets"], list(item.targets)),
        ):
            if before != now:
                changed.append(f"id {item.id!r}: {name} {json.dumps(before)[:60]} → {json.dumps(now)[:60]}")
    return changed


def check_output(
    output: str | os.PathLike[str],
    settings: dict[str, Any],
    items: Sequence[BatchItem] = (),
    retry_failed: bool = False,
) -> None:
    """Refuse to resume into `output` when its SETTINGS_FILE records other settings, or when a row already done
    has another source or targets now; else record `settings` there (atomically; a folder from before the file
    existed gets it now). Call before any work: a refusal is one line naming what differs (old → new)."""
    output = Path(output)
    file = output / SETTINGS_FILE
    recorded = None
    results = output / RESULTS_FILE
    done = results.is_file() and results.stat().st_size > 0  # no result yet: nothing to keep apart
    if file.exists():
        try:
            recorded = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            recorded = None
        if not isinstance(recorded, dict):
            raise SettingsChangedError(
                f"{file} is not a readable settings file; remove it to resume with this run's settings, "
                "or use another -o"
            )
    fix = f"use another -o (or remove {output} to start again)"
    differences = _differences(recorded, settings) if recorded is not None and done else []
    if differences:
        shown = "; ".join(differences[:8]) + (f"; and {len(differences) - 8} more" if len(differences) > 8 else "")
        raise SettingsChangedError(f"{output} holds results made with other settings ({shown}); {fix}")
    changed = _changed_rows(ResultsLog(output / RESULTS_FILE), items, retry_failed)
    if changed:
        shown = "; ".join(changed[:5]) + (f"; and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise SettingsChangedError(
            f"{output} holds results of rows that have changed since ({shown}); {fix}, or give changed rows new ids"
        )
    if recorded is None:
        wanted = settings
    else:  # with results the recorded settings stand; before any, this run's
        wanted = _merged(recorded, settings) if done else _merged(settings, recorded)
    if wanted != recorded:
        atomic_write(file, (json.dumps(wanted, indent=2, sort_keys=True) + "\n").encode(), overwrite=True)


def _editor_settings(editor: Any, items: Sequence[BatchItem], edit_kwargs: dict[str, Any]) -> dict[str, Any]:
    """batch_settings of a run_batch call: configs left out are the editor's preset's, which it uses then."""
    preset = getattr(editor, "preset", None)
    components = getattr(editor, "components", None)
    return batch_settings(
        getattr(components, "model_id", None),
        getattr(preset, "name", None),
        edit_kwargs.get("inversion_config") or getattr(preset, "inversion", None),
        edit_kwargs.get("config") or getattr(preset, "edit", None),
        edit_kwargs.get("image_config") or getattr(preset, "image", None),
        edit_kwargs.get("seed", 0),
        getattr(items, "defaults", None),
    )


def ray_settings(model: str, preset: str, items: Sequence[BatchItem], edit_kwargs: dict[str, Any]) -> dict[str, Any]:
    """batch_settings of a run_batch_on_ray call: configs left out are the preset's as it applies to `model`."""
    configs = [edit_kwargs.get(name) for name in ("inversion_config", "config", "image_config")]
    if any(config is None for config in configs):
        applied = preset_for(preset, model)
        configs = [c or d for c, d in zip(configs, (applied.inversion, applied.edit, applied.image))]
    return batch_settings(model, preset, *configs, edit_kwargs.get("seed", 0), getattr(items, "defaults", None))


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
    """Process every item not yet recorded in <output>/results.jsonl, appending a record after each one.

    Refuses (SettingsChangedError, before any work) an output folder made with other settings: see check_output."""
    output = Path(output)
    check_output(output, _editor_settings(editor, items, edit_kwargs), items, retry_failed)
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
