"""Mixed precision on the CPU (bf16 autocast stands in for the GPU's): every method and named
variant trains under it; the statistics methods keep or project with are float32 / float64
and equal a float32 computation from the same activations; ``train.amp`` and
``train.deterministic`` as settings; a GPU out-of-memory error is one clear error."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from janus.core.config import apply_overrides, profile
from janus.core.errors import ConfigError, GPUOutOfMemoryError
from janus.core.precision import full_precision, resolve_amp, statistic
from janus.experiments.configs import make_config
from janus.experiments.sweep import named_variants
from janus.methods import METHODS
from janus.methods.activations import input_grams
from janus.methods.base import TaskContext
from janus.methods.janus_lora import JanusLoRA
from janus.methods.lora_drs import augmented_triplet_loss
from janus.methods.prompting import cosine
from janus.methods.prototypes import class_sums, nearest_prototype_scores
from janus.methods.rectification import ActivationCapture
from janus.model.continual import build_model
from janus.train.checkpoint import CHECKPOINT_NAME
from janus.train.identity import comparable
from janus.train.trainer import Run, run

CPU = torch.device("cpu")
BF16 = ("train.amp=bf16",)


def bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


# --------------------------------------------------------------------------- the setting


def test_amp_resolves_per_device_and_refuses_fp16():
    assert resolve_amp("auto", CPU) == "off"
    assert resolve_amp("auto", torch.device("cuda")) == "bf16"
    assert resolve_amp("bf16", CPU) == "bf16" and resolve_amp("off", CPU) == "off"
    assert resolve_amp(True, CPU) == "off" and resolve_amp(False, CPU) == "off"  # old records
    with pytest.raises(ConfigError, match="fp16 is not supported.*train.amp=bf16"):
        resolve_amp("fp16", CPU)
    with pytest.raises(ConfigError, match="train.amp='half' is not a precision"):
        resolve_amp("half", CPU)


@pytest.mark.parametrize("setting, message", [
    ("train.amp=fp16", "fp16 is not supported"),
    ("train.amp=yes", "is not a precision"),
    ("train.deterministic=1", "train.deterministic=1 must be True or False"),
])
def test_impossible_numerics_are_refused_before_anything_loads(tmp_path, setting, message):
    cfg = apply_overrides(profile("smoke"), [setting])
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_records_from_before_the_settings_compare_equal_to_the_defaults():
    new = profile("mini").to_dict()
    old = json.loads(json.dumps(new))
    old["train"]["amp"] = True
    del old["train"]["deterministic"]
    assert comparable(old) == comparable(new)
    old["train"]["amp"] = False
    assert comparable(old) != comparable(new)


# --------------------------------------------------------------------------- every method


def every_run() -> list[tuple[str, str, dict, tuple[str, ...]]]:
    """(key, method, params, overrides) of every registered method and named variant."""
    methods = [(m, m, {}, ()) for m in sorted(METHODS)]
    variants = [(k, v.method, v.params, v.overrides) for k, v in named_variants().items()]
    return methods + variants


def floating_tensors(state, where="state"):
    """(path, tensor) of every floating-point tensor in a nested state."""
    if isinstance(state, torch.Tensor):
        return [(where, state)] if state.is_floating_point() else []
    if isinstance(state, dict):
        return [x for k, v in state.items() for x in floating_tensors(v, f"{where}.{k}")]
    if isinstance(state, list | tuple):
        return [x for i, v in enumerate(state) for x in floating_tensors(v, f"{where}[{i}]")]
    return []


@pytest.mark.parametrize("key, method, params, overrides", every_run(),
                         ids=[r[0] for r in every_run()])
def test_every_method_and_variant_trains_two_tasks_under_bf16(tmp_path, key, method, params,
                                                              overrides):
    cfg = make_config("smoke", method, 0, tasks=2, params=params,
                      label=None if key == method else key,
                      overrides=(*overrides, *BF16, "train.max_steps_per_task=3"))
    snapshot = Snapshot()
    job = Run(cfg, tmp_path, progress=False, observers=[snapshot])
    record = job.execute(resume=False)
    assert record["status"] == "complete" and record["numerics"]["amp"] == "bf16"
    tasks = 1 if METHODS[method].single_task else 2
    assert len(record["tasks"]) == tasks
    losses = [t["final_loss"] for t in record["tasks"] if t["final_loss"] is not None]
    assert all(torch.isfinite(torch.tensor(losses))), losses
    matrix = record["accuracy_matrix"]
    assert all(a is not None for row, r in enumerate(matrix) for a in r[:row + 1])
    stored = floating_tensors(job.method.state_dict())
    stored += [(n, p) for n, p in job.model.named_parameters()]
    low = [(n, t.dtype) for n, t in stored if t.dtype not in (torch.float32, torch.float64)]
    assert not low, f"{key} keeps statistics or parameters below float32: {low}"
    check_geometry(key, job, snapshot.protected)


class Snapshot:
    """An observer that copies the protected bases a method trains the last task against."""

    protected: list[torch.Tensor] = []

    def before_task(self, run, ctx):
        self.protected = [p.clone() for p in getattr(run.method, "protected", [])]

    def before_step(self, run, ctx):
        pass

    after_step = after_task = before_step


def check_geometry(key: str, job: Run, protected: list[torch.Tensor]) -> None:
    """The subspace each method protects is protected to float32 precision after a bf16 run
    (a bf16 projection leaves about 1e-3); ``protected``: the bases of the last task."""
    method, model = job.method, job.model
    if key in ("seqlora", "continual-alternating"):
        for adapter in model.adapters:
            for s in adapter.slices:
                first, second = (c.A.detach().double() for c in adapter.slice_components(s))
                # the second task's basis, as projected (Alg. 1 line 20, eps = 1e-8)
                assert (second @ first.T).abs().max() < 1e-5 * second.norm() * first.norm()
    if key == "inflora":
        for adapter, m in zip(model.adapters, protected, strict=True):
            for s in adapter.slices:
                a = adapter.slice_components(s)[1].A.detach().double()
                assert m.shape[1] > 0 and (a @ m).abs().max() < 1e-6
    if key == "eblora":
        for upd in method.updates or []:
            raise AssertionError(f"updates left after the last task: {upd}")
        for i, adapter in enumerate(model.adapters):
            for s in adapter.slices:
                a = adapter.slice_components(s)[1].A.detach().double()
                p = protected[i]
                assert p.shape[1] > 0
                assert (a @ a.T - torch.eye(a.shape[0], dtype=a.dtype)).abs().max() < 1e-5
                assert (a @ p).abs().max() < 1e-5


# --------------------------------------------------------------------------- statistics


def smoke_model():
    torch.manual_seed(0)
    cfg = profile("smoke")
    model = build_model(cfg.model, cfg.lora)
    model.add_head(4)
    for comp_set in model.add_lora_components():
        for comp in comp_set.values():
            torch.nn.init.normal_(comp.B, std=0.2)
    return model


def test_input_grams_do_not_depend_on_the_callers_autocast():
    model = smoke_model()
    images = torch.randn(8, 3, 32, 32)
    reference = input_grams(model, [(images, None)], torch.float64)
    with bf16():
        under_amp = input_grams(model, [(images, None)], torch.float64)
    for r, g in zip(reference, under_amp, strict=True):
        assert g.dtype == torch.float64 and relative(g, r) < 1e-6


def test_class_prototypes_do_not_depend_on_the_callers_autocast(tmp_path):
    job = Run(apply_overrides(profile("smoke"), ["data.num_tasks=2"]), tmp_path, progress=False)
    job.start()
    task = job.task(0)
    job.model.add_head(len(task.labels))
    ctx = TaskContext(task=task, stream=job.stream, device=CPU)
    sums, counts = class_sums(job.model, ctx, normalized=True)
    with bf16():
        amp_sums, amp_counts = class_sums(job.model, ctx, normalized=True)
    assert amp_sums.dtype == torch.float32 and torch.equal(counts, amp_counts)
    assert relative(amp_sums, sums) < 1e-6


def test_captured_inputs_and_gradient_products_are_float32_of_the_autocast_activations():
    """GR's ``G_W V = Gy^T (X V)`` and OE's ``X`` from a bf16 forward equal the float64
    product of the same activations to float32 precision (a bf16 product: about 1e-2)."""
    model = smoke_model()
    adapter = model.adapters[0]
    hooks = []
    cap = ActivationCapture(adapter, lambda m, fn: hooks.append(m.register_forward_hook(fn)))
    cap.configure(torch.linalg.qr(torch.randn(adapter.in_features, 5)).Q, keep_inputs=True)
    seen = {}

    def spy(module, inputs, output):
        seen["x"] = inputs[0].detach()
        output.register_hook(lambda g: seen.__setitem__("gy", g.detach()))

    hooks.append(adapter.register_forward_hook(spy))
    with bf16():
        logits = model(torch.randn(6, 3, 32, 32))
    assert logits.dtype == torch.bfloat16  # the forward really ran in bf16
    F.cross_entropy(logits.float(), torch.arange(6) % 4).backward()
    x = seen["x"].reshape(-1, adapter.in_features)
    gy = seen["gy"].reshape(-1, adapter.base.out_features)
    xv = x.double() @ cap.basis.double()
    inputs, products = cap.take_inputs(), cap.take_products()
    assert inputs.dtype == torch.float32 and torch.equal(inputs, x.float())
    for s in adapter.slices:
        expected = gy[:, adapter.rows(s)].double().T @ xv
        assert products[s].dtype == torch.float32
        assert relative(products[s], expected) < 1e-5, s
    assert cap.take_inputs() is None and cap.take_products() == {}  # taken: forgotten
    for h in hooks:
        h.remove()


def float32_twin(fn, *args):
    """``fn(*args)`` under bf16 autocast and in float32 with autocast off."""
    with bf16():
        amp = fn(*args)
    with full_precision():
        exact = fn(*args)
    return amp, exact


def test_metric_terms_are_float32_under_autocast():
    """DML (Eq. 11), LoRA-DRS's triplet loss, nearest-prototype scores and prompt cosines from
    the same features equal their float32 values (DML and the cosines were 2e-3 and 3e-3 off
    as bf16 products; cdist already ran in float32 under autocast)."""
    torch.manual_seed(0)
    feats, y = torch.randn(16, 48), torch.arange(16) % 4
    protos = F.normalize(torch.randn(6, 48), dim=-1)
    janus = JanusLoRA(profile("smoke"))
    janus.old_prototypes = protos
    object.__setattr__(janus.params, "margin", -1.0)  # below its range on purpose: every hinge
    # is active
    for fn, args in [(janus.dml_loss, (feats, y)),
                     (augmented_triplet_loss, (F.normalize(feats, dim=-1), y, protos, 2.0)),
                     (nearest_prototype_scores, (feats, protos)),
                     (cosine, (feats, protos))]:
        amp, exact = float32_twin(fn, *args)
        assert amp.dtype == torch.float32 and relative(amp, exact) < 1e-6, fn.__name__


def test_statistics_are_at_least_float32():
    x = torch.randn(3, 3, dtype=torch.bfloat16)
    assert statistic(x).dtype == torch.float32
    assert statistic(x, torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match="float32 or float64"):
        statistic(x, torch.float16)


# --------------------------------------------------------------------------- determinism


class Watch:
    """An observer that notes whether deterministic kernels were on during steps."""

    def __init__(self):
        self.seen = set()

    def before_task(self, run, ctx):
        self.seen.add(torch.are_deterministic_algorithms_enabled())

    before_step = after_step = after_task = before_task


@pytest.mark.parametrize("deterministic", [True, False])
def test_deterministic_kernels_hold_during_the_run_only(tmp_path, deterministic):
    before = torch.are_deterministic_algorithms_enabled()
    watch = Watch()
    cfg = apply_overrides(profile("smoke"), ["data.num_tasks=2", "train.max_steps_per_task=2",
                                             f"train.deterministic={deterministic}"])
    record = Run(cfg, tmp_path, progress=False, observers=[watch]).execute(resume=False)
    assert watch.seen == {deterministic or before}
    assert torch.are_deterministic_algorithms_enabled() == before
    numerics = record["numerics"]
    assert numerics["deterministic"] is deterministic and numerics["amp"] == "off"
    if deterministic:
        assert numerics["cublas_workspace_config"] == ":4096:8"


def test_a_run_resumed_under_bf16_equals_an_uninterrupted_one(tmp_path, resumed_after_crash):
    cfg = apply_overrides(profile("smoke"), ["method.name=janus-lora", "data.num_tasks=3",
                                             "data.num_classes=9", "train.epochs=1", *BF16])
    reference, resumed, _ = resumed_after_crash(cfg)
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]
    assert [t["final_loss"] for t in resumed["tasks"]] == \
        [t["final_loss"] for t in reference["tasks"]]


def test_a_checkpoint_trained_under_another_autocast_is_not_resumed(tmp_path):
    cfg = apply_overrides(profile("smoke"), ["data.num_tasks=2", "train.max_steps_per_task=2"])
    job = Run(cfg, tmp_path, progress=False)
    job.start()
    job.train_tasks(1)
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=False)
    assert state["amp"] == "off"
    state["amp"] = "bf16"  # as if trained on a GPU with train.amp=auto
    torch.save(state, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(ConfigError, match="trained with autocast 'bf16'.*--set train.amp=bf16"):
        Run(cfg, tmp_path, progress=False).start(resume=True)
    # what the message advises works: bf16 spelt out equals the GPU's auto
    advised = apply_overrides(profile("smoke"), ["data.num_tasks=2", "train.max_steps_per_task=2",
                                                 *BF16])
    resumed = Run(advised, tmp_path, progress=False)
    resumed.start(resume=True)
    assert resumed.state.done == 1


# --------------------------------------------------------------------------- out of memory

OOM = ("CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has a total capacity of 79.10 "
       "GiB of which 1.02 GiB is free.")


@pytest.mark.parametrize("phase, setting", [("training", "data.batch_size=32"),
                                            ("evaluation", "data.eval_batch_size=256")])
def test_gpu_out_of_memory_is_one_error_and_keeps_the_finished_task(tmp_path, monkeypatch,
                                                                    phase, setting):
    cfg = apply_overrides(profile("smoke"), ["data.num_tasks=2", "train.max_steps_per_task=2"])
    where = "train_task" if phase == "training" else "evaluate"
    original = getattr(Run, where)

    def fails_in_task_2(self, t):
        if t == 1:
            raise torch.OutOfMemoryError(OOM)
        return original(self, t)

    monkeypatch.setattr(Run, where, fails_in_task_2)
    with pytest.raises(GPUOutOfMemoryError) as err:
        run(cfg, tmp_path, progress=False)
    message = str(err.value)
    key, size = setting.split("=")
    assert f"GPU out of memory in task 2 ({phase}, {setting})" in message
    assert "asked for 2.50 GiB" in message and f"--set {key}={int(size) // 2}" in message
    assert "marked failed" in message and "the 1 finished task(s) are kept" in message
    folder = next(tmp_path.rglob("record.json")).parent
    record = json.loads((folder / "record.json").read_text())
    assert record["status"] == "failed" and record["failure"]["task"] == 1
    assert record["accuracy_matrix"][0][0] is not None and len(record["tasks"]) == 1
    assert torch.load(folder / CHECKPOINT_NAME, weights_only=False)["completed_tasks"] == 1
