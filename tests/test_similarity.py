"""Fig. 7b probe: max cosine of new samples to old prototypes, against a direct computation."""

import json

import pytest
import torch
import torch.nn.functional as F

from janus.analysis.similarity import PrototypeSimilarityProbe, similarity_or_load
from janus.core.config import apply_overrides, profile
from janus.core.errors import JanusError
from janus.train.trainer import Run

TINY = ["data.num_tasks=3", "data.num_classes=9", "data.train_per_class=16",
        "data.test_per_class=4", "train.epochs=1"]


def test_probe_matches_a_direct_computation_after_each_task(tmp_path):
    cfg = apply_overrides(profile("smoke"), TINY)
    probe = PrototypeSimilarityProbe()
    run = Run(cfg, tmp_path, progress=False, observers=[probe])
    run.start()
    run.train_tasks(1, save=False)
    assert probe.values == {} and probe.prototypes.shape == (3, run.model.feature_dim)
    run.train_tasks(2, save=False)
    # direct: task 1's test features after task 1 against task 0's stored prototypes
    protos = probe.prototypes[:3]
    assert torch.allclose(protos.norm(dim=1), torch.ones(3), atol=1e-6)
    images = torch.cat([x for x, _ in run.stream.test_loader(run.task(1))])
    with torch.no_grad():
        z = F.normalize(run.model.features(images), dim=-1)
    want = (z @ protos.T).amax(dim=1)
    assert probe.values[1] == pytest.approx(want.tolist(), abs=1e-6)
    assert len(probe.values[1]) == 12 and probe.prototypes.shape[0] == 6


def test_record_is_written_once_and_protected(tmp_path):
    cfg = apply_overrides(profile("smoke"), TINY)
    path = tmp_path / "sim.json"
    rec = similarity_or_load(cfg, 2, path, progress=False)
    assert set(rec["max_cosine"]) == {"1"} and len(rec["accuracy"]) == 2
    assert json.loads(path.read_text())["max_cosine"] == rec["max_cosine"]
    assert similarity_or_load(cfg, 2, path, progress=False) == json.loads(path.read_text())
    with pytest.raises(JanusError, match="other settings"):
        similarity_or_load(cfg, 3, path, progress=False)
