"""The reproducibility ledger: the committed REPRODUCIBILITY.md and README block regenerate
exactly from the committed records, a changed record or a hand-written README figure is
caught, and every check, switch, method and notebook the ledger names exists."""

import json
import re
import shutil
from pathlib import Path

import pytest

from janus.cli import main
from janus.core.config import apply_overrides, profile
from janus.methods import METHODS
from janus.reporting import ledger
from janus.reporting.provenance import PROVENANCE
from janus.reporting.tables import paper_numbers

ROOT = Path(__file__).resolve().parents[1]


def test_committed_ledger_and_readme_block_regenerate_from_the_committed_records():
    assert ledger.stale(ROOT) == []


@pytest.fixture
def copy(tmp_path):
    """The ledger's inputs (README, ledger, mini records, backbone record) in a scratch root."""
    for name in (ledger.README, ledger.LEDGER, ledger.BACKBONE_RECORD):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / ledger.MINI_RECORDS, tmp_path / ledger.MINI_RECORDS)
    return tmp_path


def test_a_changed_record_or_a_hand_written_figure_makes_the_ledger_stale(copy, capsys):
    assert ledger.stale(copy) == [] and main(["ledger", "--check", "--root", str(copy)]) == 0
    path = copy / ledger.MINI_RECORDS / "mini-imagenet-32-T10/janus-lora/seed0/record.json"
    record = json.loads(path.read_text())
    record["accuracy_matrix"][-1][0] += 3.0  # ACC of seed 0 up by 0.3
    path.write_text(json.dumps(record))
    problems = ledger.stale(copy)
    assert [p.split()[0] for p in problems] == [ledger.LEDGER, f"{ledger.README}'s"]
    assert main(["ledger", "--check", "--root", str(copy)]) == 1
    assert "run `janus ledger`" in capsys.readouterr().err
    assert main(["ledger", "--root", str(copy)]) == 0
    assert ledger.stale(copy) == []
    text = (copy / ledger.LEDGER).read_text()
    assert re.search(r"\| `janus-lora` \| 17\.84 ± ", text)  # 17.74 before, as committed
    readme = copy / ledger.README
    readme.write_text(readme.read_text() + "\nJanus-LoRA reaches 17.74% here.\n")
    assert ledger.stale(copy) == [f"{ledger.README} quotes 17.74% outside the generated block: "
                                  "move it into the block (janus/reporting/ledger.py) or drop it"]


def test_a_wrong_root_or_a_readme_without_its_block_is_one_clear_error(copy, capsys):
    assert main(["ledger", "--check", "--root", str(copy / "results")]) == 2
    assert "is not the repository root" in capsys.readouterr().err
    readme = copy / ledger.README
    readme.write_text(ledger.BLOCK.sub("", readme.read_text()))
    assert main(["ledger", "--root", str(copy)]) == 2
    assert "has no generated block" in capsys.readouterr().err


def test_result_figures_are_told_from_settings():
    text = "lambda_b 0.95, lr 5e-4, ACC 17.74 ± 0.37, BWT −14.24, 30.17% top-1, torch 2.14.1"
    assert ledger.hand_written_figures(text) == ["17.74", "−14.24", "30.17%"]


def test_every_registered_method_and_reproduction_notebook_has_one_entry():
    assert [p.method for p in PROVENANCE] == sorted(METHODS)
    notebooks = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "reproductions").glob("*.ipynb"))
    assert sorted(t.notebook for t in ledger.PAPER_TABLES) == notebooks
    for table in ledger.PAPER_TABLES:
        assert table.mini is None or (ROOT / table.mini).is_file(), table.mini
        if table.numbers:
            assert paper_numbers(table.numbers)


def test_every_check_names_an_existing_test_and_every_doc_exists():
    for prov in PROVENANCE:
        assert (ROOT / prov.doc).is_file(), prov.doc
        assert prov.checks, f"{prov.method} has no check"
        for check in prov.checks:
            file, name = check.test.split("::")
            assert re.search(rf"^def {name}\(", (ROOT / file).read_text(), re.M), check.test


def test_every_deviation_switch_is_a_valid_override_of_its_method():
    for prov in PROVENANCE:
        for dev in prov.deviations:
            if dev.switch:
                apply_overrides(profile("smoke"), [f"method.name={prov.method}",
                                                   *dev.switch.split()])
