"""Dataset loaders by name: the one table that maps ``--dataset casme2`` to `load_casme2`.

The command line (``fmanet-hf prepare/baseline/train/loso/ablate --dataset NAME``), the
export of a run (the ``loso`` command written into a model card) and the demo's SynthME
examples all pick their loader here:

    >>> from fmanet_hf.data.registry import DATASET_NAMES, get_dataset_loader
    >>> DATASET_NAMES
    ('casme2', 'samm', 'smic', 'mmew', 'casme3', 'megc2019', 'synthme')
    >>> dataset = get_dataset_loader("samm").load("/data/SAMM", class_set="megc3")  # doctest: +SKIP

Each loader lives in its dataset's module; this module only names them. Importing it is as
cheap as importing `fmanet_hf.data`.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import DatasetError
from .casme2 import load_casme2
from .casme3 import load_casme3
from .megc import load_megc2019
from .mmew import load_mmew
from .samm import load_samm
from .smic import load_smic

if TYPE_CHECKING:
    import datasets


def load_synthme(root: str | os.PathLike, *, class_set: str = "megc3", **kwargs: Any) -> "datasets.Dataset":
    """Load a SynthME folder (written by ``fmanet-hf synth``): the CASME II layout and loader,
    the 3 MEGC classes by default, ``dataset`` column ``"synthme"``.

    Other keyword arguments go to `fmanet_hf.data.load_casme2`.
    """
    return load_casme2(root, class_set=class_set, dataset_name="synthme", **kwargs)


@dataclass(frozen=True)
class DatasetLoader:
    """One dataset of the registry.

    Attributes:
        name: the registry key and ``--dataset`` value (``"casme2"``).
        title: the dataset's name for people (``"CASME II"``).
        function: the loader, called as ``function(root, class_set=...)`` (or
            ``function(root)`` when ``takes_class_set`` is false).
        takes_class_set: False for a loader whose class set is fixed (the MEGC2019
            composite); `load` then ignores ``class_set``.
    """

    name: str
    title: str
    function: Callable[..., "datasets.Dataset"]
    takes_class_set: bool = True

    def load(self, root: str | os.PathLike, class_set: str | None = None, **options: Any) -> "datasets.Dataset":
        """The dataset at ``root``, in ``class_set`` when given (else the loader's default).

        ``options`` (``sheet``, ``frames_dir``, ``on_invalid``...) go to the loader; None values
        are left out. One the loader does not take is a `DatasetError` naming it."""
        options = {key: value for key, value in options.items() if value is not None}
        accepted = inspect.signature(self.function).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
            refused = sorted(set(options) - set(accepted))
            if refused:
                raise DatasetError(
                    f"{self.name} does not take {', '.join(f'{key}=' for key in refused)}: "
                    f"{self.title} finds its sheets and frames itself."
                )
        if class_set and self.takes_class_set:
            return self.function(root, class_set=class_set, **options)
        return self.function(root, **options)


#: name -> `DatasetLoader`, in the order the command line lists them.
DATASET_LOADERS: Mapping[str, DatasetLoader] = MappingProxyType(
    {
        entry.name: entry
        for entry in (
            DatasetLoader("casme2", "CASME II", load_casme2),
            DatasetLoader("samm", "SAMM", load_samm),
            DatasetLoader("smic", "SMIC", load_smic),
            DatasetLoader("mmew", "MMEW", load_mmew),
            DatasetLoader("casme3", "CAS(ME)^3 part A", load_casme3),
            DatasetLoader("megc2019", "MEGC2019 composite (SMIC + CASME II + SAMM)", load_megc2019, takes_class_set=False),
            DatasetLoader("synthme", "SynthME (synthetic, CASME II layout)", load_synthme),
        )
    }
)
#: The registered names (the choices of ``--dataset``).
DATASET_NAMES: tuple[str, ...] = tuple(DATASET_LOADERS)


def get_dataset_loader(name: str) -> DatasetLoader:
    """The registry entry of ``name``.

    Raises:
        DatasetError: ``name`` is not registered; the message lists the registered names.
    """
    try:
        return DATASET_LOADERS[name]
    except (KeyError, TypeError):
        raise DatasetError(f"Unknown dataset {name!r}; choose one of {list(DATASET_NAMES)}.") from None


def load_dataset_by_name(name: str, root: str | os.PathLike, class_set: str | None = None, **options: Any) -> "datasets.Dataset":
    """Load the dataset ``name`` (one of `DATASET_NAMES`) from ``root``, in ``class_set`` when
    given; ``options`` go to its loader (see `DatasetLoader.load`)."""
    return get_dataset_loader(name).load(root, class_set, **options)


__all__ = ["DATASET_LOADERS", "DATASET_NAMES", "DatasetLoader", "get_dataset_loader", "load_dataset_by_name", "load_synthme"]
