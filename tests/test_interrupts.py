"""Ctrl-C (issue 36 item 2), with a real SIGINT: ``janus run`` and a local ``janus sweep`` end
in one message (what was finished and kept, how to continue), not a KeyboardInterrupt
traceback; a stopped sweep leaves no worker and no claim behind."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUN = ["--profile", "smoke", "--set", "data.num_tasks=4", "--set", "train.epochs=4"]


def janus(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "janus.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def wait_for(condition, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while not condition():
        if time.time() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


def finished_tasks(record: Path) -> int:
    try:
        return len(json.loads(record.read_text())["tasks"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_ctrl_c_in_janus_run_says_what_is_kept_and_how_to_resume(tmp_path):
    out = tmp_path / "runs"
    proc = janus("run", *RUN, "--out", str(out), "--quiet")
    record = out / "smoke" / "synthetic-T4" / "finetune" / "seed0" / "record.json"
    wait_for(lambda: finished_tasks(record) >= 1 or proc.poll() is not None)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("janus: interrupted: "), lines
    assert f"task(s) finished and kept in {record.parent}" in lines[0]
    command = lines[0].split("continue with: ", 1)[1]
    args = shlex.split(command)
    assert args[:2] == ["janus", "run"] and args[-1] == "--resume"
    done = subprocess.run([sys.executable, "-m", "janus.cli", *args[1:]], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(record.read_text())["status"] == "complete"


def test_ctrl_c_in_a_local_sweep_stops_the_workers_and_releases_the_claims(tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "runs"
    proc = janus("sweep", "--methods", "finetune", "janus-lora", "--seeds", "0", *RUN[:1],
                 "smoke", "--set", "data.num_tasks=4", "--set", "train.epochs=20",
                 "--executor", "local", "--workers", "1", "--out", str(out), "--quiet")
    claim = out / "smoke" / "synthetic-T4" / "finetune" / "seed0" / ".claim"

    def worker_started() -> bool:
        try:
            return "worker" in json.loads(claim.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return proc.poll() is not None

    wait_for(worker_started)
    assert proc.poll() is None, proc.communicate()
    worker = json.loads(claim.read_text())["worker"]["pid"]
    proc.send_signal(signal.SIGINT)  # the driver only, as a scheduler's kill would
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    line = [x for x in stderr.splitlines() if x.startswith("janus: ")]
    assert line == [line[0]] and line[0].startswith("janus: interrupted: 1 running run(s) "
                                                    "stopped (finetune seed 0)"), stderr
    assert "1 run(s) not started" in line[0] and "claim is released" in line[0]
    assert not list(out.rglob(".claim"))
    wait_for(lambda: not Path(f"/proc/{worker}").exists()
             or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2], timeout=30)
