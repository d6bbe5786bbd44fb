"""The notebooks' figures: what a reader needs to decode them is on them."""

import matplotlib

matplotlib.use("Agg")

from janus.reporting import plots  # noqa: E402


def _row(method: str, paper: bool) -> dict[str, object]:
    row: dict[str, object] = {"method": method}
    for m, v in (("acc", 10.0), ("maa", 20.0), ("bwt", -5.0)):
        row[m], row[f"{m}_std"] = v, 1.0
    if paper:  # papers report ACC and MAA, not BWT
        row.update(paper_acc=70.0, paper_acc_std=0.5, paper_maa=80.0, paper_maa_std=0.5)
    return row


def test_metric_bars_legend_names_ours_and_paper_although_bwt_has_no_paper_bar():
    fig = plots.metric_bars([_row("a", True), _row("b", False)], "t")
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels == ["ours", "paper"]


def test_metric_bars_without_paper_values_has_only_ours(tmp_path):
    fig = plots.metric_bars([_row("a", False)], "t")
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels == ["ours"]
    saved = plots.save(fig, tmp_path / "f")
    assert [p.suffix for p in saved] == [".png", ".pdf"] and all(p.stat().st_size for p in saved)
