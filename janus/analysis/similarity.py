"""Maximum cosine similarity of a new task's samples to the old classes' prototypes
(Janus-LoRA Fig. 7b, Sec. 4.3 "Dissecting the Geometric Mechanism of DML").

After each task t > 0, :class:`PrototypeSimilarityProbe` takes the L2-normalised features
of task t's test images and records, per image, its largest cosine to the prototypes of the
classes of tasks < t; high values mean the new features encroach on old classes. Prototypes
are the normalised means of normalised training features (test transform) taken at the end
of each class's own task, the definition DML uses, for every method alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from janus.analysis.probing import load_or_measure, train_observed
from janus.core.config import RunConfig
from janus.methods.base import TaskContext
from janus.methods.prototypes import class_sums
from janus.train.trainer import Observer, Run


class PrototypeSimilarityProbe(Observer):
    """Per task after the first: each test image's max cosine to the old prototypes."""

    def __init__(self) -> None:
        self.prototypes: torch.Tensor | None = None
        self.values: dict[int, list[float]] = {}

    @torch.no_grad()
    def after_task(self, run: Run, ctx: TaskContext) -> None:
        model = run.model
        if self.prototypes is not None:
            was_training = model.training
            model.eval()
            sims = []
            for images, _ in run.stream.test_loader(ctx.task):
                z = F.normalize(model.features(images.to(run.device)).float(), dim=-1)
                sims.append((z @ self.prototypes.T).amax(dim=1).cpu())
            model.train(was_training)
            self.values[ctx.index] = torch.cat(sims).tolist()
        new = F.normalize(class_sums(model, ctx, normalized=True)[0], dim=-1)
        old = self.prototypes
        self.prototypes = new if old is None else torch.cat([old, new])


def measure_similarity(cfg: RunConfig, tasks: int, progress: bool = True) -> dict[str, Any]:
    """Train the first ``tasks`` tasks of ``cfg`` with the probe; a JSON-ready record whose
    ``max_cosine`` maps each task (after the first) to its images' values."""
    probe = PrototypeSimilarityProbe()
    record = train_observed(cfg, tasks, [probe], progress)
    return {**record, "max_cosine": {str(t): v for t, v in probe.values.items()}}


def similarity_or_load(
    cfg: RunConfig, tasks: int, path: Path, progress: bool = True
) -> dict[str, Any]:
    """The record at ``path`` if it has the same settings, else measured and written there."""
    return load_or_measure(
        path, cfg, {"tasks_trained": tasks}, lambda: measure_similarity(cfg, tasks, progress)
    )
