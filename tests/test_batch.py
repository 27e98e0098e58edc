"""Batch runs: folders and manifests, resume after a crash, bad images recorded, exported pairs."""

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from pix2pix_zero import batch as batch_module
from pix2pix_zero.api import EditResult
from pix2pix_zero.batch import ResultsLog, read_items, run_batch
from pix2pix_zero.cli import main
from pix2pix_zero.images import load_image


class FakeEditor:
    """Stands in for Pix2PixZero: 'edits' by inverting colours, records which images it saw."""

    def __init__(self):
        self.seen = []

    def edit(self, image, source, targets, caption=None, **kwargs):
        self.seen.append(str(image))
        picture = load_image(image)
        edited = [Image.eval(picture, lambda v: 255 - v) for _ in targets]
        edits = [{"source": source, "target": t} for t in targets]
        return EditResult(edited, picture, picture, caption or "a photo", edits, {"model": "fake"}, {"edit": 0.0})


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for name, colour in [("a.png", "red"), ("b.jpg", "blue"), ("sub/c.webp", "green")]:
        Image.new("RGB", (20, 16), colour).save(root / name)
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_items_are_found_recursively_with_unique_ids(folder):
    items = read_items(folder, "cat", ["dog"])
    assert [i.id for i in items] == ["a", "b", "sub__c"]
    assert all(i.source == "cat" and i.targets == ("dog",) for i in items)
    assert [i.id for i in read_items(folder, "cat", ["dog"], recursive=False)] == ["a", "b"]


def test_manifests_give_per_image_settings(tmp_path, folder):
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("image,source,target,caption\nphotos/a.png,cat,dog|horse,a red cat\nphotos/b.jpg,,,\n")
    items = read_items(csv_path, "tree", ["robot"])
    assert (
        items[0].targets == ("dog", "horse")
        and items[0].caption == "a red cat"
        and items[0].image == str(tmp_path / "photos/a.png")
    )
    assert items[1].source == "tree" and items[1].targets == ("robot",) and items[1].caption is None
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(json.dumps({"image": "photos/a.png", "source": "cat", "target": "dog", "id": "first"}) + "\n\n")
    assert read_items(jsonl)[0].id == "first"
    jsonl.write_text("{broken\n")
    with pytest.raises(ValueError, match="line 1 is not JSON"):
        read_items(jsonl)
    csv_path.write_text("image,source,target\nphotos/a.png,,\n")
    with pytest.raises(ValueError, match="no source/target"):
        read_items(csv_path)


def test_bad_image_is_recorded_and_skipped_and_pairs_are_exported(tmp_path, folder):
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    editor = FakeEditor()
    summary = run_batch(
        editor,
        read_items(folder, "cat", ["dog", "horse"]),
        tmp_path / "out",
        export_pairs=tmp_path / "pairs",
        progress=False,
    )
    assert (summary.done, summary.failed, summary.skipped) == (3, 1, 0)
    records = {r["id"]: r for r in ResultsLog(tmp_path / "out" / "results.jsonl").records()}
    assert records["broken"]["status"] == "error" and "ImageError" in records["broken"]["error"]
    assert records["a"]["status"] == "ok" and (tmp_path / "out/images/a.edit-dog.png").is_file()
    assert sorted(p.name for p in (tmp_path / "pairs/A").iterdir()) == ["a.png", "b.png", "sub__c.png"]
    assert (tmp_path / "pairs/B/horse/sub__c.png").is_file()


def test_resume_after_a_crash_neither_loses_nor_repeats_work(tmp_path, folder, monkeypatch):
    items = read_items(folder, "cat", ["dog"])
    editor = FakeEditor()
    real = batch_module.process_item
    calls = {"n": 0}

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process is killed mid-run
        return real(*args, **kwargs)

    monkeypatch.setattr(batch_module, "process_item", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_batch(editor, items, tmp_path / "out", progress=False)
    first_png = (tmp_path / "out/images/a.edit-dog.png").read_bytes()
    monkeypatch.setattr(batch_module, "process_item", real)
    log = tmp_path / "out/results.jsonl"
    log.write_text(log.read_text() + '{"id": "b", "sta')  # a torn line from the kill
    resumed = FakeEditor()
    summary = run_batch(resumed, items, tmp_path / "out", progress=False)
    assert (summary.done, summary.skipped) == (2, 1)
    assert resumed.seen == [items[1].image, items[2].image]
    assert (tmp_path / "out/images/a.edit-dog.png").read_bytes() == first_png
    ids = [r["id"] for r in ResultsLog(log).records()]
    assert sorted(ids) == ["a", "b", "sub__c"]
    assert run_batch(FakeEditor(), items, tmp_path / "out", progress=False).skipped == 3


def test_failed_items_are_retried_only_when_asked(tmp_path, folder):
    (folder / "broken.png").write_bytes(b"junk")
    items = read_items(folder, "cat", ["dog"])
    run_batch(FakeEditor(), items, tmp_path / "out", progress=False)
    again = FakeEditor()
    rerun = run_batch(again, items, tmp_path / "out", progress=False)
    assert (rerun.skipped, rerun.failed, again.seen) == (3, 1, [])  # an earlier failure is reported as failed, not done
    retry = FakeEditor()
    run_batch(retry, items, tmp_path / "out", retry_failed=True, progress=False)
    assert retry.seen == [str(folder / "broken.png")]


def test_batch_command_end_to_end_on_the_tiny_model(tmp_path, folder, tiny_model_dir, cache_dir):
    args = [
        "batch",
        str(folder),
        "-s",
        "cat",
        "-t",
        "dog",
        "-o",
        str(tmp_path / "out"),
        "--model",
        str(tiny_model_dir),
        "--steps",
        "3",
        "--num-reg-steps",
        "1",
        "--num-ac-rolls",
        "1",
        "--captioner",
        "unused",
        "-q",
    ]
    manifest = tmp_path / "m.csv"
    manifest.write_text("image,caption\nphotos/a.png,a photo of a cat\nphotos/b.jpg,a photo of a cat\n")
    args[1] = str(manifest)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "2 edited, 0 failed, 0 already done" in result.output
    assert CliRunner().invoke(main, args).output.startswith("0 edited, 0 failed, 2 already done")


@pytest.mark.slow
def test_ray_batch_on_a_local_cluster_writes_the_same_manifest_and_resumes(tmp_path, folder, tiny_model_dir, cache_dir):
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    from pix2pix_zero import EditConfig, InversionConfig
    from pix2pix_zero.ray_batch import run_batch_on_ray

    (folder / "broken.png").write_bytes(b"junk")
    manifest = tmp_path / "m.jsonl"
    names = ["a.png", "broken.png", "b.jpg", "sub/c.webp"]
    manifest.write_text(
        "".join(json.dumps({"image": f"photos/{n}", "caption": "a photo of a cat"}) + "\n" for n in names)
    )
    items = read_items(manifest, "cat", ["dog"])
    kwargs = dict(
        editor_kwargs={"captioner": "unused", "cache_dir": str(cache_dir)},
        progress=False,
        config=EditConfig(num_steps=3),
        inversion_config=InversionConfig(num_steps=3, num_reg_steps=1, num_ac_rolls=1),
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_batch_on_ray(str(tiny_model_dir), items[:2], tmp_path / "out", replicas=2, **kwargs)
        assert (summary.done, summary.failed) == (1, 1)  # broken.png fails, a.png is edited
        summary = run_batch_on_ray(str(tiny_model_dir), items, tmp_path / "out", replicas=2, **kwargs)
        assert (summary.done, summary.failed, summary.skipped) == (
            2,
            1,
            1,
        )  # broken.png: failed earlier, still reported failed
    finally:
        ray.shutdown()
    records = {r["id"]: r for r in ResultsLog(tmp_path / "out" / "results.jsonl").records()}
    assert sorted(records) == ["photos__a", "photos__b", "photos__broken", "photos__sub__c"]
    assert records["photos__a"]["status"] == "ok" and records["photos__broken"]["status"] == "error"
    assert (tmp_path / "out/images/photos__sub__c.edit-dog.png").is_file()


# -- hardening -----------------------------------------------------------------------------------------------------


def test_same_name_different_extension_get_distinct_outputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (8, 8), "red").save(folder / "x.png")
    Image.new("RGB", (8, 8), "blue").save(folder / "x.jpg")
    Image.new("RGB", (8, 8), "green").save(folder / "y.png")
    items = read_items(folder, "cat", ["dog"])
    assert sorted(item.id for item in items) == ["x-jpg", "x-png", "y"]
    summary = run_batch(FakeEditor(), items, tmp_path / "out", progress=False)
    assert summary.done == 3 and (tmp_path / "out" / "images" / "x-jpg.edit-dog.png").is_file()


def test_an_output_folder_inside_the_input_is_never_read_back(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (8, 8), "red").save(folder / "a.png")
    output = folder / "edited"
    run_batch(FakeEditor(), read_items(folder, "cat", ["dog"], exclude=[output]), output, progress=False)
    assert any(output.rglob("*.png"))
    again = read_items(folder, "cat", ["dog"], exclude=[output])
    assert [item.id for item in again] == ["a"]  # not a.input, a.edit-dog, ... from the first run


def test_a_folder_batch_reports_what_it_skipped(folder):
    skipped = []
    read_items(folder, "cat", ["dog"], on_skip=lambda path, reason: skipped.append((path.name, reason)))
    assert skipped == [("notes.txt", skipped[0][1])] and ".txt" in skipped[0][1] and ".gif" in skipped[0][1]


def test_temp_files_left_by_a_kill_are_cleaned_when_a_run_starts(tmp_path, folder):
    import os
    import time

    images = tmp_path / "out" / "images"
    images.mkdir(parents=True)
    stale = images / ".a.input.png.k3j4.tmp"
    stale.write_bytes(b"half a png")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    run_batch(FakeEditor(), read_items(folder, "cat", ["dog"]), tmp_path / "out", progress=False)
    assert not stale.exists()


def test_batch_exits_non_zero_when_images_failed_and_a_rerun_still_says_so(tmp_path, folder, monkeypatch):
    from pix2pix_zero import cli

    (folder / "broken.png").write_bytes(b"junk")
    monkeypatch.setattr(cli.ModelOptions, "editor", lambda self: FakeEditor())
    args = ["batch", str(folder), "-s", "cat", "-t", "dog", "-o", str(tmp_path / "out"), "-q"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 1 and "3 edited, 1 failed" in first.output and "failed broken" in first.output
    assert "skipped" in first.output and "notes.txt" in first.output
    rerun = CliRunner().invoke(main, args)
    assert (
        rerun.exit_code == 1 and "0 edited, 1 failed, 3 already done" in rerun.output and "earlier run" in rerun.output
    )


def test_a_damaged_results_log_is_read_without_a_traceback(tmp_path, folder):
    log = tmp_path / "out" / "results.jsonl"
    log.parent.mkdir()
    log.write_bytes(
        b'[1, 2]\n{"status": "ok"}\n{"id": 5, "status": "ok"}\n\xff\xfe junk\n{"id": "a", "status": "ok"}\n'
    )
    summary = run_batch(FakeEditor(), read_items(folder, "cat", ["dog"]), tmp_path / "out", progress=False)
    assert (summary.skipped, summary.done) == (1, 2)  # 'a' was done; the damaged lines are ignored


# -- settings recorded in the output folder, manifest columns -------------------------------------------------------


def _cli_batch(monkeypatch, folder, out, *extra, target="square"):
    """`batch` through the CLI with the FakeEditor; returns (result, the images the editor was given)."""
    from pix2pix_zero import cli

    editor = FakeEditor()
    monkeypatch.setattr(cli.ModelOptions, "editor", lambda self: editor)
    args = ["batch", str(folder), "-s", "circle", "-t", target, "-o", str(out), "-q", "--steps", "5", *extra]
    return CliRunner().invoke(main, args), editor.seen


def test_resume_with_other_settings_is_refused_naming_them(tmp_path, folder, monkeypatch):
    out = tmp_path / "out"
    first, _ = _cli_batch(monkeypatch, folder, out)
    assert first.exit_code == 0 and "3 edited" in first.output
    recorded = json.loads((out / batch_module.SETTINGS_FILE).read_text())
    assert recorded["targets"] == ["square"] and recorded["edit"]["num_steps"] == 5 and recorded["seed"] == 0
    before = sorted(p.name for p in (out / "images").iterdir())
    for extra, target, named in [
        ((), "star", 'targets: ["square"] → ["star"]'),
        (("--steps", "7"), "square", "edit.num_steps: 5 → 7"),
        (("--guidance-scale", "3"), "square", "edit.guidance_scale: "),
        (("--seed", "4"), "square", "seed: 0 → 4"),
    ]:
        result, seen = _cli_batch(monkeypatch, folder, out, *extra, target=target)
        assert result.exit_code == 1 and named in result.output and "another -o" in result.output, result.output
        assert [line for line in result.output.splitlines() if "skipped" not in line] == [
            next(line for line in result.output.splitlines() if line.startswith("Error: "))
        ] and seen == []
    assert sorted(p.name for p in (out / "images").iterdir()) == before
    again, seen = _cli_batch(monkeypatch, folder, out, "--cpus-per-replica", "2")  # not a setting of the results
    assert again.exit_code == 0 and "0 edited, 0 failed, 3 already done" in again.output and seen == []


def test_an_output_folder_without_a_settings_file_resumes_and_gets_one(tmp_path, folder):
    out = tmp_path / "out"
    run_batch(FakeEditor(), read_items(folder, "cat", ["dog"]), out, progress=False)
    (out / batch_module.SETTINGS_FILE).unlink()  # as a run before the file existed left it
    resumed = FakeEditor()
    assert run_batch(resumed, read_items(folder, "cat", ["dog"]), out, progress=False).skipped == 3
    assert resumed.seen == [] and json.loads((out / batch_module.SETTINGS_FILE).read_text())["targets"] == ["dog"]
    with pytest.raises(batch_module.SettingsChangedError, match='source: "cat" → "tree"'):
        run_batch(FakeEditor(), read_items(folder, "tree", ["dog"]), out, progress=False)


def test_settings_recorded_before_any_result_do_not_hold_the_folder(tmp_path, folder):
    """A first run that stopped before its first result (the model did not load) leaves nothing to keep apart."""
    out = tmp_path / "out"
    batch_module.check_output(out, {"model": "a", "targets": ["dog"]})
    assert json.loads((out / batch_module.SETTINGS_FILE).read_text())["targets"] == ["dog"]
    assert run_batch(FakeEditor(), read_items(folder, "cat", ["horse"]), out, progress=False).done == 3
    assert json.loads((out / batch_module.SETTINGS_FILE).read_text())["targets"] == ["horse"]


def test_a_manifest_row_changed_since_it_was_done_is_refused_naming_its_id(tmp_path, folder):
    manifest, out = tmp_path / "m.csv", tmp_path / "out"
    manifest.write_text("image,source,target,id\nphotos/a.png,cat,dog,first\nphotos/b.jpg,cat,dog,second\n")
    run_batch(FakeEditor(), read_items(manifest), out, progress=False)
    manifest.write_text("image,source,target,id\nphotos/a.png,cat,dog,first\nphotos/b.jpg,cat,horse,second\n")
    with pytest.raises(batch_module.SettingsChangedError, match='id \'second\': targets \\["dog"\\] → \\["horse"\\]'):
        run_batch(FakeEditor(), read_items(manifest), out, progress=False)
    log = out / "results.jsonl"  # records that do not say what the row asked for cannot be compared: resumed as before
    records = [json.loads(line) for line in log.read_text().splitlines()]
    log.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "targets"}) + "\n" for r in records))
    assert run_batch(FakeEditor(), read_items(manifest), out, progress=False).skipped == 2


def test_local_and_ray_runs_record_the_same_settings(tiny_model_dir, folder, cache_dir):
    from pix2pix_zero import EditConfig, Pix2PixZero

    editor = Pix2PixZero.from_pretrained(str(tiny_model_dir), captioner="unused", progress=False)
    items = read_items(folder, "cat", ["dog"])
    for kwargs in ({}, {"config": EditConfig(num_steps=3), "seed": 2}):
        local = batch_module._editor_settings(editor, items, kwargs)
        assert local == batch_module.ray_settings(str(tiny_model_dir), "default", items[:2], kwargs)
    assert local["model"] == str(tiny_model_dir.resolve()) and local["edit"]["num_steps"] == 3
    assert "max_input_pixels" not in local["image"]  # a safety limit, not a setting of the results


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("image,source,target,captoin\nphotos/a.png,cat,dog,x\n", "unknown column(s) ['captoin']"),
        (
            "image,target\nphotos/a.png,dog,surplus\n",
            "row 1 (line 2) has 1 value(s) with no column ['surplus']: the header names image, target",
        ),
        ("source,target\ncat,dog\n", "header has no 'image' column (columns found: ['source', 'target']"),
        ("image;source;target\nphotos/a.png;cat;dog\n", "looks ;-separated: save the manifest comma-separated"),
        ("image\tsource\nphotos/a.png\tcat\n", "looks tab-separated"),
        ("image,Image\nphotos/a.png,photos/b.jpg\n", "more than once"),
        ("image,source,target\n", "no rows"),
        ("", "empty"),
    ],
)
def test_manifest_columns_are_checked(tmp_path, folder, text, expected):
    manifest = tmp_path / "m.csv"
    manifest.write_text(text)
    with pytest.raises(ValueError) as error:
        read_items(manifest, "cat", ["dog"])
    assert expected in str(error.value) and "\n" not in str(error.value)
    if "column" in expected and "more than once" not in expected:
        assert "image, source, target, caption, id, mask" in str(error.value)


def test_manifest_headers_ignore_case_and_spaces_and_trailing_commas(tmp_path, folder):
    manifest = tmp_path / "m.csv"
    manifest.write_text(" Image , Source,TARGET,\nphotos/a.png,cat,dog,\n,,,\n")
    items = read_items(manifest)
    assert [(i.id, i.source, i.targets) for i in items] == [("photos__a", "cat", ("dog",))]


def test_jsonl_manifest_fields_are_checked_the_same_way(tmp_path, folder):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"Image": "photos/a.png", "target": "dog", "captoin": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"line 1: unknown field\(s\) \['captoin'\]; the known fields are image,"):
        read_items(manifest, "cat")
    manifest.write_text(json.dumps({" Image": "photos/a.png", "TARGET": "dog"}) + "\n")
    assert read_items(manifest, "cat")[0].targets == ("dog",)
    manifest.write_text("\n")
    with pytest.raises(ValueError, match="no rows"):
        read_items(manifest, "cat", ["dog"])
