"""The shared set-up of the math walkthroughs in ``notebooks/``: one thread, every claim
loaded, a seeded float64 generator, and a call that runs and prints a group of claims."""

from __future__ import annotations

from collections.abc import Callable

import torch

from proofs import load_all
from proofs.core import format_table, run_all, select


def start(seed: int = 0) -> tuple[torch.Generator, Callable[..., torch.Tensor]]:
    """Prepare a walkthrough: its generator, seeded with ``seed``, and ``randn(*shape)``, float64
    normal draws from it, so every printed number is the same on every run (tiny matrices: one
    thread is fastest and deterministic)."""
    torch.set_num_threads(1)
    load_all()
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    return g, randn


def show(*prefixes: str) -> None:
    """Run the claims whose names start with one of ``prefixes``, print their table, and stop
    the notebook if any fails."""
    results = run_all([c for p in prefixes for c in select(p)])
    print(format_table(results))
    failed = [r for r in results if r.verdict == "FAIL"]
    if failed:
        raise AssertionError(f"{len(failed)} claim(s) failed: see the table above")


def tally(prefix: str) -> dict[str, int]:
    """Run every claim whose name starts with ``prefix`` and print how many pass, are findings
    and fail; stop the notebook if any fails."""
    verdicts = [r.verdict for r in run_all(select(prefix))]
    counts = {v: verdicts.count(v) for v in ("PASS", "FINDING", "FAIL")}
    print(counts)
    if counts["FAIL"]:
        raise AssertionError(f"{counts['FAIL']} claim(s) under {prefix!r} failed")
    return counts


def render(paths: list[str]) -> None:
    """Execute each notebook in its own folder and save it in place with its outputs (the
    committed walkthroughs are rendered this way, so that a reader online sees the results)."""
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    for path in map(Path, paths):
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        for cell in nb.cells:
            cell.metadata.pop("execution", None)  # timestamps: keep re-renders diff-free
        nbformat.write(nb, path)
        print(f"rendered {path}")


if __name__ == "__main__":
    import sys

    render(sys.argv[1:] or sorted(str(p) for p in __import__("pathlib").Path("notebooks").glob(
        "*.ipynb")))
