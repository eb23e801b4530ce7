"""A LOSO run folder: its file names, the settings check and the resume check.

Layout (``out_dir``)::

    run_config.json          model config + schedule + data digest; a rerun with other
                             settings into the same folder is refused (RunDirectoryError)
    folds/<subject>.json     one per completed fold (atomic); a rerun skips these folds
    folds/<subject>/         the fold's final model (only with save_fold_models=True)
    predictions.jsonl        one line per sample: sample_id, subject, dataset, true,
                             predicted, probabilities
    results.json             pooled metrics (pooled_loso_metrics), per-fold extras,
                             per-dataset columns, leaky numbers if asked, settings,
                             versions, seed, wall time
    confusion_matrix.png     pooled confusion matrix
    final_model/             with train_final_model=True: a model trained on ALL subjects
                             (save_pretrained + the processor settings), for deployment

Writers: `fmanet_hf.training.engine.run_fold` makes the fold records, the LOSO runner
(`fmanet_hf.training.loso`) writes them, `fmanet_hf.training.loso_results` the pooled files
and `fmanet_hf.training.final_model` ``final_model/``.

Resuming: `check_run_config` compares the folder's ``run_config.json`` with the settings of
the new run and refuses any difference (mixing two experiments); `completed_folds` returns
the fold records already written, refusing records of another run and dropping unreadable
ones (they are trained again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..atomic import atomic_write_json
from ..errors import RunDirectoryError

logger = logging.getLogger(__name__)

RESULTS_FORMAT_VERSION = 1
RUN_CONFIG_NAME = "run_config.json"
RESULTS_NAME = "results.json"
PREDICTIONS_NAME = "predictions.jsonl"
CONFUSION_MATRIX_NAME = "confusion_matrix.png"
FOLDS_DIR = "folds"
FINAL_MODEL_DIR = "final_model"


def fold_file_stem(subject: str) -> str:
    """File-system-safe name of a fold: ``sub01`` -> ``sub01``; ``casme2/sub01`` ->
    ``casme2_sub01-<8 hex>`` (the hash keeps two subjects from sharing a name)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(subject)).strip(".") or "subject"
    if safe != str(subject):
        safe = f"{safe}-{hashlib.sha256(str(subject).encode('utf-8')).hexdigest()[:8]}"
    return safe


def run_config_digest(checked: Any) -> str:
    """Short hash of a run's checked settings; every fold record carries it."""
    return hashlib.sha256(json.dumps(checked, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()[:16]


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                found.append(f"{name}: absent in the folder, {new[key]!r} now")
            elif key not in new:
                found.append(f"{name}: {old[key]!r} in the folder, absent now")
            else:
                found.extend(_differences(old[key], new[key], name))
        return found
    return [] if old == new else [f"{prefix}: {old!r} in the folder, {new!r} now"]


def check_run_config(out_dir: Path, checked: dict[str, Any], info: dict[str, Any]) -> None:
    """Write ``run_config.json``, or refuse when the folder holds a run with other settings."""
    path = out_dir / RUN_CONFIG_NAME
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RunDirectoryError(
                f"{path} is unreadable ({error}); delete the folder {out_dir} or choose another --out."
            ) from None
        differences = _differences(existing.get("checked", {}), checked)
        if differences:
            shown = "; ".join(differences[:8]) + (f"; ... ({len(differences)} in all)" if len(differences) > 8 else "")
            raise RunDirectoryError(
                f"{out_dir} holds a LOSO run with other settings ({shown}). Resuming would mix two "
                f"experiments: use another output folder, or delete {out_dir} to start over."
            )
        return
    if (out_dir / FOLDS_DIR).is_dir() and any(_fold_record_files(out_dir)):
        raise RunDirectoryError(
            f"{out_dir / FOLDS_DIR} holds fold files but {RUN_CONFIG_NAME} is missing, so their settings are "
            f"unknown; delete {out_dir} or choose another output folder."
        )
    atomic_write_json(path, {"format_version": RESULTS_FORMAT_VERSION, "checked": checked, "info": info})


def _fold_record_files(out_dir: Path) -> list[Path]:
    folder = out_dir / FOLDS_DIR
    if not folder.is_dir():
        return []
    # Names starting with "." are temporary files of an interrupted atomic write.
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def completed_folds(out_dir: Path, subjects: Sequence[str], run_digest: str) -> dict[str, dict[str, Any]]:
    """The fold records already on disk, keyed on subject; refuses foreign or corrupt ones."""
    expected = {fold_file_stem(s): s for s in subjects}
    completed: dict[str, dict[str, Any]] = {}
    for path in _fold_record_files(out_dir):
        subject = expected.get(path.stem)
        if subject is None:
            raise RunDirectoryError(
                f"{path} is not a fold of this dataset's subjects; the folder holds another run. "
                "Use another output folder or delete it."
            )
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            # Written atomically, so this is outside damage: redo the fold rather than trust it.
            logger.warning("Fold file %s is unreadable; the fold will be trained again.", path)
            continue
        if record.get("run_config_digest") != run_digest or record.get("subject") != subject:
            raise RunDirectoryError(
                f"{path} was written by a run with other settings (digest {record.get('run_config_digest')} "
                f"vs {run_digest}); use another output folder or delete it."
            )
        completed[subject] = record
    return completed


def software_versions() -> dict[str, str]:
    """Versions of the package, torch, transformers, Python and accelerate, for the records."""
    import torch
    import transformers

    from ..version import __version__

    versions = {
        "fmanet_hf": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
    try:
        import accelerate

        versions["accelerate"] = accelerate.__version__
    except ImportError:  # pragma: no cover - accelerate is a dependency
        pass
    return versions


__all__ = [
    "CONFUSION_MATRIX_NAME",
    "FINAL_MODEL_DIR",
    "FOLDS_DIR",
    "PREDICTIONS_NAME",
    "RESULTS_FORMAT_VERSION",
    "RESULTS_NAME",
    "RUN_CONFIG_NAME",
    "check_run_config",
    "completed_folds",
    "fold_file_stem",
    "run_config_digest",
    "software_versions",
]
