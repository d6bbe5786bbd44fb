"""``python -m proofs [--only PREFIX]``: run the registered claims and print one row each.

Exits 1 if any claim FAILs (a FINDING is not a failure), 2 if ``--only`` selects nothing.
"""

from __future__ import annotations

import argparse
import sys
import time

from proofs import load_all
from proofs.core import format_table, run_all, select


def main(argv: list[str] | None = None) -> int:
    """Run the claims and print the table; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m proofs", description=__doc__)
    parser.add_argument("--only", metavar="PREFIX", help="run only claims whose id starts so")
    args = parser.parse_args(argv)
    load_all()
    claims = select(args.only)
    if not claims:
        print(f"no claim id starts with {args.only!r}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results = run_all(claims)
    print(format_table(results))
    counts = {v: sum(r.verdict == v for r in results) for v in ("PASS", "FINDING", "FAIL")}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    print(f"\nclaims run: {len(results)}; {summary} ({time.perf_counter() - start:.1f} s)")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
