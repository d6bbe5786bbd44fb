"""The notebooks' list parameters: papermill's -p string form and -y lists both work (issue 24,
item 1), and unknown names stop a notebook before its first run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from janus.core.errors import ConfigError
from janus.reporting.notebook import as_list, check_names, unknown_parameters

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value, kind, expected", [
    ("[0, 1, 2, 3, 4]", int, [0, 1, 2, 3, 4]),
    ("['finetune', 'janus-lora']", str, ["finetune", "janus-lora"]),
    ("finetune,janus-lora", str, ["finetune", "janus-lora"]),
    ("finetune", str, ["finetune"]),
    (["finetune"], str, ["finetune"]),
    ((0, 1), int, [0, 1]),
    (3, int, [3]),
    ("0, 1", int, [0, 1]),
    ("[0.5, 1]", (float, int), [0.5, 1]),
    ("[]", int, []),
])
def test_as_list_reads_lists_and_their_string_forms(value, kind, expected):
    assert as_list(value, "p", kind) == expected


def test_as_list_keeps_overrides_whole_and_none_where_optional():
    assert as_list("data.mean=(0.5, 0.5, 0.5)", "overrides", split=False) == [
        "data.mean=(0.5, 0.5, 0.5)"]
    assert as_list("['train.epochs=3', 'train.lr=0.01']", "overrides", split=False) == [
        "train.epochs=3", "train.lr=0.01"]
    assert as_list("None", "methods", optional=True) is None
    assert as_list(None, "methods", optional=True) is None
    with pytest.raises(ConfigError, match="parameter seeds needs a list"):
        as_list(None, "seeds", int)


@pytest.mark.parametrize("value", ["[0, 'a']", "[True]", "[0.5]", "zero"])
def test_as_list_refuses_items_of_the_wrong_kind_naming_the_parameter(value):
    with pytest.raises(ConfigError, match=r"parameter seeds=.* is not a int"):
        as_list(value, "seeds", int)


def test_check_names_lists_every_unknown_name():
    check_names(["finetune"], ["finetune", "janus-lora"], "method")
    check_names(None, ["finetune"], "method")
    with pytest.raises(ConfigError, match=r"unknown method 'fintune', 'x'; known: finetune"):
        check_names(["fintune", "finetune", "x"], ["finetune"], "method")


def readme_table2_parameters() -> list[str]:
    """The README's documented ``-p`` parameters of Table 2, as a shell would split them."""
    import shlex

    text = (ROOT / "README.md").read_text()
    start = text.index("Parameters: `-p profile paper")
    line = text[start:text.index("`", text.index("`", start) + 1)].split("`", 1)[1]
    return shlex.split(line.replace("\n", " "))


def papermill(notebook: str, out: Path, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "papermill", str(ROOT / "reproductions" / notebook), str(out),
         "--cwd", str(ROOT), *args], capture_output=True, text=True, timeout=900)


def test_the_readmes_table2_command_runs_with_string_lists(tmp_path):
    args = readme_table2_parameters()
    assert args[:2] == ["-p", "profile"] and "-p" in args and "\"" not in " ".join(args)
    values = dict(zip(args[1::2], args[2::2], strict=True))
    assert values["seeds"] == "[0, 1, 2, 3, 4]" and values["methods"] == "['finetune']"
    # the same forms on the smoke profile: T = 2, two seeds of the string form, few steps
    smoke = ["-p", "profile", "smoke", "-p", "tasks", "2", "-p", "seeds", "[0, 1]",
             "-p", "methods", values["methods"].replace("]", ", 'janus-lora']"),
             "-p", "output_dir", str(tmp_path / "runs"),
             "-p", "overrides", "['train.max_steps_per_task=2']"]
    done = papermill("table2.ipynb", tmp_path / "t2.ipynb", smoke)
    assert done.returncode == 0, done.stderr[-3000:]
    records = sorted(p.relative_to(tmp_path / "runs") for p in (tmp_path / "runs").rglob(
        "record.json"))
    assert [str(p) for p in records] == [
        f"smoke/synthetic-T2/{m}/seed{s}/record.json" for m in ("finetune", "janus-lora")
        for s in (0, 1)]
    assert json.loads((tmp_path / "runs" / records[0]).read_text())["config"]["train"][
        "max_steps_per_task"] == 2


def test_a_misspelled_method_stops_the_notebook_before_any_run(tmp_path):
    done = papermill("table2.ipynb", tmp_path / "t2.ipynb", [
        "-p", "profile", "smoke", "-p", "seeds", "[0]", "-p", "methods",
        "['finetune', 'janus-lroa']", "-p", "output_dir", str(tmp_path / "runs")])
    assert done.returncode != 0
    assert re.search(r"unknown method 'janus-lroa'; known: ", done.stderr)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("record.json"))


def test_unknown_parameters_are_those_the_injected_cell_adds():
    """Papermill's injected cell follows the parameters cell (IPython's ``In``); names it sets
    that the parameters cell does not are misspellings."""
    params = 'profile = "smoke"  # smoke | mini\nseeds: list = [0, 1]\nx = y = 1\n'
    injected = '# Parameters\nseedz = "[0]"\nprofile = "mini"\n'
    assert unknown_parameters(["", params, injected, "check_parameters()"]) == ["seedz"]
    assert unknown_parameters(["", params, '# Parameters\nseeds = [0]\n']) == []
    assert unknown_parameters(["", params]) == []  # not a papermill run


def test_a_misspelled_parameter_stops_the_notebook_before_anything_runs(tmp_path):
    """``-p seedz`` used to run the defaults with exit 0 (papermill only warns)."""
    done = papermill("table2.ipynb", tmp_path / "t2.ipynb", [
        "-p", "profile", "smoke", "-p", "seedz", "[0]", "-p", "output_dir",
        str(tmp_path / "runs")])
    assert done.returncode != 0
    assert re.search(r"unknown notebook parameter 'seedz' \(misspelled\?\); this notebook "
                     r"takes: .*seeds", done.stderr)
    assert not (tmp_path / "runs").exists()
