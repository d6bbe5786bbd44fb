"""The shared harness of the falsification tests: swap a library formula, expect FAIL."""

import pytest

from proofs.core import REGISTRY


@pytest.fixture
def assert_fails(monkeypatch):
    """``assert_fails(module, attr, wrong, must_fail)``: with ``module.attr`` replaced by
    ``wrong``, every claim id in ``must_fail`` must have the verdict FAIL."""

    def check(module, attr, wrong, must_fail):
        monkeypatch.setattr(module, attr, wrong)
        verdicts = {cid: REGISTRY[cid].run().verdict for cid in must_fail}
        failed = {cid for cid, v in verdicts.items() if v == "FAIL"}
        assert must_fail <= failed, f"{attr}: expected {must_fail} to FAIL, got {verdicts}"

    return check
