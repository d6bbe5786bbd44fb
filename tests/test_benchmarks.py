"""The overhead benchmark runs end to end (its timings are not asserted: see benchmarks/)."""

import json
import re
import runpy
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "overhead.py"


def test_overhead_benchmark_writes_ratios(tmp_path, monkeypatch, capsys):
    argv = ["overhead.py", "--shape", "small", "--batch", "2", "--rounds", "1", "--steps", "1",
            "--warmup", "0", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(BENCH), run_name="__main__")
    record = json.loads((tmp_path / "small-cpu-b2.json").read_text())
    ratios = {r["variant"]: r["ratio"] for r in record["rows"]}
    assert ratios["LoRA (finetune)"] == 1.0
    assert len(ratios) == 7 and all(r > 0 for r in ratios.values())
    assert "| Janus OE+GR+DML |" in capsys.readouterr().out


def test_overhead_benchmark_times_methods_that_own_their_step(tmp_path, monkeypatch):
    argv = ["overhead.py", "--variants", "seqlora", "--batch", "2", "--rounds", "1", "--steps",
            "1", "--warmup", "0", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(BENCH), run_name="__main__")
    record = json.loads((tmp_path / "small-cpu-b2-seqlora.json").read_text())
    assert record["variants"] == "seqlora"
    assert [r["method"] for r in record["rows"]] == ["finetune", "seqlora", "continual-alternating"]
    assert all(r["ratio"] > 0 for r in record["rows"])


THROUGHPUT = BENCH.parent / "throughput.py"


def test_throughput_benchmark_compares_the_two_input_paths(tmp_path, monkeypatch, capsys):
    argv = ["throughput.py", "--quick", "--per-class", "6", "--batch", "4", "--steps", "2",
            "--rounds", "1", "--out", str(tmp_path), "--data", str(tmp_path / "data")]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(THROUGHPUT), run_name="__main__")
    record = json.loads((tmp_path / "throughput-cpu-quick.json").read_text())
    paths = {(r["row"], r["path"]) for r in record["table"]}
    assert paths == {(row, p) for row in ("input only, per core", "training")
                     for p in ("pil", "device")}
    assert all(r["median"] > 0 for r in record["table"])
    assert record["images"] == 60 and 30 < record["mean_jpeg_kb"] < 60
    assert len(list((tmp_path / "data" / "imagenet-r").iterdir())) == 10
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"pipeline speedup: [\d.]+x \(new \d+ img/s vs old \d+ img/s, cpu\)",
                        last)
