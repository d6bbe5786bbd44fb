"""What a table or figure runs: its rows as named :class:`Variant` s (a method, fixed
parameters and a run label), one table per paper table or figure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Variant:
    """A method with fixed parameters under its own run label (a table row)."""

    name: str
    """Row name shown in tables."""
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    """Run folder / summary key; None uses the method name (the method's defaults)."""
    overrides: tuple[str, ...] = ()
    """Config overrides the row always runs under (e.g. :data:`ONE_EPOCH`), before the
    caller's own."""

    @property
    def key(self) -> str:
        return self.label or self.method


ONE_EPOCH = ("train.epochs=1",)
"""The one-epoch regime of Janus-LoRA Table 5 and of the ``mini`` SeqLoRA evidence runs."""


def janus_variant(name: str, label: str | None = None, **params: Any) -> Variant:
    return Variant(name, "janus-lora", params, label)


TABLE1_VARIANTS: dict[int, Variant] = {
    # Row 1 has no OE, GR or DML: plain LoRA fine-tuning, which is the Finetune baseline step
    # for step (tests/methods/test_janus_lora.py); the paper prints the same numbers for it
    # in Tables 1 and 2.
    1: Variant("(1) LoRA", "finetune"),
    2: janus_variant("(2) DML", "janus-dml", oe=False, gr=False),
    3: janus_variant("(3) OE", "janus-oe", gr=False, dml=False),
    4: janus_variant("(4) GR", "janus-gr", oe=False, dml=False),
    5: janus_variant("(5) OE+GR", "janus-oe-gr", dml=False),
    6: janus_variant("(6) OE+DML", "janus-oe-dml", gr=False),
    7: janus_variant("(7) OE+GR+DML", None),
}
"""Janus-LoRA Table 1 (Sec. 4.2): the seven OE / GR / DML combinations."""


SDLORA_TABLE4_VARIANTS: dict[int, Variant] = {
    1: Variant("W0 + a dir(A1B1)", "sd-lora", {"components": "first"}, "sd-lora-first"),
    2: Variant("W0 + a dir(AB)", "sd-lora", {"components": "single"}, "sd-lora-single"),
    3: Variant("W0 + dir_1 + .. + a dir_t", "sd-lora", {"old_magnitudes": "frozen"},
               "sd-lora-frozen-alphas"),
    4: Variant("SD-LoRA", "sd-lora"),
}
"""SD-LoRA Table 4 (Sec. 4.2, "Ablation Studies"): task 1's direction only, frozen, with a
learned magnitude; one direction trained throughout; every direction kept but the earlier
magnitudes frozen; SD-LoRA. See ``docs/methods/sdlora.md``."""


SDLORA_CODE = Variant(
    "SD-LoRA (official code's protocol)", "sd-lora",
    {"norm": "factors", "current": "raw-evaluated", "b_init": "zero", "magnitudes": "reset"},
    "sd-lora-code",
    ("train.optimizer=sgd", "train.momentum=0.9", "train.weight_decay=0.0", "train.lr=0.01",
     "train.schedule=constant", "train.epochs=20", "lora.targets=['q','v']"),
)
"""SD-LoRA as its official code runs it (WuYichen-97/SD-Lora-CL@8bacded): earlier directions
divided by ``||B|| ||A||``; the current term ``alpha_t B_t A_t`` un-normalised, from ``B = 0``,
also in the evaluation right after its task; every magnitude restarts at 0.8 each task; SGD
(momentum 0.9, no weight decay) at the ImageNet-R config's constant lr 1e-2 (CIFAR-100:
``--set train.lr=0.008``) for 20 epochs; LoRA on Q and V. The weights
(``vit_base_patch16_224.augreg2_in21k_ft_in1k``) and the class order (``pycil-1995`` /
``pycil-1993``) are the `paper` profile's flags: ``docs/methods/sdlora.md``, "The official
code's protocol"."""


TABLE5_VARIANTS: dict[str, Variant] = {
    "GPM": Variant("GPM", "lora-gpm", {}, "lora-gpm-e1", ONE_EPOCH),
    "OE": Variant("OE", "janus-lora", {"gr": False, "dml": False}, "janus-oe-e1", ONE_EPOCH),
}
"""Janus-LoRA Table 5: the OE basis vs an offline GPM basis with the same update rule ("OE
only", Table 1 row 3, vs LoRA-GPM), run with one epoch per task under their own labels."""

FIG6_VARIANTS: dict[str, Variant] = {
    "lora-gpm": Variant("LoRA-GPM", "lora-gpm"),
    "lora-gpm-gr": Variant("LoRA-GPM + GR", "lora-gpm", {"gr": True}, "lora-gpm-gr"),
    "lora-drs": Variant("LoRA-DRS", "lora-drs"),
    "lora-drs-gr": Variant("LoRA-DRS + GR", "lora-drs", {"gr": True}, "lora-drs-gr"),
}
"""Janus-LoRA Fig. 6: GR as a plug-in on LoRA-GPM and LoRA-DRS (GR towards the projected
gradient each method protects with: docs/methods/lora_drs.md)."""


FIG7_VARIANTS: dict[str, Variant] = {
    "janus-oe-gr": janus_variant("without DML (OE + GR)", "janus-oe-gr", dml=False),
    "janus-lora": janus_variant("Janus-LoRA (with DML)", None),
}
"""Janus-LoRA Fig. 7b: the same model with and without the Decoupled Margin Loss."""


FIG2_VARIANTS: dict[str, Variant] = {
    v.key: v
    for v in (
        janus_variant("LoRA (no OE, no GR)", "janus-none", oe=False, gr=False, dml=False),
        janus_variant("OE, naive projection", "janus-oe", gr=False, dml=False),
        janus_variant("OE + GR", "janus-oe-gr", dml=False),
        janus_variant("OE + GR, exact-safe", "janus-oe-gr-exact", dml=False, exact_safe=True),
        janus_variant("OE + GR + DML", None),
    )
}
"""Janus-LoRA Fig. 2 ("standard optimization" vs GR) plus the references around it; DML is
off except in the full model so that the geometry is compared on the same loss."""


SEQLORA_MINI_VARIANTS: dict[str, Variant] = {
    "continual-alternating": Variant("Continual Alternating (1 epoch)", "continual-alternating",
                                     {}, "continual-alternating-e1", ONE_EPOCH),
    "seqlora": Variant("SeqLoRA (1 epoch)", "seqlora", {}, "seqlora-e1", ONE_EPOCH),
}
"""SeqLoRA and Continual Alternating as their ``mini`` evidence runs them: one epoch per task
(22.6x / 15.7x a LoRA step: ``docs/methods/seqlora.md``, "At mini scale")."""

ONE_EPOCH_CONTROL = Variant("Finetune (1 epoch)", "finetune", {}, "finetune-e1", ONE_EPOCH)
"""Sequential LoRA fine-tuning for one epoch per task: the control of the one-epoch SeqLoRA /
Continual Alternating runs, for how much of their result is the shorter training alone."""


def sweep_variants(param: str, values: Iterable[Any], default: Any) -> list[Variant]:
    """Janus-LoRA with ``param`` set to each value; the default value maps to the plain
    ``janus-lora`` runs so that they are shared with Table 1 / Table 2."""
    out = []
    for v in values:
        if v == default:
            out.append(janus_variant(f"{param}={v}", None))
        else:
            out.append(janus_variant(f"{param}={v}", f"janus-{param}{v}", **{param: v}))
    return out


def table2_variants(profile: str, methods: Sequence[str]) -> list[Variant]:
    """Table 2's rows: each method with its defaults, except in the ``mini`` profile, where
    SeqLoRA and Continual Alternating are their one-epoch evidence runs
    (:data:`SEQLORA_MINI_VARIANTS`) and the one-epoch control follows them (4 epochs of their
    steps would take ~9 h per seed on our CPU: ``docs/methods/seqlora.md``)."""
    if profile != "mini":
        return [Variant(m, m) for m in methods]
    rows = [SEQLORA_MINI_VARIANTS.get(m, Variant(m, m)) for m in methods]
    if any(m in SEQLORA_MINI_VARIANTS for m in methods):
        rows.append(ONE_EPOCH_CONTROL)
    return rows
