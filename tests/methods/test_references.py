"""The reference rows: ``joint`` (all classes as one task) and ``ncm`` (SimpleCIL), and the
warning for tasks with too few optimizer steps."""

import pytest
import torch
import torch.nn.functional as F

from janus.core.config import apply_overrides, profile
from janus.train.checks import FewStepsWarning
from janus.train.trainer import Run, run


def small(*overrides):
    return apply_overrides(profile("smoke"), ["data.num_tasks=3", "data.num_classes=9",
                                              "data.train_per_class=16", "data.test_per_class=8",
                                              "train.epochs=1", *overrides])


def test_ncm_is_cosine_nearest_class_mean_of_the_frozen_features(tmp_path):
    cfg = small("method.name=ncm")
    r = Run(cfg, tmp_path, progress=False)
    record = r.execute(resume=False)
    assert [t["steps"] for t in record["tasks"]] == [0, 0, 0]
    # independent reference: frozen features, unnormalised class means, cosine argmax
    model, stream = r.model.eval(), r.stream
    assert not model.lora_components()

    def feats(images):
        xs, ys = zip(*[(model.features(x).float(), y) for x, y in stream.eval_loader(images)],
                     strict=True)
        return torch.cat(xs), torch.cat(ys)

    with torch.no_grad():
        train = [feats(stream.task(t).train_plain) for t in range(3)]
        f, y = torch.cat([a for a, _ in train]), torch.cat([b for _, b in train])
        means = torch.stack([f[y == c].mean(0) for c in range(9)])
        for t in range(3):
            ft, yt = feats(stream.task(t).test)
            pred = (F.normalize(ft, dim=1) @ F.normalize(means, dim=1).T).argmax(1)
            assert record["accuracy_matrix"][2][t] == pytest.approx(
                100.0 * float((pred == yt).float().mean()))


def test_joint_trains_one_lora_on_all_classes_as_one_task(tmp_path):
    cfg = small("method.name=joint", "data.batch_size=16")
    r = Run(cfg, tmp_path, progress=False)
    record = r.execute(resume=False)
    assert r.stream.num_tasks == 1 and len(r.stream.task(0).labels) == 9
    assert record["config"]["data"]["num_tasks"] == 3  # filed beside the T = 3 runs
    assert len(record["accuracy_matrix"]) == 1
    assert record["tasks"][0]["steps"] == 9 * 16 // 16  # one epoch over all 144 images
    assert record["metrics"]["acc"] == record["metrics"]["maa"] == record["accuracy_matrix"][0][0]
    assert len(r.model.heads) == 1 and r.model.heads[0].out_features == 9
    assert all(float(c.B.detach().abs().sum()) > 0 for c in r.model.lora_components())


def test_a_task_with_too_few_steps_is_named_once(tmp_path):
    cfg = small("method.name=finetune")
    with pytest.warns(FewStepsWarning, match=r"task 1 has 48 training images: 1 optimizer steps "
                                             r"\(1 epochs of 1 batches of at most 32\)") as seen:
        run(cfg, tmp_path, progress=False)
    assert len([w for w in seen if issubclass(w.category, FewStepsWarning)]) == 1
