"""SeqLoRA's linear setting (janus.analysis.seqlora_linear): the numbers that Thm 7, Prop. 2
and Thm 8 fix, recomputed here independently of the module's own checks, on a small setting."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from janus.analysis import seqlora_linear as sl
from janus.core import geometry as geo
from janus.core.errors import ConfigError
from janus.reporting import seqlora_linear as report

matplotlib.use("Agg")

SMALL = dict(seed=3, m=8, r=2, num_tasks=3, draws=60, gd_steps=25, mc_samples=600)


@pytest.fixture(scope="module")
def model():
    """A small setting, its three methods and the tables, drawn in the notebook's order."""
    torch.set_num_threads(1)
    s = sl.LinearSetting(**SMALL)
    runs = dict(a=sl.frozen_random_runs(s), b=sl.kyfan_run(s), c=sl.learned_run(s))
    energy = sl.energy_rows(s, runs["b"], runs["a"], runs["c"])
    learned = sl.learned_vs_kyfan(s, runs["c"], runs["b"])
    forget = sl.forgetting_rows(s, runs["b"], runs["c"], runs["a"])
    return s, runs, energy, learned, forget


def free_projector(s, bases):
    """``I - B_int B_int^+`` computed here with a pseudo-inverse (Eq. 85)."""
    B_int = s.stack(bases)
    return s.eye - B_int @ torch.linalg.pinv(B_int) if B_int.numel() else s.eye


def test_the_setting_is_what_app_e_describes():
    s = sl.LinearSetting(**SMALL)
    assert float(s.spectrum.sum()) == pytest.approx(1.0, abs=1e-14)
    assert float(s.spectrum[1] / s.spectrum[0]) == pytest.approx(s.decay, abs=1e-14)
    for Sigma, target in zip(s.Sigmas, s.targets, strict=True):
        assert float(torch.trace(Sigma)) == pytest.approx(1.0, abs=1e-12)
        assert torch.allclose(torch.linalg.eigvalsh(Sigma).flip(0), s.spectrum, atol=1e-12)
        D = target - s.W0  # orthogonal
        assert torch.allclose(D.T @ D, s.eye, atol=1e-12)
    again = sl.LinearSetting(**SMALL)
    assert torch.equal(again.W0, s.W0) and torch.equal(again.Sigmas[-1], s.Sigmas[-1])


def test_too_many_concepts_for_the_orthogonality_constraint_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"num_tasks \* r = 5 \* 2 > m = 8.*Eq. 5"):
        sl.LinearSetting(m=8, r=2, num_tasks=5)
    with pytest.raises(ConfigError, match="draws and mc_samples"):
        sl.LinearSetting(m=8, r=2, num_tasks=2, draws=1)


def test_fit_A_is_the_least_squares_factor(model):
    s, runs, *_ = model
    run = runs["c"]
    for j in range(s.num_tasks):
        W_prev = run.W[j - 1] if j else s.W0
        B = run.B[j]
        # the gradient in A of L_j(W_prev + A B^T) vanishes, and a perturbed A is worse
        assert float((s.loss_grad(run.W[j], j) @ B).norm()) < 1e-10
        worse = run.W[j] + 1e-3 * torch.ones(s.n, s.r, dtype=sl.F64) @ B.T
        assert s.loss(worse, j) > s.loss(run.W[j], j)
        assert torch.allclose(run.W[j], W_prev + run.A[j] @ B.T, atol=1e-13)


def test_every_method_keeps_its_bases_orthogonal_eq5(model):
    s, runs, *_ = model
    for run in [*runs["a"][:5], runs["b"], runs["c"]]:
        U = torch.cat([geo.qr_retraction(B) for B in run.B], 1)
        assert torch.allclose(U.T @ U, torch.eye(s.num_tasks * s.r, dtype=sl.F64), atol=1e-12)
    assert sl.check_orthogonality({"(b)": [runs["b"]]}) < 1e-12
    bad = sl.ConceptRun(B=[runs["b"].B[0], runs["b"].B[0] + runs["b"].B[1]])
    with pytest.raises(sl.PaperIdentityError, match="Eq. 5 fails for method bad"):
        sl.check_orthogonality({"bad": [bad]})


def test_kyfan_basis_captures_the_top_r_eigenvalues_of_the_compressed_covariance(model):
    s, runs, energy, *_ = model
    for j, row in enumerate(energy):
        P = free_projector(s, runs["b"].B[:j])
        eig = torch.linalg.eigvalsh(P @ s.Sigmas[j] @ P).flip(0)
        top = float(eig[: s.r].sum())
        assert sl.captured(runs["b"].B[j], s.Sigmas[j]) == pytest.approx(top, abs=1e-12)
        assert row["kyfan"] == pytest.approx(top, abs=1e-12)
        assert row["optimal_residual"] == pytest.approx(1.0 - top, abs=1e-12)  # Tr Sigma_j = 1
        assert row["d_free"] == s.m - j * s.r
    # the first concept is unconstrained: the top-r eigenvalues of Sigma_1 itself
    assert energy[0]["kyfan"] == pytest.approx(float(s.spectrum[: s.r].sum()), abs=1e-12)


def test_haar_mean_matches_eq99_and_never_beats_kyfan(model):
    s, runs, energy, *_ = model
    for j, row in enumerate(energy):
        P = free_projector(s, runs["b"].B[:j])
        eq99 = s.r / (s.m - j * s.r) * float(torch.trace(P @ s.Sigmas[j] @ P))
        assert row["eq99"] == pytest.approx(eq99, abs=1e-12)
        assert abs(row["haar_mean"] - eq99) <= 4 * row["haar_se"]
        assert row["haar_se"] > 0 and row["haar_max"] <= row["kyfan"] + 1e-12
        assert row["eq100"] == pytest.approx(1.0 - eq99, abs=1e-12)  # Tr Sigma_j = 1
        assert abs(row["oa_mean"] - s.r / s.m) <= 4 * row["oa_se"]


def test_isotropic_covariance_leaves_no_gap_prop2(model):
    s, runs, *_ = model
    d_free, gap = sl.isotropic_gap(s, runs["b"])
    assert d_free == s.m - (s.num_tasks - 1) * s.r
    assert abs(gap) < 1e-14


def test_forgetting_is_crosstalk_plus_inner_product_eq114(model):
    s, runs, _, _, forget = model
    for name in ("b", "c"):
        run = runs[name]
        for j, row in enumerate(forget):
            got = row["optimal" if name == "b" else "learned"]
            C = run.W[-1] - run.W[j]
            Sigma = s.Sigmas[j]
            crosstalk = float(torch.trace(C @ Sigma @ C.T))
            forgetting = s.loss(run.W[-1], j) - s.loss(run.W[j], j)
            inner = float((2 * (run.W[j] - s.targets[j]) @ Sigma * C).sum())
            assert got["crosstalk"] == pytest.approx(crosstalk, rel=1e-10)
            assert got["forgetting"] == pytest.approx(forgetting, rel=1e-10, abs=1e-12)
            assert forgetting == pytest.approx(crosstalk + inner, rel=1e-9, abs=1e-12)
            assert got["crosstalk"] <= got["C_spec2"] * got["residual"] * (1 + 1e-12)  # Eq. 126
    assert all(abs(row["optimal"]["mc_z"]) < 5 for row in forget)
    assert "mc_z" not in forget[0]["learned"] and len(forget) == s.num_tasks - 1


def test_learned_basis_descends_and_kyfan_attains_eckart_young(model):
    s, runs, _, learned, _ = model
    assert s.loss(runs["b"].W[0], 0) == pytest.approx(
        1 - float(s.spectrum[: s.r].sum()) + s.n * s.noise**2, abs=1e-12
    )
    for row, (first, final, _) in zip(learned, runs["c"].log, strict=True):
        assert final <= first and row["loss_learned"] == final
        assert all(0 <= c <= 1 + 1e-12 for c in row["cosines"]) and len(row["cosines"]) == s.r


def test_rank_sweep_skips_infeasible_ranks_and_orders_the_residuals():
    s = sl.LinearSetting(**SMALL)
    sweep = sl.rank_sweep(s, [1, 2, 3])  # 3 * 3 > 8: skipped
    assert [t["rank"] for t in sweep] == [1, 2]
    for t in sweep:
        assert t["kyfan"] <= t["haar"] and t["random"] == 1 - t["rank"] / s.m


def test_tables_record_and_figure(model, tmp_path):
    s, runs, energy, learned, forget = model
    sizes = sl.update_norms(s, runs["a"], runs["b"], runs["c"])
    assert len(sizes["(a)"]) == s.num_tasks
    assert sizes["(b)"][0] == pytest.approx(
        float(torch.linalg.matrix_norm(runs["b"].A[0] @ runs["b"].B[0].T, 2))
    )
    sweep = sl.rank_sweep(s, [1, 2])
    text = "\n".join([
        report.setting_summary(s), report.energy_tables(s, energy),
        report.learned_table(s, learned, runs["c"]), report.forgetting_tables(s, forget, sizes),
        report.sweep_table(sweep),
    ])
    assert f"(a) own: mean over {s.draws} frozen-random runs" in text
    assert "ratios of the means over concepts" in text and "nan" not in text
    rec = sl.record(s, [1, 2], energy, learned, forget, sweep, sizes)
    path = sl.write_record(rec, tmp_path / "r.json")
    assert path.read_text().startswith('{\n "paper": "SeqLoRA')
    assert rec["parameters"]["ranks"] == [1, 2] and rec["parameters"]["n"] == s.m
    fig = report.figure(s, energy, forget, sweep)
    assert len(fig.axes) == 3 and math.isclose(fig.get_figwidth(), 15)
