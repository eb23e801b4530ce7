"""Seeds derived by hashing, so that one fold's randomness never depends on another's.

Every random choice of a run (a fold's model initialisation and dropout, each epoch's
shuffle, the final model) draws from a seed derived from the master seed and a name, e.g.
``derive_seed(seed, "fold", subject)``: a fold's result does not depend on which folds ran
before it, in which order, or in which process, so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any JSON-able parts, e.g. ``derive_seed(0, "fold", "sub01")``.

    Hash-based, so one fold's seed is independent of the other folds, of their order and
    of whether they ran in this process.
    """
    digest = hashlib.sha256(json.dumps(list(parts), sort_keys=True, default=str).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def fold_seed(seed: int, subject: str) -> int:
    """Seed of the fold holding out ``subject`` (model init, dropout, shuffles)."""
    return derive_seed(int(seed), "fold", str(subject))


__all__ = ["derive_seed", "fold_seed"]
