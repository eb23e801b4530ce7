"""Shared helpers of the bad-input matrix (tests/robustness/).

Every case either asserts one specific `FMANetError` subclass plus the words of its
message that say what was wrong (or how to fix it), or a documented graceful result
checked against an independent expectation. docs/robustness.md lists them all.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def textured_gray():
    """A 64x64 uint8 grey frame with smooth texture (deterministic), for conversion checks."""
    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    image = 128 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0) + 30 * np.sin((x + y) / 11.0)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def textured_rgb(textured_gray):
    """A 64x64x3 uint8 RGB frame whose channels differ (so luma weights matter)."""
    g = textured_gray.astype(np.int32)
    return np.stack([g, np.roll(g, 7, axis=1), 255 - g], axis=-1).astype(np.uint8)


@pytest.fixture
def fast_processor():
    """No alignment, no stabilisation, DIS flow, 16x16 output: fast and deterministic."""
    from fmanet_hf import FMANetImageProcessor

    return FMANetImageProcessor(
        align_faces=False, crop_size=None, stabilization="none", flow_method="dis", size={"height": 16, "width": 16}
    )
