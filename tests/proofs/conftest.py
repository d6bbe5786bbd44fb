"""The shared harness of the falsification tests: swap a library formula, expect FAIL."""

import sys

import pytest

from proofs.core import REGISTRY


@pytest.fixture
def assert_fails(monkeypatch):
    """``assert_fails(module, attr, wrong, must_fail)``: with ``module.attr`` replaced by
    ``wrong``, every claim id in ``must_fail`` must have the verdict FAIL.

    For a package (``janus.core.geometry``) the formula is also replaced in each submodule
    that binds it, so that the package's own callers of it (e.g. ``grown_basis`` calling
    ``optimal_feasible_basis``) see the wrong formula too."""

    def check(module, attr, wrong, must_fail):
        right = getattr(module, attr)
        prefix = module.__name__ + "."
        for name, sub in list(sys.modules.items()):
            if name.startswith(prefix) and getattr(sub, attr, None) is right:
                monkeypatch.setattr(sub, attr, wrong)
        monkeypatch.setattr(module, attr, wrong)
        verdicts = {cid: REGISTRY[cid].run().verdict for cid in must_fail}
        failed = {cid for cid, v in verdicts.items() if v == "FAIL"}
        assert must_fail <= failed, f"{attr}: expected {must_fail} to FAIL, got {verdicts}"

    return check
