"""Machine-checked claims of the reproduced papers (see ``proofs/README.md``).

Each paper has one module here (``janus_lora``, later ``seqlora``, ``sdlora``, ``eblora``)
whose claims register themselves in :data:`proofs.core.REGISTRY` when it is imported;
:func:`load_all` imports every such module.
"""

from __future__ import annotations

import importlib
import pkgutil

_NOT_CLAIMS = {"core"}


def load_all() -> None:
    """Import every claim module of this package (all submodules but ``core`` and ``_*``)."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in _NOT_CLAIMS and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
