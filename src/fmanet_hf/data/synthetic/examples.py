"""The built-in example clips of `fmanet-hf predict --example` and the demo.

They are SynthME 2.0 clips of the two people kept apart from every training set (the
``examples`` group: eileen-collins and grace-hopper, whose photographs ship with the package's
own dependencies), rendered from a seed that no committed training set uses, so the bundled
model has never seen these people nor these clips. One clip per person and MEGC class: 6 clips.
"""

from __future__ import annotations

from pathlib import Path

#: Seed of the example clips. The committed training and evidence sets use seeds 0 (LOSO group)
#: and 4 (pretraining group); the examples group is never generated for training.
EXAMPLES_SEED = 1
EXAMPLES_FOLDER = "example-synthme2"


def example_dataset(cache_dir: str | Path):
    """The example clips as a loader dataset (rendered into ``cache_dir`` once, then reused).

    Returns:
        A ``datasets.Dataset`` as `fmanet_hf.data.casme2.load_casme2` gives it (MEGC 3 classes),
        6 rows: ``subject`` sub01 (eileen-collins), sub02 (grace-hopper).
    """
    from ..registry import get_dataset_loader
    from .generate import generate_synthme

    root = Path(cache_dir) / EXAMPLES_FOLDER
    generate_synthme(root, generator_version="2.0", people="examples", samples_per_class=1, seed=EXAMPLES_SEED, progress=False)
    return get_dataset_loader("synthme").load(root)


__all__ = ["EXAMPLES_FOLDER", "EXAMPLES_SEED", "example_dataset"]
