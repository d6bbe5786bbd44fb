"""ACC, MAA, BWT (Janus-LoRA Sec. 4.1) on hand-computed accuracy matrices."""

import numpy as np
import pytest

from janus.core import metrics
from janus.core.results import matrix_to_json, per_task_series

NAN = np.nan
A3 = [[90.0, NAN, NAN], [70.0, 80.0, NAN], [50.0, 60.0, 85.0]]


def test_hand_computed_three_tasks():
    # ACC = (50 + 60 + 85) / 3 = 65
    assert metrics.final_accuracy(A3) == pytest.approx(65.0)
    # MAA = (90 + (70 + 80) / 2 + (50 + 60 + 85) / 3) / 3 = (90 + 75 + 65) / 3
    assert metrics.mean_average_accuracy(A3) == pytest.approx(230.0 / 3)
    # BWT = ((50 - 90) + (60 - 80)) / 2 = -30
    assert metrics.backward_transfer(A3) == pytest.approx(-30.0)


def test_average_accuracy_after_each_task_and_per_task_series():
    np.testing.assert_allclose(metrics.average_accuracies(A3), [90.0, 75.0, 65.0])

    def record(acc, label, seconds):
        return {"config": {"profile": "p", "data": {"dataset": "d", "num_tasks": 3},
                           "method": {"name": "m", "label": label}},
                "accuracy_matrix": matrix_to_json(np.array(acc)),
                "tasks": [{"train_seconds": s, "train_images_per_second": 10 / s}
                          for s in seconds]}

    other = [[80.0, NAN, NAN], [60.0, 70.0, NAN], [40.0, 50.0, 75.0]]
    recs = [record(A3, None, [1, 2, 3]), record(other, None, [3, 2, 1]), record(A3, "x", [1, 1, 1])]
    mean, std = per_task_series(recs, "avg_acc")["m"]
    np.testing.assert_allclose(mean, [85.0, 70.0, 60.0])
    np.testing.assert_allclose(std, [np.sqrt(50)] * 3)  # sample std of two seeds, 10 apart
    np.testing.assert_allclose(per_task_series(recs, "cumulative_seconds")["m"][0], [2, 4, 6])
    np.testing.assert_allclose(per_task_series(recs, "throughput")["x"][0], [10, 10, 10])
    with pytest.raises(ValueError, match="quantity"):
        per_task_series(recs, "loss")


def test_no_forgetting_and_single_task():
    a = [[80.0, NAN], [80.0, 70.0]]
    assert metrics.backward_transfer(a) == 0.0
    assert metrics.summary([[42.0]]) == {"acc": 42.0, "maa": 42.0, "bwt": 0.0}


def test_upper_triangle_is_ignored_and_gaps_rejected():
    filled = np.array(A3)
    filled[np.triu_indices(3, 1)] = 12345.0
    assert metrics.summary(filled) == metrics.summary(A3)
    broken = np.array(A3)
    broken[2, 1] = NAN
    with pytest.raises(ValueError, match="missing"):
        metrics.summary(broken)
    with pytest.raises(ValueError, match="square"):
        metrics.summary([[1.0, 2.0]])


def test_training_times_and_machine_of_a_record_with_and_without_cpu_time():
    from janus.core.results import machine_of, train_cpu_seconds, train_seconds

    tasks = [{"train_seconds": 2.0, "train_cpu_seconds": 3.5},
             {"train_seconds": 1.5, "train_cpu_seconds": 2.0}]
    env = {"device": "cpu", "cpu": "Some CPU", "torch_threads": 2}
    record = {"tasks": tasks, "environment": env}
    assert train_seconds(record) == 3.5 and train_cpu_seconds(record) == 5.5
    assert machine_of(record) == "Some CPU, 2 threads"
    one = {"tasks": tasks, "environment": {**env, "torch_threads": 1}}
    assert machine_of(one) == "Some CPU, 1 thread"
    old = {"tasks": [{"train_seconds": 2.0}], "environment": {"device": "cpu"}}  # pre 2026-12-01
    assert train_cpu_seconds(old) is None and machine_of(old) == "?, ? threads"
