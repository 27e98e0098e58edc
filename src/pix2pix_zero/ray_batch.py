"""The batch run on Ray: a Ray Data job with one model replica per GPU (or per CPU worker).

Same inputs, outputs and resume rules as batch.py: the driver refuses an output folder made with other
settings, skips the items already recorded in results.jsonl, the replicas edit and write images, and the
driver appends each item's record as its result streams back, so a killed job resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .batch import (
    RESULTS_FILE,
    BatchItem,
    BatchSummary,
    ResultsLog,
    check_output,
    plan_batch,
    prepare_output,
    process_item,
    ray_settings,
)


class EditReplica:
    """A Ray Data actor: loads the model once, then edits one item per call."""

    def __init__(
        self,
        model: str,
        output: str,
        export_pairs: str | None,
        editor_kwargs: dict[str, Any],
        edit_kwargs: dict[str, Any],
    ) -> None:
        from .api import Pix2PixZero

        device = "cuda" if editor_kwargs.pop("use_gpu", False) else "cpu"  # Ray pins one GPU to this replica
        self.editor = Pix2PixZero.from_pretrained(model, device=device, progress=False, **editor_kwargs)
        self.output, self.export_pairs, self.edit_kwargs = (
            Path(output),
            Path(export_pairs) if export_pairs else None,
            edit_kwargs,
        )

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        records = []
        for encoded in batch["item"]:
            fields = json.loads(encoded)
            item = BatchItem(**{**fields, "targets": tuple(fields["targets"])})
            records.append(
                json.dumps(
                    process_item(self.editor, item, self.output, self.export_pairs, **self.edit_kwargs), default=str
                )
            )
        return {"record": records}


def run_batch_on_ray(
    model: str,
    items: list[BatchItem],
    output: str | os.PathLike[str],
    export_pairs: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    replicas: int | None = None,
    use_gpu: bool = False,
    cpus_per_replica: float = 1.0,
    address: str | None = None,
    progress: bool = True,
    editor_kwargs: dict[str, Any] | None = None,
    **edit_kwargs: Any,
) -> BatchSummary:
    import ray

    output = Path(output).resolve()
    preset = (editor_kwargs or {}).get("preset") or "default"
    check_output(output, ray_settings(model, preset, items, edit_kwargs), items, retry_failed)  # before Ray starts
    log = ResultsLog(output / RESULTS_FILE)
    todo, summary = plan_batch(log, items, retry_failed)
    prepare_output(output, Path(export_pairs) if export_pairs else None)
    if not todo:
        return summary
    started = time.perf_counter()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    resources = ray.cluster_resources()
    if replicas is None:
        replicas = int(resources.get("GPU", 0)) if use_gpu else max(1, int(resources.get("CPU", 1) // cpus_per_replica))
    dataset = ray.data.from_items([{"item": json.dumps({**asdict(i), "targets": list(i.targets)})} for i in todo])
    results = dataset.map_batches(
        EditReplica,
        batch_size=1,
        concurrency=max(1, min(replicas, len(todo))),
        num_gpus=1 if use_gpu else 0,
        num_cpus=cpus_per_replica,
        fn_constructor_kwargs=dict(
            model=model,
            output=str(output),
            export_pairs=str(Path(export_pairs).resolve()) if export_pairs else None,
            editor_kwargs={**(editor_kwargs or {}), "use_gpu": use_gpu},
            edit_kwargs=edit_kwargs,
        ),
    )
    with tqdm(
        total=len(items), initial=len(items) - len(todo), desc="batch (ray)", unit="image", disable=not progress
    ) as bar:
        for row in results.iter_rows():
            record = json.loads(row["record"])
            log.append(record)
            if record["status"] == "ok":
                summary.done += 1
            else:
                summary.failed += 1
                summary.failures.append({"id": record["id"], "error": record["error"]})
            bar.update(1)
    summary.seconds = time.perf_counter() - started
    return summary
