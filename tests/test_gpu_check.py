"""The GPU acceptance script, scaled down on the CPU (``--device cpu --quick``): every
registered method at the `paper` shapes (ViT-B/16, 224 px, 12 heads, rank 10) in bf16
autocast for 2 tasks, the throughput rows and the determinism checks, so that the script
cannot rot before a GPU runs it (timings are not asserted: see benchmarks/README.md)."""

import json
import runpy
import sys
from pathlib import Path

from janus.methods import METHODS

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_quick_passes_on_the_cpu(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--device", "cpu", "--quick",
                                      "--out", str(tmp_path)])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    result = json.loads((tmp_path / "gpu-check-cpu-quick.json").read_text())
    assert result["verdict"] == "PASS"
    rows = {r["method"]: r for r in result["methods"]}
    assert set(rows) == set(METHODS)
    for method, r in rows.items():
        assert r["status"] == "complete" and r["amp"] == "bf16" and r["finite"], method
        assert r["tasks"] == (1 if METHODS[method].single_task else 2)
    settings = {(r["method"], r["mode"], r["deterministic"]) for r in result["throughput"]}
    assert settings == {(m, mode, det) for m in ("finetune", "janus-lora")
                        for mode, det in (("eager", True), ("compile", True), ("eager", False))}
    assert all(r["images_per_second"] > 0 and r["step_time_ratio"] > 0
               for r in result["throughput"])
    det = result["determinism"]
    assert det["same_seed_twice_identical"] and det["resumed_equals_uninterrupted"]
    table = (tmp_path / "gpu-check-cpu-quick.md").read_text()
    assert "| janus-lora | compile | True | 8 |" in table
    assert capsys.readouterr().out.strip().splitlines()[-1] == "gpu check: PASS"
