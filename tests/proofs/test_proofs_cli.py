"""``python -m proofs``: the table, the exit codes, and a failure on an injected bad formula."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from janus.core import geometry as geo
from proofs import load_all
from proofs.__main__ import main
from proofs.core import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def test_module_run_passes_and_lists_every_claim():
    proc = subprocess.run(
        [sys.executable, "-m", "proofs"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    load_all()
    for cid in REGISTRY:
        assert cid in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines()]
    verdicts = [row[-1] for row in rows if row and row[0] in REGISTRY]
    assert len(verdicts) == len(REGISTRY) and "FAIL" not in verdicts
    assert "FINDING" in verdicts


def test_injected_wrong_formula_exits_nonzero(monkeypatch, capsys):
    monkeypatch.setattr(geo, "qr_retraction", lambda V: torch.linalg.qr(V).Q)  # no sign fix
    assert main(["--only", "janus.stiefel"]) == 1
    out = capsys.readouterr().out
    assert "janus.stiefel.qr" in out and "FAIL" in out


def test_only_selects_by_prefix(capsys):
    assert main(["--only", "janus.core.metrics"]) == 0
    out = capsys.readouterr().out
    assert "janus.core.metrics.hand" in out and "janus.thm31" not in out
    assert main(["--only", "no.such.claim"]) == 2
