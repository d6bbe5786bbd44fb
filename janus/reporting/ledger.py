"""The reproducibility ledger, ``REPRODUCIBILITY.md``, and the README's generated blocks, made
from the code and the committed records only: the provenance registry
(:mod:`janus.reporting.provenance`), the transcribed paper tables
(``janus/reporting/paper_numbers/*.csv``), the paper-table registry below and the run
records under ``results/``. ``janus ledger`` writes them; ``janus ledger --check`` (and
``tests/test_ledger.py``) names every committed copy that differs from a regeneration."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.core.errors import JanusError
from janus.core.results import find_records, summarize
from janus.reporting.provenance import PROVENANCE, Provenance
from janus.reporting.tables import paper_numbers

LEDGER = "REPRODUCIBILITY.md"
README = "README.md"
MINI_RECORDS = "results/mini"
"""The committed ``mini`` evidence (other folders under ``results/`` hold measurements, e.g.
timing runs, that must not be averaged with it)."""
PAPER_RECORDS = "results/paper"
"""Where ``paper`` profile runs are filed when they exist (none are committed yet)."""
MINI = ("mini", "mini-imagenet-32", 10)
"""(profile, data set, T) of the ``mini`` evidence."""
BACKBONE_RECORD = "janus/weights/mini-vit-p8-e30.json"
METRICS = ("acc", "maa", "bwt")
PAPER_DATA = "/path/to/data"
"""The data root written into the paper commands (the reader's own)."""


@dataclass(frozen=True)
class PaperTable:
    """One paper table or figure and how it is regenerated.

    ``numbers``: its transcribed CSV (:func:`paper_numbers`), None for a figure;
    ``runs``: one papermill parameter string per ``paper`` run (e.g. one per T);
    ``mini``: the committed rendering at ``mini`` scale (``mini_note``: what it is not);
    ``rendered``: a committed rendering of the ``paper`` command itself (settings that need no
    data); ``stand_in``: the paper rows (column values) that the ``mini`` records stand in for;
    ``dataset``: our data set name of the paper's rows where the CSV has no ``dataset``
    column."""

    key: str
    title: str
    notebook: str
    setting: str
    numbers: str | None = None
    runs: tuple[str, ...] = ("",)
    mini: str | None = None
    stand_in: tuple[tuple[str, Any], ...] = ()
    dataset: str | None = "imagenet-r"
    spread: str = "std"
    mini_note: str = ""
    rendered: str | None = None


FIVE_SEEDS = '-y "seeds: [0, 1, 2, 3, 4]"'
ALL_METHODS = '-y "methods: null"'
PAPER_TABLES: tuple[PaperTable, ...] = (
    PaperTable("table1", "Janus-LoRA Table 1", "reproductions/table1.ipynb",
               "OE / GR / DML ablation, ImageNet-R, T = 10, 5 runs", "janus_lora_table1",
               (FIVE_SEEDS,), "results/mini/table1-mini-T10.ipynb", (("tasks", 10),)),
    PaperTable("table2", "Janus-LoRA Table 2", "reproductions/table2.ipynb",
               "ImageNet-R, T = 5 / 10 / 20, 5 runs", "janus_lora_table2",
               tuple(f"-p tasks {t} {FIVE_SEEDS}" for t in (5, 10, 20)),
               "results/mini/table2-mini-T10.ipynb", (("tasks", 10),)),
    PaperTable("table3", "Janus-LoRA Table 3", "reproductions/table3.ipynb",
               "CIFAR-100 and ImageNet-100 (T = 10), DomainNet (T = 5)", "janus_lora_table3",
               (f"{ALL_METHODS} {FIVE_SEEDS}",), "results/mini/table3-mini.ipynb",
               (("dataset", "imagenet-100"),), dataset=None),
    PaperTable("table4", "Janus-LoRA Table 4", "reproductions/table4.ipynb",
               "ImageNet-R, T = 10, SAM and DINO ViT-B/16 (paper profile only)",
               "janus_lora_table4", (f"{ALL_METHODS} {FIVE_SEEDS}",),
               "results/mini/table4-mini-T10.ipynb",
               mini_note="; our backbone stands in for SAM and DINO there: a code-path check, "
                         "not evidence for the table"),
    PaperTable("table5", "Janus-LoRA Table 5", "reproductions/table5.ipynb",
               "OE vs GPM basis, one epoch per task, ImageNet-R and CIFAR-100",
               "janus_lora_table5",
               (FIVE_SEEDS, f"""{FIVE_SEEDS} -y 'overrides: ["data.dataset=cifar100"]'"""),
               "results/mini/table5-mini-T10.ipynb", (("dataset", "imagenet-r"),), dataset=None),
    PaperTable("sdlora_table2", "SD-LoRA Table 2", "reproductions/sdlora_table2.ipynb",
               "ImageNet-R, N = 5 / 10 / 20, 5 runs, ± standard error", "sdlora_table2",
               (f'-y "task_counts: [5, 10, 20]" {FIVE_SEEDS}',),
               "results/mini/sdlora_table2-mini-T10.ipynb", (("tasks", 10),), spread="se"),
    PaperTable("sdlora_table4", "SD-LoRA Table 4", "reproductions/sdlora_table4.ipynb",
               "training strategies, ImageNet-R, N = 5 / 10, 5 runs, ± standard error",
               "sdlora_table4", (FIVE_SEEDS,), "results/mini/sdlora_table4-mini-T10.ipynb",
               (("tasks", 10),), spread="se"),
    PaperTable("fig2", "Janus-LoRA Fig. 2", "reproductions/fig2.ipynb",
               "null-space violation per block", mini="results/mini/fig2-mini-T10.ipynb"),
    PaperTable("fig4", "Janus-LoRA Fig. 4", "reproductions/fig4.ipynb",
               "OE rank k and margin m sweeps", mini="results/mini/fig4-mini-T10.ipynb"),
    PaperTable("fig5", "Janus-LoRA Fig. 5", "reproductions/fig5.ipynb",
               "average accuracy after each task", mini="results/mini/fig5-mini-T10.ipynb"),
    PaperTable("fig6", "Janus-LoRA Fig. 6", "reproductions/fig6.ipynb",
               "LoRA-GPM and LoRA-DRS with and without GR",
               mini="results/mini/fig6-mini-T10.ipynb"),
    PaperTable("fig7", "Janus-LoRA Fig. 7b", "reproductions/fig7.ipynb",
               "cosine of new samples to old prototypes", mini="results/mini/fig7-mini-T10.ipynb"),
    PaperTable("fig8", "Janus-LoRA Fig. 8", "reproductions/fig8.ipynb", "lambda_DML sweep",
               mini="results/mini/fig8-mini-T10.ipynb"),
    PaperTable("fig9_11", "Janus-LoRA Fig. 9-11", "reproductions/fig9_11.ipynb",
               "time per task, cumulative time, throughput (5 epochs per task)",
               runs=(f"""{FIVE_SEEDS} -y 'overrides: ["train.epochs=5"]'""",),
               mini="results/mini/fig9_11-mini-T10.ipynb"),
    PaperTable("seqlora_linear", "SeqLoRA Example 1, App. C.2 / E",
               "reproductions/seqlora_linear.ipynb", "linear model, no data, seconds",
               rendered="results/paper/seqlora_linear.ipynb", dataset=None),
)
"""Every notebook of ``reproductions/``, in the order of the ledger."""


def paper_command(table: PaperTable, params: str, index: int) -> str:
    """The papermill command of one ``paper`` run of ``table``."""
    stem = Path(table.notebook).stem
    suffix = f"-{index + 1}" if len(table.runs) > 1 else ""
    if table.key == "seqlora_linear":  # no profile, no data
        return f"papermill {table.notebook} results/paper/{stem}.ipynb"
    line = (f"papermill {table.notebook} results/paper/{stem}{suffix}.ipynb -p profile paper "
            f"-p output_dir results -p data_root {PAPER_DATA}")
    return f"{line} {params}".rstrip()


# ------------------------------------------------------------------ numbers
def our_rows(root: Path) -> dict[tuple[str, str, int, str], dict[str, Any]]:
    """Summary rows (:func:`summarize`) of the committed ``mini`` and ``paper`` records, keyed
    by (profile, data set, T, label)."""
    rows = {}
    for folder in (MINI_RECORDS, PAPER_RECORDS):
        if (root / folder).is_dir():
            for row in summarize(find_records(root / folder)):
                rows[(row["profile"], row["dataset"], row["tasks"], row["method"])] = row
    return rows


def fmt(value: float | None, spread: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if spread is None else f"{value:.2f} ± {spread:.2f}"


def ours_cell(row: dict[str, Any] | None, metric: str, spread: str) -> str:
    """``mean ± std`` (or ``± s.e.``) over the row's seeds, ``-`` when there is no row."""
    if row is None:
        return "-"
    s = row[f"{metric}_std"] / (len(row["seeds"]) ** 0.5 if spread == "se" else 1)
    return fmt(row[metric], s)


def matched(table: PaperTable, paper: dict[str, Any], ours: dict) -> dict[str, Any] | None:
    """Our row for one paper row: a ``paper`` profile run of the same setting, else the
    ``mini`` run that stands in for it (None when neither exists)."""
    dataset = paper.get("dataset") or table.dataset
    if table.key != "table4":  # Table 4's rows differ by backbone, which records do not key
        row = ours.get(("paper", dataset, paper.get("tasks") or 10, paper["method"]))
        if row is not None:
            return row
    if table.stand_in and all(paper.get(k) == v for k, v in table.stand_in):
        return ours.get((*MINI, paper["method"]))
    return None


def comparison_table(table: PaperTable, ours: dict) -> str:
    """Markdown: each transcribed row of ``table``, reported beside ours."""
    rows = paper_numbers(table.numbers)
    metrics = [m for m in METRICS if m in rows[0]]
    extra = [k for k in ("dataset", "backbone", "tasks") if k in rows[0]]
    head = ["paper row", "label", *extra]
    for m in metrics:
        head += [f"reported {m.upper()}", f"ours {m.upper()}"]
    lines = ["| " + " | ".join([*head, "ours from"]) + " |", "|" + "---|" * (len(head) + 1)]
    for p in rows:
        row = matched(table, p, ours)
        cells = [p["paper_name"], f"`{p['method']}`", *(str(p[k]) for k in extra)]
        for m in metrics:
            cells += [fmt(p[m], p.get(f"{m}_{table.spread}")), ours_cell(row, m, table.spread)]
        source = "-" if row is None else f"{row['profile']}, {row['dataset']}, " \
                                        f"{len(row['seeds'])} seeds"
        lines.append("| " + " | ".join([*cells, source]) + " |")
    return "\n".join(lines)


def reported_for(method: str) -> tuple[dict[str, Any], PaperTable] | None:
    """The paper row of ``method`` in a setting the ``mini`` records stand in for: Janus-LoRA's
    main table (Table 2) first, then the others in registry order."""
    for table in sorted(PAPER_TABLES, key=lambda t: t.key != "table2"):
        if table.numbers and table.stand_in:
            for p in paper_numbers(table.numbers):
                if p["method"] == method and all(p.get(k) == v for k, v in table.stand_in):
                    return p, table
    return None


def overview_rows(ours: dict) -> list[list[str]]:
    """Per registered method: ours (``mini``) ACC / MAA / BWT and the reported ACC."""
    out = []
    for prov in PROVENANCE:
        label = prov.method
        row = ours.get((*MINI, label))
        if row is None and (*MINI, f"{label}-e1") in ours:  # run at one epoch per task only
            label = f"{label}-e1"
            row = ours[(*MINI, label)]
        found = reported_for(prov.method)
        if found:
            p, table = found
            reported = f"{fmt(p['acc'])} ({table.title}, T = {p.get('tasks') or 10})"
        else:
            reported = "-"
        name = f"`{prov.method}`" + (f" (as `{label}`)" if label != prov.method else "")
        out.append([name, *(ours_cell(row, m, "std") for m in METRICS),
                    reported])
    return out


# ------------------------------------------------------------------ documents
def method_section(prov: Provenance) -> str:
    """The ledger's section of one method."""
    lines = [f"### `{prov.method}`", "", f"{prov.paper}. Details: [`{prov.doc}`]({prov.doc}).",
             ""]
    if prov.official:
        lines += ["Official code compared with:", ""] + [f"- {o}" for o in prov.official]
    else:
        lines.append(f"Official code compared with: none. {prov.note}".rstrip())
    lines += ["", "| check | held by |", "|---|---|"]
    lines += [f"| {c.what} | `{c.test}` |" for c in prov.checks]
    if prov.deviations:
        lines += ["", "| known deviation | reason | switch |", "|---|---|---|"]
        lines += [f"| {d.what} | {d.reason} | {f'`{d.switch}`' if d.switch else 'none'} |"
                  for d in prov.deviations]
    return "\n".join(lines)


def table_section(table: PaperTable, ours: dict) -> str:
    """The ledger's section of one paper table or figure: commands and numbers."""
    lines = [f"### {table.title}: {table.setting}", "", "```bash"]
    lines += [paper_command(table, params, i) for i, params in enumerate(table.runs)]
    lines.append("```")
    if table.mini:
        lines += ["", f"At `mini` scale: [`{table.mini}`]({table.mini}) (its command: "
                      f"`results/README.md`){table.mini_note}."]
    if table.rendered:
        lines += ["", f"Rendered by this command: [`{table.rendered}`]({table.rendered})."]
    if table.numbers:
        lines += ["", comparison_table(table, ours)]
    return "\n".join(lines)


HEADER = """# Reproducibility ledger

Generated by `janus ledger` from `janus/reporting/provenance/` (official code, checks,
deviations), `janus/reporting/ledger.py` (paper tables and their commands),
`janus/reporting/paper_numbers/*.csv` (the reported numbers) and the committed records under
`results/mini/` and `results/paper/`. Do not edit it by hand: `janus ledger --check` (run by
`tests/test_ledger.py`) fails when this file or the README's generated block differs from a
regeneration.

"Ours" is mean ± std over seeds (± standard error where the paper gives one). It comes from
`paper` profile records when they exist; none are committed yet, so every figure here is the
`mini` stand-in: mini-ImageNet-32 in 10 tasks, a small ViT we pre-trained, 3 seeds. It is
evidence about the direction of each effect, not about the paper's absolute numbers."""


def ledger_markdown(root: Path, ours: dict | None = None) -> str:
    """The whole of ``REPRODUCIBILITY.md`` (``ours``: :func:`our_rows`, read when not given)."""
    ours = our_rows(root) if ours is None else ours
    parts = [HEADER, "", "## Methods", "", overview_table(ours), ""]
    parts += [method_section(p) + "\n" for p in PROVENANCE]
    parts += ["## Paper tables and figures", "",
              f"Each command regenerates one `paper` run set (`{PAPER_DATA}` is your data root; "
              "finished runs are reused).", ""]
    parts += [table_section(t, ours) + "\n" for t in PAPER_TABLES]
    return "\n".join(parts).rstrip() + "\n"


def overview_table(ours: dict) -> str:
    head = "| method | ours ACC | ours MAA | ours BWT | reported ACC |\n|---|---|---|---|---|"
    return head + "\n" + "\n".join("| " + " | ".join(r) + " |" for r in overview_rows(ours))


def backbone_line(root: Path) -> str:
    record = json.loads((root / BACKBONE_RECORD).read_text())
    return (f"The `mini` backbone (`{BACKBONE_RECORD}`): {record['config']['epochs']} epochs of "
            f"pre-training, {record['final_test_top1']:.2f}% test top-1 on its "
            f"{record['num_classes']} pre-training classes.")


def readme_block(root: Path, ours: dict | None = None) -> str:
    """The README's generated block: the ``mini`` results per method and the backbone."""
    ours = our_rows(root) if ours is None else ours
    seeds = sorted({len(r["seeds"]) for k, r in ours.items() if k[:3] == MINI})
    return "\n".join([
        f"`mini` results (mini-ImageNet-32, T = 10, {' or '.join(map(str, seeds))} seeds, "
        f"mean ± std; per method in `{LEDGER}`):", "", overview_table(ours), "",
        backbone_line(root)])


BEGIN, END = "<!-- BEGIN GENERATED by `janus ledger` -->", "<!-- END GENERATED -->"
BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
QUOTED = re.compile(r"(?<![\w.])(?:\d+\.\d{2} ?%|[-−]\d+\.\d{2}|\d{2,}\.\d{2})(?![\w.])")
"""A result-like figure (two decimals and a sign, two integer digits or a percent sign): every
such number in the README lies in a generated block. Settings such as ``0.95`` do not count."""


def readme_with_block(text: str, block: str) -> str:
    """``text`` with its generated block replaced by ``block``."""
    if not BLOCK.search(text):
        raise JanusError(f"{README} has no generated block: put the lines {BEGIN} and {END} "
                         "where the mini results should go")
    return BLOCK.sub(lambda _: f"{BEGIN}\n{block}\n{END}", text)


def hand_written_figures(text: str) -> list[str]:
    """Two-decimal figures of ``text`` outside its generated blocks."""
    return QUOTED.findall(BLOCK.sub("", text))


def write(root: Path) -> list[Path]:
    """Regenerate ``REPRODUCIBILITY.md`` and the README block under ``root``."""
    ours = our_rows(root)  # the records are read once for both documents
    (root / LEDGER).write_text(ledger_markdown(root, ours), encoding="utf-8")
    readme = root / README
    readme.write_text(readme_with_block(readme.read_text(encoding="utf-8"),
                                        readme_block(root, ours)), encoding="utf-8")
    return [root / LEDGER, readme]


def stale(root: Path) -> list[str]:
    """What is out of date under ``root``: one line per committed copy that differs from its
    regeneration, or per README figure outside a generated block (empty when all is current)."""
    problems = []
    ours = our_rows(root)
    ledger = root / LEDGER
    if not ledger.exists() or ledger.read_text(encoding="utf-8") != ledger_markdown(root, ours):
        problems.append(f"{LEDGER} differs from its regeneration: run `janus ledger`")
    text = (root / README).read_text(encoding="utf-8")
    if readme_with_block(text, readme_block(root, ours)) != text:
        problems.append(f"{README}'s generated block differs from its regeneration: run "
                        "`janus ledger`")
    for figure in hand_written_figures(text):
        problems.append(f"{README} quotes {figure} outside the generated block: move it into "
                        "the block (janus/reporting/ledger.py) or drop it")
    return problems
