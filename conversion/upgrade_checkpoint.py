#!/usr/bin/env python
"""Upgrade a saved fmanet-hf folder written by an earlier version of the package.

The on-disk format has a version: ``processor_format_version`` in
``preprocessor_config.json`` (absent = 0). A folder's config.json, preprocessor_config.json
and weight names are written together, so that one number versions all three.

`UPGRADES` is the version table: ``UPGRADES[v]`` turns format ``v`` into ``v + 1`` (key
renames in config.json and preprocessor_config.json, optional value transforms, and
weight renames inside model.safetensors). `upgrade_folder` applies the steps from the
folder's version up to `CURRENT_FORMAT_VERSION`, checks that the result loads
(`FMANetConfig`, `FMANetImageProcessor`, the weights' names and shapes), and writes a new
folder (or replaces the old one) atomically. A folder from a NEWER version is refused.

Format history:

- **0**: the layout of the pre-release development snapshots (no published release used
  it; it is defined so that the mechanism is exercised by a test): processor keys
  ``flow_algorithm``, ``output_size`` (an int), ``theta``; config keys ``fusion_theta``,
  ``attention``, ``modulation``; fusion weights named ``fmanet.fusion.theta``; no version key.
- **1** (fmanet-hf 0.1): ``flow_method``, ``size`` {"height", "width"},
  ``mmcof_theta``; ``fusion_init_theta``, ``use_motion_attention``,
  ``use_magnitude_modulation``; ``fmanet.phase_fusion.theta_logits``;
  ``processor_format_version: 1``.
- **2** (current): new processor settings ``face_detection_max_side``,
  ``stabilization_iterations``, ``stabilization_epsilon``, and new defaults for a
  processor created without them (full-resolution DIS flow, detection on a 320 px copy,
  ECC within 5 iterations). The upgrade writes format 1's values out (``None``, 60,
  1e-5, and ``flow_method: "tvl1"`` where the key was missing), so an upgraded folder
  computes exactly what it computed before. A format-1 folder also loads as it is: the
  processor gives missing settings the values of the format the folder declares.

To add format 3: bump ``PROCESSOR_FORMAT_VERSION`` in ``image_processing_fmanet.py``, add
``UPGRADES[2]`` here, and a test that upgrades a folder written in format 2.

Usage::

    python conversion/upgrade_checkpoint.py OLD_DIR [NEW_DIR] [--dry-run]

Only safetensors weights are read (a pickle folder needs ``convert_state_dict.py`` first).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

PROCESSOR_FILE = "preprocessor_config.json"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
VERSION_KEY = "processor_format_version"


def _current_version() -> int:
    from fmanet_hf.image_processing_fmanet import PROCESSOR_FORMAT_VERSION

    return PROCESSOR_FORMAT_VERSION


@dataclass(frozen=True)
class FormatStep:
    """Upgrade from ``from_version`` to ``from_version + 1``.

    Attributes:
        from_version: the format this step reads.
        description: what changed (shown in reports).
        processor_renames / config_renames: old key -> new key.
        processor_transform / config_transform: optional functions on the renamed dict.
        weight_renames: (regex, replacement) applied to every tensor name, in order.
    """

    from_version: int
    description: str
    processor_renames: Mapping[str, str] = field(default_factory=dict)
    config_renames: Mapping[str, str] = field(default_factory=dict)
    processor_transform: Callable[[dict], dict] | None = None
    config_transform: Callable[[dict], dict] | None = None
    weight_renames: Sequence[tuple[str, str]] = ()


def _size_from_int(processor: dict) -> dict:
    """Format 0 stored one side length; format 1 stores {"height", "width"}."""
    size = processor.get("size")
    if isinstance(size, int) and not isinstance(size, bool):
        processor["size"] = {"height": size, "width": size}
    return processor


# Format 1's values of the settings format 2 added or whose default it changed (frozen here:
# an upgrade step must not follow later changes of the package's defaults).
FORMAT_1_VALUES = {
    "flow_method": "tvl1",
    "face_detection_max_side": None,
    "stabilization_iterations": 60,
    "stabilization_epsilon": 1e-5,
}


def _write_out_format_1_values(processor: dict) -> dict:
    """Format 2 changed defaults: make format 1's implicit values explicit."""
    for key, value in FORMAT_1_VALUES.items():
        processor.setdefault(key, value)
    return processor


UPGRADES: dict[int, FormatStep] = {
    0: FormatStep(
        from_version=0,
        description="pre-release names -> 0.1 names; size as {height, width}; version key added",
        processor_renames={"flow_algorithm": "flow_method", "output_size": "size", "theta": "mmcof_theta"},
        config_renames={"fusion_theta": "fusion_init_theta", "attention": "use_motion_attention", "modulation": "use_magnitude_modulation"},
        processor_transform=_size_from_int,
        weight_renames=((r"^fmanet\.fusion\.theta$", "fmanet.phase_fusion.theta_logits"),),
    ),
    1: FormatStep(
        from_version=1,
        description="format 1's values of the settings format 2 added or re-defaulted written out (output unchanged)",
        processor_transform=_write_out_format_1_values,
    ),
}


def _checkpoint_error(message: str):
    from fmanet_hf.errors import CheckpointError

    return CheckpointError(message)


def folder_version(processor: Mapping[str, Any]) -> int:
    """Format version of a folder from its preprocessor_config.json dict (absent key = 0)."""
    value = processor.get(VERSION_KEY, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _checkpoint_error(f"{VERSION_KEY} must be a non-negative integer, got {value!r}.")
    return value


def _rename(values: dict, renames: Mapping[str, str], where: str) -> list[str]:
    changes = []
    for old, new in renames.items():
        if old in values:
            if new in values:
                raise _checkpoint_error(f"{where} has both {old!r} (old name) and {new!r} (new name); remove one.")
            values[new] = values.pop(old)
            changes.append(f"{where}: {old} -> {new}")
    return changes


def upgrade_dicts(
    config: Mapping[str, Any], processor: Mapping[str, Any], weight_names: Sequence[str] = ()
) -> tuple[dict, dict, dict[str, str], list[str]]:
    """Apply every step from the processor's version to the current one.

    Returns:
        (config, processor, {old weight name: new name} for renamed weights, change log).

    Raises:
        CheckpointError: a newer format than this package knows, or a gap in `UPGRADES`.
    """
    config, processor = dict(config), dict(processor)
    current = _current_version()
    version = folder_version(processor)
    if version > current:
        raise _checkpoint_error(
            f"This folder has format {version}, newer than this fmanet-hf (format {current}); upgrade fmanet-hf instead."
        )
    names = {name: name for name in weight_names}
    log: list[str] = []
    while version < current:
        step = UPGRADES.get(version)
        if step is None:
            raise _checkpoint_error(f"No upgrade from format {version} is known (UPGRADES lacks {version}).")
        log.append(f"format {version} -> {version + 1}: {step.description}")
        log += _rename(processor, step.processor_renames, PROCESSOR_FILE)
        log += _rename(config, step.config_renames, CONFIG_FILE)
        if step.processor_transform is not None:
            processor = step.processor_transform(processor)
        if step.config_transform is not None:
            config = step.config_transform(config)
        for original, name in list(names.items()):
            renamed = name
            for pattern, replacement in step.weight_renames:
                renamed = re.sub(pattern, replacement, renamed)
            if renamed != name:
                log.append(f"{WEIGHTS_FILE}: {name} -> {renamed}")
                names[original] = renamed
        version += 1
        processor[VERSION_KEY] = version
    return config, processor, {old: new for old, new in names.items() if old != new}, log


@dataclass
class UpgradeReport:
    """What `upgrade_folder` did."""

    from_version: int
    to_version: int
    changes: list[str]
    out_dir: Path | None


def upgrade_folder(source: str | os.PathLike, target: str | os.PathLike | None = None, *, dry_run: bool = False) -> UpgradeReport:
    """Upgrade the folder ``source`` into ``target`` (default: replace ``source``), atomically.

    Raises:
        CheckpointError: missing files, pickle weights, a newer format, or a result that
            does not load (config/processor invalid, weight names or shapes wrong).
    """
    from safetensors.torch import load_file, save_file

    from fmanet_hf import FMANetConfig, FMANetForImageClassification, FMANetImageProcessor
    from fmanet_hf.atomic import atomic_directory
    from fmanet_hf.errors import FMANetError

    source = Path(source)
    for name in (CONFIG_FILE, PROCESSOR_FILE):
        if not (source / name).is_file():
            raise _checkpoint_error(f"{source} has no {name}; it is not a saved fmanet-hf folder.")
    if not (source / WEIGHTS_FILE).is_file():
        raise _checkpoint_error(
            f"{source} has no {WEIGHTS_FILE}. Convert pickle weights first with conversion/convert_state_dict.py."
        )
    config = json.loads((source / CONFIG_FILE).read_text())
    processor = json.loads((source / PROCESSOR_FILE).read_text())
    tensors = load_file(str(source / WEIGHTS_FILE))
    from_version = folder_version(processor)
    new_config, new_processor, weight_renames, log = upgrade_dicts(config, processor, list(tensors))
    renamed = {weight_renames.get(name, name): tensor for name, tensor in tensors.items()}

    # The result must load with this package before anything is written.
    try:
        model_config = FMANetConfig.from_dict({k: v for k, v in new_config.items() if k not in ("auto_map", "architectures")})
        FMANetImageProcessor.from_dict({k: v for k, v in new_processor.items() if k not in ("auto_map", "image_processor_type")})
    except (FMANetError, TypeError, ValueError) as error:
        raise _checkpoint_error(f"The upgraded config does not load: {error}") from None
    expected = FMANetForImageClassification(model_config).state_dict()
    problems = sorted(set(expected) ^ set(renamed))
    problems += [n for n in set(expected) & set(renamed) if tuple(expected[n].shape) != tuple(renamed[n].shape)]
    if problems:
        raise _checkpoint_error(f"The upgraded weights do not match FMANet: {problems[:10]}")
    report = UpgradeReport(from_version, folder_version(new_processor), log, None)
    if dry_run or (not log and target is None):
        return report  # nothing to change in place
    destination = Path(target) if target is not None else source
    with atomic_directory(destination, overwrite=target is None or destination.exists()) as staging:
        for path in source.iterdir():
            if path.name in (CONFIG_FILE, PROCESSOR_FILE, WEIGHTS_FILE):
                continue
            if path.is_dir():
                shutil.copytree(path, staging / path.name)
            else:
                shutil.copy2(path, staging / path.name)
        (staging / CONFIG_FILE).write_text(json.dumps(new_config, indent=2, sort_keys=True) + "\n")
        (staging / PROCESSOR_FILE).write_text(json.dumps(new_processor, indent=2, sort_keys=True) + "\n")
        save_file({k: v.contiguous() for k, v in renamed.items()}, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
    report.out_dir = destination
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upgrade an fmanet-hf folder written by an earlier package version.")
    parser.add_argument("source", help="the old folder")
    parser.add_argument("target", nargs="?", help="where to write the upgraded folder (default: replace SOURCE)")
    parser.add_argument("--dry-run", action="store_true", help="report the changes, write nothing")
    args = parser.parse_args(argv)
    from fmanet_hf.errors import FMANetError

    try:
        report = upgrade_folder(args.source, args.target, dry_run=args.dry_run)
    except FMANetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if report.from_version == report.to_version:
        print(f"{args.source} is already at format {report.to_version}; nothing to do.")
        return 0
    print("\n".join(report.changes))
    print(f"format {report.from_version} -> {report.to_version}" + (f"; written to {report.out_dir}" if report.out_dir else " (dry run)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
