"""Class orders, equal task splits and transforms of the class-incremental stream."""

import numpy as np
import pytest
import torch

from janus.core.config import DataConfig, apply_overrides, profile
from janus.core.errors import ConfigError
from janus.data.stream import build_stream, class_order
from janus.data.synthetic import generate


def test_synthetic_data_is_deterministic_and_sized():
    a, b = generate(4, 5, 3), generate(4, 5, 3)
    assert np.array_equal(a.train.source.pixels, b.train.source.pixels)
    assert a.train.source.pixels.shape == (20, 32, 32, 3)
    assert list(a.test.labels) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    # classes differ in their mean image far more than samples of one class do
    mean = a.train.source.pixels.reshape(4, 5, -1).astype(float).mean(1)
    assert np.linalg.norm(mean[0] - mean[1]) > 500


def test_class_order_sorted_permuted_and_truncated():
    assert list(class_order(5, DataConfig(), seed=3)) == [0, 1, 2, 3, 4]
    p1 = class_order(10, DataConfig(class_order="permuted"), seed=3)
    p2 = class_order(10, DataConfig(class_order="permuted"), seed=3)
    p3 = class_order(10, DataConfig(class_order="permuted", order_seed=4), seed=3)
    assert list(p1) == list(p2) and sorted(p1) == list(range(10)) and list(p1) != list(p3)
    assert len(class_order(10, DataConfig(num_classes=4), seed=0)) == 4
    with pytest.raises(ConfigError, match="has 10 classes"):
        class_order(10, DataConfig(num_classes=11), seed=0)
    with pytest.raises(ConfigError, match="class_order"):
        class_order(10, DataConfig(class_order="random"), seed=0)


def test_pycil_orders_are_the_legacy_global_numpy_permutation():
    """PyCIL-derived code (SD-LoRA ``utils/data_manager.py`` lines 155-157): ``np.random.seed(
    seed); np.random.permutation(n)``, written out here with the global generator."""
    state = np.random.get_state()
    try:
        np.random.seed(1993)
        want_1993 = np.random.permutation(100)
        np.random.seed(7)
        want_7 = np.random.permutation(100)
    finally:
        np.random.set_state(state)
    assert class_order(100, DataConfig(class_order="pycil-1993"), seed=0).tolist() == \
        want_1993.tolist()
    assert want_1993[:5].tolist() == [68, 56, 78, 8, 23]  # the order PyCIL logs for CIFAR-100
    assert class_order(100, DataConfig(class_order="pycil"), seed=7).tolist() == want_7.tolist()
    assert class_order(100, DataConfig(class_order="pycil", order_seed=1993),
                       seed=7).tolist() == want_1993.tolist()
    with pytest.raises(ConfigError, match="pycil-<seed>"):
        class_order(10, DataConfig(class_order="pycil-x"), seed=0)


def test_tasks_are_contiguous_label_ranges_of_the_class_order():
    cfg = apply_overrides(
        profile("smoke"),
        ["data.class_order='permuted'", "data.num_tasks=5", "data.train_per_class=7"],
    )
    stream = build_stream(cfg, seed=1)
    assert stream.classes_per_task == 4
    seen = []
    for t in range(5):
        task = stream.task(t)
        assert task.labels == range(4 * t, 4 * t + 4)
        assert set(task.train.labels) == set(task.labels)
        assert np.bincount(task.train.labels - 4 * t).tolist() == [7] * 4
        assert len(task.test) == 4 * 32
        seen += [stream.class_order[c] for c in task.labels]
        image, label = task.test[0]
        assert image.shape == (3, 32, 32) and label in task.labels
    assert sorted(seen) == list(range(20))
    # the test transform is deterministic, the train transform is not
    task = stream.task(0)
    assert torch.equal(task.test[3][0], task.test[3][0])
    torch.manual_seed(0)
    assert not all(torch.equal(task.train[3][0], task.train[3][0]) for _ in range(5))


def test_image_normalisation_uses_model_mean_and_std():
    stream = build_stream(profile("smoke"), seed=0)
    task = stream.task(0)
    raw = task.test.images.image(0)
    expected = (torch.tensor(np.asarray(raw), dtype=torch.float32).permute(2, 0, 1) / 255 - 0.5)
    torch.testing.assert_close(task.test[0][0], expected / 0.5)
