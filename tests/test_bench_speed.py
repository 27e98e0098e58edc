"""`bench speed` runs both implementations on the same model in fresh processes and reports ratios."""

import json

import pytest
from click.testing import CliRunner

from pix2pix_zero.bench.speed import PeakMemory, summarize
from pix2pix_zero.cli import main


def test_peak_memory_sees_an_allocation_inside_the_block():
    import numpy as np

    memory = PeakMemory("cpu")
    with memory.measure():
        before = memory._rss_mib()
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        block.sum()
    assert memory.peak_mib >= before + 50


def test_summary_ratios():
    rows = [
        dict(
            model="m",
            implementation="diffusers",
            targets=1,
            invert_s=4.0,
            edit_s=12.0,
            total_s=16.0,
            invert_peak_mib=200.0,
            edit_peak_mib=400.0,
            total_peak_mib=400.0,
        ),
        dict(
            model="m",
            implementation="pix2pix-zero",
            targets=1,
            invert_s=2.0,
            edit_s=3.0,
            total_s=5.0,
            invert_peak_mib=100.0,
            edit_peak_mib=100.0,
            total_peak_mib=100.0,
        ),
        dict(
            model="m",
            implementation="pix2pix-zero ×3",
            targets=3,
            invert_s=2.0,
            edit_s=6.0,
            total_s=8.0,
            invert_peak_mib=100.0,
            edit_peak_mib=150.0,
            total_peak_mib=150.0,
        ),
    ]
    (summary,) = summarize(rows)
    assert summary["total_speedup"] == 16.0 / 5.0 and summary["edit_memory_ratio"] == 0.25
    assert summary["extra_target_cost"] == (6.0 - 3.0) / 2 / 3.0
    assert summary["extra_target_cost_job"] == (6.0 - 3.0) / 2 / (2.0 + 3.0)
    rows[2]["edit_first_s"] = 4.0  # the first target timed in the many-target process is preferred
    (summary,) = summarize(rows)
    assert summary["extra_target_cost"] == (6.0 - 4.0) / 2 / 4.0


@pytest.mark.slow
def test_bench_speed_command_on_the_tiny_model(tiny_model_dir, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "speed",
            "-m",
            str(tiny_model_dir),
            "--steps",
            "3",
            "--targets",
            "2",
            "--threads",
            "1",
            "-o",
            str(tmp_path),
            "--xa-layers",
            "encoder",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    implementations = [r["implementation"] for r in data["rows"]]
    assert implementations == ["diffusers", "pix2pix-zero", "pix2pix-zero ×2", "pix2pix-zero, xa_layers=encoder"]
    assert [s["implementation"] for s in data["summary"]] == ["pix2pix-zero", "pix2pix-zero, xa_layers=encoder"]
    assert data["rows"][3]["unet_calls"] == data["rows"][1]["unet_calls"]  # same calls, a shorter guided forward
    ours, many = data["rows"][1], data["rows"][2]
    assert ours["unet_calls"] == 3 + 1 + 3 * 2  # 3 inversion calls; the first reference, then 2 per edit step
    assert (
        many["unet_calls"] == ours["unet_calls"]
    )  # the targets share each call; the first target's own run is not counted
    assert many["edit_first_s"] > 0 and "edit_first_s" not in ours  # timed beside the 2-target edit, in its process
    assert all(r["invert_s"] > 0 and r["edit_peak_mib"] > 0 for r in data["rows"])
    assert "speed-up total" in (tmp_path / "report.md").read_text() and (tmp_path / "report.png").is_file()


def test_repeated_timing_keeps_the_fastest_run_and_the_highest_peak():
    import time

    import numpy as np

    from pix2pix_zero.bench.speed import WorkerResult, _timed

    def slow_and_big():
        block = np.ones(128 * 2**20 // 8)  # 128 MiB, touched
        block.sum()
        time.sleep(0.2)

    results = WorkerResult("x")
    baseline = PeakMemory._rss_mib()
    _timed(results, "edit", "cpu", slow_and_big)
    _timed(results, "edit", "cpu", lambda: time.sleep(0.01))  # fast and small
    stage = results.stages["edit"]
    assert stage.seconds < 0.1  # the fast run's time
    assert stage.peak_mib >= baseline + 100  # the big run's peak


@pytest.mark.slow
def test_bench_speed_repeat_counts_one_run_of_unet_calls(tiny_model_dir, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "speed",
            "-m",
            str(tiny_model_dir),
            "--steps",
            "2",
            "--targets",
            "1",
            "--threads",
            "1",
            "-o",
            str(tmp_path),
            "--repeat",
            "2",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    assert [r["repeat"] for r in data["rows"]] == [2, 2]
    assert data["rows"][1]["unet_calls"] == 2 + 1 + 2 * 2  # per run, not summed over the repeats
    assert "fastest of 2 runs per stage" in (tmp_path / "report.md").read_text()
