"""`bench speed` runs both implementations on the same model in fresh processes and reports ratios."""

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from pix2pix_zero.bench.speed import (
    EDIT_OPTIONS,
    PeakMemory,
    format_report,
    half_image_mask,
    option_costs,
    option_settings,
    summarize,
)
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


def _row(implementation, invert_s, edit_s, invert_mib, edit_mib, **extra):
    return dict(
        model="m",
        size=64,
        implementation=implementation,
        targets=1,
        invert_s=invert_s,
        edit_s=edit_s,
        total_s=invert_s + edit_s,
        invert_peak_mib=invert_mib,
        edit_peak_mib=edit_mib,
        total_peak_mib=max(invert_mib, edit_mib),
        unet_calls=21,
        **extra,
    )


def test_each_option_row_is_costed_against_ours_without_options():
    rows = [
        _row("diffusers", 4.0, 12.0, 200.0, 400.0),
        _row("pix2pix-zero", 2.0, 4.0, 100.0, 200.0),
        _row("pix2pix-zero, xa_layers=encoder", 2.0, 3.0, 100.0, 150.0),  # a variant, not an option: no cost row
        _row("pix2pix-zero, exact-inversion", 3.0, 5.0, 110.0, 220.0, option="exact-inversion"),
        _row("pix2pix-zero, all", 2.0, 8.0, 100.0, 300.0, option="all"),
    ]
    costs = option_costs(rows)
    assert [c["option"] for c in costs] == ["exact-inversion", "all"]
    exact, everything = costs
    assert exact["invert_time_ratio"] == 1.5 and exact["edit_time_ratio"] == 1.25 and exact["total_time_ratio"] == 8 / 6
    assert exact["invert_memory_ratio"] == 1.1 and exact["edit_memory_ratio"] == 1.1
    assert everything["edit_time_ratio"] == 2.0 and everything["total_memory_ratio"] == 1.5
    report = format_report(rows, summarize(rows))
    assert "| m | all | 2.00 (1.00×) | 8.00 (2.00×) | 10.00 (1.67×) | 100 (1.00×) | 300 (1.50×) | 21 |" in report
    # the options still appear beside diffusers, as every single-target row of ours does
    assert [s["implementation"] for s in summarize(rows)][-1] == "pix2pix-zero, all"
    assert "Edit options" not in format_report(rows[:3], summarize(rows[:3]))  # no options, no extra table


def test_options_become_edit_settings():
    assert option_settings("none", (64, 64)) == ({}, None)
    assert option_settings("exact-inversion", (64, 64)) == ({"exact_inversion": True}, None)
    assert option_settings("self-attention", (64, 64)) == ({"self_attention_injection": 0.3}, None)
    assert option_settings("auto-mask", (64, 64)) == ({}, "auto")
    assert option_settings("all", (64, 64)) == ({"exact_inversion": True, "self_attention_injection": 0.3}, "auto")
    fields, mask = option_settings("mask", (64, 48))
    assert fields == {} and mask.size == (64, 48) and mask.mode == "L"
    with pytest.raises(ValueError, match="unknown edit option 'masks'"):
        option_settings("masks", (64, 64))


def test_half_image_mask_lets_the_left_half_change():
    import numpy as np

    mask = np.asarray(half_image_mask((10, 4)))
    assert (mask[:, :5] == 255).all() and (mask[:, 5:] == 0).all()


def test_the_negative_prompt_option_changes_only_the_negative_prompt():
    from pix2pix_zero.config import EditConfig

    fields, mask = option_settings("empty-negative-prompt", (64, 64))
    changed = replace(EditConfig(), **fields)
    assert mask is None and changed.negative_prompt == "empty" != EditConfig().negative_prompt
    assert replace(changed, negative_prompt=EditConfig().negative_prompt) == EditConfig()


def test_the_late_guidance_option_strengthens_every_edit():
    from pix2pix_zero.config import EditConfig

    fields, mask = option_settings("late-guidance", (64, 64))
    changed = replace(EditConfig(), **fields)
    assert mask is None and changed.late_guidance_factor > 1 == EditConfig().late_guidance_factor
    # both tests at their largest allowed: every edit is small, and the maps are read
    assert changed.late_guidance_movement == 100.0 and changed.late_guidance_area == 1.0


def test_the_late_cross_attention_guidance_option_weakens_every_edit():
    from pix2pix_zero.config import EditConfig

    fields, mask = option_settings("late-cross-attention-guidance", (64, 64))
    changed = replace(EditConfig(), **fields)
    assert mask is None and changed.late_guidance_xa == 0.0 < EditConfig().late_guidance_xa
    # both tests at their largest allowed: every edit is small, whether or not its caption names the source word
    assert changed.late_guidance_movement == 100.0 and changed.late_guidance_area == 1.0


def test_cli_offers_exactly_the_benchmarked_options():
    from pix2pix_zero.bench.commands import bench_speed

    (choice,) = [p.type for p in bench_speed.params if p.name == "edit_options"]
    assert list(choice.choices) == list(EDIT_OPTIONS)


@pytest.mark.slow
def test_bench_speed_times_each_option_in_its_own_process(tiny_model_dir, tmp_path):
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
            "1",
            "--threads",
            "1",
            "-o",
            str(tmp_path),
            "--option",
            "exact-inversion",
            "--option",
            "self-attention",
            "--option",
            "mask",
            "--option",
            "all",
            "--option",
            "empty-negative-prompt",
            "--option",
            "late-guidance",
            "--option",
            "late-cross-attention-guidance",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    assert [r["implementation"] for r in data["rows"]] == [
        "diffusers",
        "pix2pix-zero",
        "pix2pix-zero, exact-inversion",
        "pix2pix-zero, self-attention",
        "pix2pix-zero, mask",
        "pix2pix-zero, all",
        "pix2pix-zero, empty-negative-prompt",
        "pix2pix-zero, late-guidance",
        "pix2pix-zero, late-cross-attention-guidance",
    ]
    options = ["exact-inversion", "self-attention", "mask", "all", "empty-negative-prompt", "late-guidance"]
    assert [c["option"] for c in data["option_costs"]] == [*options, "late-cross-attention-guidance"]
    ours = data["rows"][1]
    assert all(r["unet_calls"] == ours["unet_calls"] for r in data["rows"][2:-1])  # no option adds a UNet call
    assert data["rows"][-1]["unet_calls"] < ours["unet_calls"]  # the last step's guidance call is skipped
    assert all(c["edit_time_ratio"] > 0 and c["edit_memory_ratio"] > 0 for c in data["option_costs"])
    assert "Edit options, each against ours without options" in (tmp_path / "report.md").read_text()
