"""The `janus` command line, as a user calls it."""

import json
import subprocess
import sys

from janus.cli import main
from janus.core.results import machine_of


def test_list_names_methods_datasets_profiles(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("finetune", "synthetic", "mini-imagenet-32", "imagenet-r", "smoke", "paper"):
        assert name in out


def test_run_show_summarize(tmp_path, capsys):
    args = ["run", "--profile", "smoke", "--method", "finetune", "--seed", "1", "--quiet",
            "--out", str(tmp_path), "--tasks", "2", "--set", "train.max_steps_per_task=2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    record = tmp_path / "smoke" / "synthetic-T2" / "finetune" / "seed1" / "record.json"
    assert f"record: {record}" in out
    m = json.loads(record.read_text())["metrics"]
    assert f"ACC {m['acc']:.2f}  MAA {m['maa']:.2f}  BWT {m['bwt']:.2f}" in out
    assert main(["show", str(record.parent)]) == 0
    shown = capsys.readouterr().out
    assert f"BWT {m['bwt']:.2f}" in shown
    where = machine_of(json.loads(record.read_text()))
    assert f"on cpu ({where})" in shown  # where it was timed
    assert main(["summarize", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{m['acc']:7.2f} ± 0.00" in out
    tasks = json.loads(record.read_text())["tasks"]
    wall, cpu = (sum(t[k] for t in tasks) for k in ("train_seconds", "train_cpu_seconds"))
    assert out.rstrip().endswith(f"{wall:13.0f} {cpu:11.0f}")
    assert main(["summarize", str(tmp_path), "--markdown"]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    assert row == (f"| smoke | synthetic | 2 | finetune | 1 | {m['acc']:.2f} ± 0.00 | "
                   f"{m['maa']:.2f} ± 0.00 | {m['bwt']:.2f} ± 0.00 | {wall:.0f} | {cpu:.0f} | "
                   f"{where} |")


def test_user_errors_exit_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "janus.cli", "run", "--method", "nope", "--out", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("janus: error: unknown method 'nope'; known: ")
    assert "finetune" in proc.stderr
    assert "Traceback" not in proc.stderr
