"""The reference rows of a class-incremental table: ``joint`` (upper bound) and ``ncm``
(SimpleCIL; the frozen backbone alone).

- ``joint``: the protocol's LoRA (one pair per adapted slice), head, optimizer, schedule and
  epochs, trained on *all* classes as one task: the stream is built with a single task, so
  the record's accuracy matrix is 1 x 1 (ACC = MAA = the accuracy over all classes; BWT is 0
  by definition, not a measurement). The usual upper bound of CL tables (e.g. "Joint" /
  "Upper bound" rows of InfLoRA and SD-LoRA), here under our protocol.
- ``ncm``: SimpleCIL (Zhou et al., "Revisiting class-incremental learning with pre-trained
  models: generalizability and adaptivity are all you need", IJCV 2024, Sec. 4, "prototype
  classifier"): no training at all; after each task the prototype of each new class is the
  mean of its training images' features (test transform), and a test image takes the class
  of the prototype with the highest cosine similarity among the classes seen.

Choices: ``docs/methods/references.md``.
"""

from __future__ import annotations

from janus.methods.base import Method
from janus.methods.finetune import Finetune
from janus.methods.prototypes import NearestMeanClassifier


class Joint(Finetune, name="joint"):
    """Reference: one LoRA trained on all classes at once (upper bound).

    One LoRA and one head trained on all classes at once (the stream has one task)."""

    single_task = True


class NCM(NearestMeanClassifier, Method, name="ncm"):
    """Reference: SimpleCIL, frozen backbone + class-mean prototypes (no training).

    SimpleCIL: frozen backbone, class-mean prototypes, cosine nearest prototype (the
    arg-max of :func:`janus.methods.prototypes.nearest_prototype_scores` is the highest cosine)."""

    trains = False
