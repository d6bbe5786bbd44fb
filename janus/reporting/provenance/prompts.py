"""Provenance of the prompt methods: CODA-Prompt, DualPrompt and L2P."""

from __future__ import annotations

from janus.reporting.provenance.records import Check, Deviation, Provenance
from janus.reporting.provenance.shared import _PER_SAMPLE_REASON, _PROTOCOL_CHECKPOINT

CODA_PROMPT = Provenance(
    method="coda-prompt",
    paper=(
        "Smith et al., CVPR 2023, CODA-Prompt: COntinual Decomposed Attention-based Prompting "
        "for Rehearsal-Free Continual Learning"
    ),
    official=(
        "GT-RIPL/CODA-Prompt@6417d4f (utils/schedulers.py, learners/default.py)",
        "liangyanshuo/InfLoRA@e08b00e (models/zoo.py)",
        (
            "aimagelab/mammoth (models/coda_prompt*, models/config/*.yaml, utils/schedulers.py;"
            " commit not recorded)"
        ),
        (
            "sun-hailong/LAMDA-PILOT (exps/coda_prompt.json, exps/coda_prompt_inr.json, "
            "backbone/vit_*prompt*.py; commit not recorded)"
        ),
    ),
    doc="docs/methods/prompts.md",
    checks=(
        Check(
            what=(
                "alpha_m = cos(q * A_m, K_m) and the prefix sum_m alpha_m P_m, split into key "
                "and value halves, equal a direct computation; earlier and later components get"
                " zero gradient, the task's own non-zero."
            ),
            test="tests/methods/test_prompts.py::test_coda_components_alpha_and_detached_past",
        ),
        Check(
            what=(
                "New components are orthonormal to each other and to non-orthogonal earlier "
                "ones (to 1e-5)."
            ),
            test=(
                "tests/methods/test_prompts.py::test_orthonormal_extension_is_orthogonal_to_non"
                "_orthogonal_old_rows"
            ),
        ),
        Check(
            what=(
                "Prefix attention equals a dense float64 softmax over the prefix and the "
                "block's keys, on the fused and the explicit attention path (within 1e-5)."
            ),
            test="tests/methods/test_prompts.py::test_prefix_attention_equals_the_dense_reference",
        ),
        Check(
            what="Without prompts the prompted forward is model.features bit for bit.",
            test="tests/methods/test_prompts.py::test_without_prompts_the_output_is_model_features",
        ),
    ),
    deviations=(
        Deviation(
            what=(
                "The protocol's learning rate, schedule and epochs, where the code uses Adam at"
                " lr 1e-3 with its per-epoch cosine for 50 epochs on ImageNet-R (20 on "
                "CIFAR-100)."
            ),
            reason=(
                "Every method gets the protocol's optimiser, learning rate, schedule and "
                "epochs."
            ),
            switch="train.lr=0.001 train.schedule=inflora-cosine train.epochs=50",
        ),
        Deviation(
            what=(
                "New components are projected twice off an orthonormal basis of all earlier "
                "components, where the code subtracts the projection on each earlier component "
                "separately."
            ),
            reason=(
                "The code's Gram-Schmidt is exact only while the earlier components are "
                "orthogonal, which they no longer are after training."
            ),
            switch=None,
        ),
        Deviation(
            what=(
                "Components that no task has initialised yet are zero, where the code draws "
                "them from Uniform(0, 1)."
            ),
            reason="The code never uses them before re-initialising them.",
            switch=None,
        ),
        Deviation(
            what=(
                "At widths below 100 the pool holds min(100, width) components (48 at the smoke"
                " width)."
            ),
            reason="100 orthonormal rows need a width of at least 100.",
            switch=None,
        ),
        _PROTOCOL_CHECKPOINT,
    ),
)


DUALPROMPT = Provenance(
    method="dualprompt",
    paper=(
        "Wang et al., ECCV 2022, DualPrompt: Complementary Prompting for Rehearsal-free "
        "Continual Learning"
    ),
    official=(
        (
            "JH-LEE-KR/dualprompt-pytorch@7eb457d (prompt.py lines 100-110, "
            "configs/cifar100_dualprompt.py, configs/imr_dualprompt.py, datasets.py)"
        ),
        "liangyanshuo/InfLoRA@e08b00e (models/zoo.py lines 418-447, models/sinet_dual.py)",
        (
            "Geeks-Z/Awesome-CIL (dualprompt-pytorch-master configs, engine.py, main.py, "
            "vision_transformer.py; commit not recorded)"
        ),
        "aimagelab/mammoth (models/dualprompt*, models/config/*.yaml; commit not recorded)",
        (
            "sun-hailong/LAMDA-PILOT (exps/dualprompt.json, exps/dualprompt_inr.json, "
            "backbone/vit_*prompt*.py; commit not recorded)"
        ),
    ),
    doc="docs/methods/prompts.md",
    checks=(
        Check(
            what=(
                "Training forces E-prompt t, which starts as a copy of E-prompt t-1 (key not "
                "copied); testing takes each sample's top-1 key, and each sample gets the K and"
                " V halves of its own E-prompt (within 1e-5); pull term -mean cos(q, k_t) "
                "(1e-6)."
            ),
            test=(
                "tests/methods/test_prompts.py::test_dualprompt_copies_trains_prompt_t_and_test"
                "s_the_top_key"
            ),
        ),
        Check(
            what=(
                "G-prompt on blocks 0-1 and E-prompts on blocks 2-4 at depth 12; shapes "
                "(layers, 2, [tasks,] length, heads, head_dim) read from the ViT."
            ),
            test=(
                "tests/methods/test_prompts.py::test_dualprompt_layers_and_shapes_follow_the_mo"
                "del"
            ),
        ),
        Check(
            what=(
                "Prefix attention equals a dense float64 softmax over the prefix and the "
                "block's keys (within 1e-5)."
            ),
            test="tests/methods/test_prompts.py::test_prefix_attention_equals_the_dense_reference",
        ),
        Check(
            what=(
                "batchwise=True: the vote equals the ports' unique, count and top-k selection "
                "written out from prompt.py (over 50 random cases without ties)."
            ),
            test="tests/methods/test_prompts.py::test_batch_majority_equals_the_ports_selection",
        ),
        Check(
            what=(
                "batchwise=True tests every sample with the batch's most frequent E-prompt and "
                "still trains with E-prompt t."
            ),
            test=(
                "tests/methods/test_prompts.py::test_dualprompt_batchwise_tests_with_the_batchs"
                "_most_frequent_key"
            ),
        ),
    ),
    deviations=(
        Deviation(
            what=(
                "Each sample's key prefix comes from the K half and its value prefix from the V"
                " half of its own E-prompt (mammoth's use_permute_fix)."
            ),
            reason=(
                "The original code reshapes the selected prefix without a permute, which "
                "scrambles the K and V halves across the batch (mammoth issue 56)."
            ),
            switch=None,
        ),
        Deviation(
            what=(
                "E-prompts are selected per sample at test by default, where the port's "
                "CIFAR-100 config votes per batch (batchwise_prompt)."
            ),
            reason=_PER_SAMPLE_REASON,
            switch="method.params.batchwise=True",
        ),
        Deviation(
            what=(
                "The pool holds one E-prompt per task seen, so the untrained keys of future "
                "tasks cannot be picked at test."
            ),
            reason=(
                "This changes only the intermediate rows of the accuracy matrix; the final row "
                "is the same."
            ),
            switch=None,
        ),
        Deviation(
            what=(
                "The protocol's learning rate, schedule and batch size, where the code trains "
                "at a constant lr 0.005 with batch 24 on ImageNet-R (0.03 x batch/256 for 5 "
                "epochs on CIFAR-100)."
            ),
            reason=(
                "Every method gets the protocol's optimiser, learning rate, schedule and "
                "epochs."
            ),
            switch="train.lr=0.005 train.schedule=constant data.batch_size=24",
        ),
        _PROTOCOL_CHECKPOINT,
    ),
)


L2P = Provenance(
    method="l2p",
    paper="Wang et al., CVPR 2022, Learning to Prompt for Continual Learning",
    official=(
        (
            "JH-LEE-KR/l2p-pytorch@f7bc994 (prompt.py lines 71-82, configs/cifar100_l2p.py, "
            "datasets.py)"
        ),
        "liangyanshuo/InfLoRA@e08b00e (models/zoo.py lines 418-447, models/sinet_l2p.py)",
        (
            "aimagelab/mammoth (models/l2p*, models/config/*.yaml, "
            "datasets/configs/seq-cifar100-224/*; commit not recorded)"
        ),
        (
            "sun-hailong/LAMDA-PILOT (exps/l2p.json, exps/l2p_inr.json, "
            "backbone/vit_*prompt*.py; commit not recorded)"
        ),
    ),
    doc="docs/methods/prompts.md",
    checks=(
        Check(
            what=(
                "Per sample the top-N keys by cosine with the query are selected; the pull term"
                " equals -lambda sum cos / B (rel 1e-5) and only the selected keys get "
                "gradient; the head reads the mean of the sample's own prompt outputs."
            ),
            test=(
                "tests/methods/test_prompts.py::test_l2p_selects_top_n_keys_per_sample_and_pull"
                "s_only_those"
            ),
        ),
        Check(
            what=(
                "Prompt tokens follow CLS with its position embedding: equal to a hand-built "
                "[CLS, prompts, patches] sequence (within 1e-6)."
            ),
            test=(
                "tests/methods/test_prompts.py::test_prompt_tokens_follow_cls_with_its_position"
                "_embedding"
            ),
        ),
        Check(
            what=(
                "batchwise=True: the vote equals the ports' selection written out from "
                "l2p-pytorch@f7bc994 prompt.py lines 71-82 (over 50 random cases without ties)."
            ),
            test="tests/methods/test_prompts.py::test_batch_majority_equals_the_ports_selection",
        ),
        Check(
            what=(
                "batchwise=True gives every sample the batch's prompts, and the pull term "
                "follows the vote."
            ),
            test=(
                "tests/methods/test_prompts.py::test_l2p_batchwise_gives_every_sample_the_batch"
                "s_prompts"
            ),
        ),
        Check(
            what=(
                "The gradient of everything trained is clipped to norm 1.0 as in the codes; lr "
                "sets the prompts' group only."
            ),
            test="tests/methods/test_prompts.py::test_options_lr_group_and_clipping",
        ),
    ),
    deviations=(
        Deviation(
            what=(
                "Prompts are selected per sample by default, where the port's CIFAR-100 config "
                "votes per batch in training and test (batchwise_prompt)."
            ),
            reason=_PER_SAMPLE_REASON,
            switch="method.params.batchwise=True",
        ),
        Deviation(
            what=(
                "The protocol's learning rate, schedule and epochs, where the code uses Adam at"
                " a constant lr 0.03 x batch/256 (0.015 at batch 128) for 5 epochs on "
                "CIFAR-100."
            ),
            reason=(
                "Every method gets the protocol's optimiser, learning rate, schedule and "
                "epochs."
            ),
            switch="train.lr=0.015 train.schedule=constant train.epochs=5",
        ),
        _PROTOCOL_CHECKPOINT,
    ),
)
