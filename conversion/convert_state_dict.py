#!/usr/bin/env python
"""Convert a plain PyTorch state dict of an FMANet-style network into an fmanet-hf folder.

Research code saves weights as ``torch.save(model.state_dict(), "best.pth")``, often
through ``nn.DataParallel`` / DDP (every key prefixed ``module.``), ``torch.compile``
(``_orig_mod.``), or nested in a checkpoint dict (``{"state_dict": ..., "epoch": 30,
"optimizer": ...}``). This script:

1. loads the file with ``torch.load(weights_only=True)``, which refuses pickled objects
   other than tensors and plain containers; anything else is a `CheckpointError`;
2. unwraps a nested state dict (``--nested-key``, default: the first of ``state_dict``,
   ``model_state_dict``, ``model``, ``net``, ``network`` that holds a dict) and checks that
   every value is a tensor;
3. strips the ``module.`` / ``_orig_mod.`` prefixes;
4. renames every key with an EXPLICIT key map (JSON): an ordered list of regular
   expressions and replacements; the first rule whose pattern matches a key (``re.match``,
   i.e. anchored at the start) rewrites it with ``re.sub(pattern, replacement, key,
   count=1)``. Keys matching an ``ignore`` pattern are dropped (e.g. BatchNorm's
   ``num_batches_tracked``). A key no rule maps is an error: nothing is guessed;
5. builds `FMANetForImageClassification` from ``--config`` (a config.json or JSON of
   `FMANetConfig` arguments), loads the renamed tensors with ``strict=True`` after
   checking every shape, and writes ``save_pretrained`` output (``model.safetensors``,
   config, remote code) plus a processor (``--processor`` folder, or the defaults).

Key-map file format: see ``sample_key_map.json`` (it maps the naming of a typical
research implementation onto this package's parameter names) and ``README.md`` here::

    {"rules": [[PATTERN, REPLACEMENT], ...], "ignore": [PATTERN, ...]}

Usage::

    python conversion/convert_state_dict.py best.pth OUT_DIR --key-map conversion/sample_key_map.json \\
        --config config.json [--processor PROCESSOR_DIR] [--nested-key state_dict] [--dry-run]

This is the ONLY place in fmanet-hf that reads a pickle-based file; everything else loads
safetensors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def _errors():
    from fmanet_hf.errors import CheckpointError

    return CheckpointError


@dataclass
class KeyMap:
    """Ordered (compiled pattern, replacement) rules and ignore patterns."""

    rules: list[tuple[re.Pattern, str]]
    ignore: list[re.Pattern] = field(default_factory=list)

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> "KeyMap":
        """Build from ``{"rules": [[pattern, replacement], ...] or {pattern: replacement}, "ignore": [...]}``."""
        CheckpointError = _errors()
        if not isinstance(payload, Mapping) or "rules" not in payload:
            raise CheckpointError('A key map is a JSON object with "rules" (and optionally "ignore").')
        raw_rules = payload["rules"]
        pairs = list(raw_rules.items()) if isinstance(raw_rules, Mapping) else list(raw_rules)
        rules = []
        for position, pair in enumerate(pairs):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise CheckpointError(f"Key-map rule {position} must be [pattern, replacement] strings, got {pair!r}.")
            try:
                rules.append((re.compile(pair[0]), pair[1]))
            except re.error as error:
                raise CheckpointError(f"Key-map rule {position} has an invalid regular expression {pair[0]!r}: {error}.") from None
        ignore = []
        for pattern in payload.get("ignore", []):
            try:
                ignore.append(re.compile(pattern))
            except re.error as error:
                raise CheckpointError(f"Key-map ignore pattern {pattern!r} is invalid: {error}.") from None
        return cls(rules=rules, ignore=ignore)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "KeyMap":
        """Read a JSON key-map file."""
        CheckpointError = _errors()
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as error:
            raise CheckpointError(f"Cannot read the key map {path}: {error}.") from None

    def rename(self, key: str) -> str | None:
        """The new name of ``key``; None if it is ignored.

        Raises:
            CheckpointError: no rule matches.
        """
        if any(pattern.search(key) for pattern in self.ignore):
            return None
        for pattern, replacement in self.rules:
            if pattern.match(key):
                return pattern.sub(replacement, key, count=1)
        raise _errors()(f"No key-map rule matches the source key {key!r}; add a rule (or an ignore pattern) for it.")


def load_plain_state_dict(path: str | os.PathLike, nested_key: str | None = None) -> dict[str, Any]:
    """Load a ``.pth``/``.pt`` file that holds only tensors, safely.

    Args:
        path: the file.
        nested_key: key of the state dict inside a checkpoint dict; default: the first of
            `NESTED_KEYS` present (or the top level when none is).

    Returns:
        ``{name: tensor}`` with ``module.`` / ``_orig_mod.`` prefixes removed.

    Raises:
        CheckpointError: missing file, a pickle that holds anything but tensors and plain
            containers (``weights_only`` refuses it), no state dict found, or non-tensor
            values in it.
    """
    import pickle

    import torch

    CheckpointError = _errors()
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, ValueError, EOFError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path} is not a plain tensor checkpoint: torch.load(weights_only=True) refused it ({first_line}). It pickles "
            "objects other than tensors (a whole model, an optimizer with custom classes, numpy objects...). Re-save "
            "only the weights in the research code's environment: torch.save(model.state_dict(), 'weights.pth')."
        ) from None
    if not isinstance(payload, Mapping):
        raise CheckpointError(f"{path} holds a {type(payload).__name__}, not a state dict (a mapping of names to tensors).")
    state = payload
    chosen = nested_key
    if chosen is None:
        chosen = next((k for k in NESTED_KEYS if isinstance(payload.get(k), Mapping)), None)
    if chosen is not None:
        if not isinstance(payload.get(chosen), Mapping):
            raise CheckpointError(f"{path} has no dict under {chosen!r}; its top-level keys are {sorted(map(str, payload))[:20]}.")
        state = payload[chosen]
    bad = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor) or not isinstance(k, str))
    if bad:
        raise CheckpointError(
            f"{path}: the state dict{f' under {chosen!r}' if chosen else ''} holds non-tensor entries {bad[:10]}"
            f"{'...' if len(bad) > 10 else ''}. Pass --nested-key with the key that holds the weights."
        )
    cleaned: dict[str, Any] = {}
    for key, tensor in state.items():
        name = key
        stripped = True
        while stripped:
            stripped = False
            for prefix in WRAPPER_PREFIXES:
                if name.startswith(prefix):
                    name, stripped = name[len(prefix) :], True
        if name in cleaned:
            raise CheckpointError(f"{path}: two keys become {name!r} after removing wrapper prefixes.")
        cleaned[name] = tensor
    return cleaned


@dataclass
class ConversionReport:
    """What `convert_state_dict` did: ``renamed`` {source: target}, ``ignored`` source keys."""

    renamed: dict[str, str]
    ignored: list[str]
    out_dir: Path | None


def remap_state_dict(state: Mapping[str, Any], key_map: KeyMap, expected: Mapping[str, Any]) -> tuple[dict[str, Any], ConversionReport]:
    """Rename ``state`` with ``key_map`` and check it against ``expected`` (the target state dict).

    Raises:
        CheckpointError: unmapped keys, two sources on one target, unknown or missing
            targets, or shape mismatches (all listed at once).
    """
    CheckpointError = _errors()
    renamed: dict[str, str] = {}
    ignored: list[str] = []
    result: dict[str, Any] = {}
    problems: list[str] = []
    for key, tensor in state.items():
        try:
            target = key_map.rename(key)
        except CheckpointError as error:
            problems.append(str(error))
            continue
        if target is None:
            ignored.append(key)
            continue
        if target in result:
            problems.append(f"{key!r} and {[k for k, t in renamed.items() if t == target][0]!r} both map to {target!r}.")
            continue
        renamed[key] = target
        result[target] = tensor
    unknown = sorted(set(result) - set(expected))
    missing = sorted(set(expected) - set(result))
    if unknown:
        problems.append(f"mapped to names FMANet does not have: {unknown[:10]}")
    if missing:
        problems.append(f"FMANet parameters nothing maps to: {missing[:10]}{'...' if len(missing) > 10 else ''}")
    for target in sorted(set(result) & set(expected)):
        if tuple(result[target].shape) != tuple(expected[target].shape):
            source = next(k for k, t in renamed.items() if t == target)
            problems.append(
                f"{source!r} -> {target!r}: shape {tuple(result[target].shape)} but FMANet expects {tuple(expected[target].shape)} "
                "(check --config: widths, depths, num_labels)"
            )
    if problems:
        raise CheckpointError("The state dict does not convert:\n- " + "\n- ".join(problems))
    return result, ConversionReport(renamed=renamed, ignored=ignored, out_dir=None)


def _load_config(config: Any):
    from fmanet_hf import FMANetConfig

    CheckpointError = _errors()
    if config is None:
        return FMANetConfig()
    if isinstance(config, FMANetConfig):
        return config
    if isinstance(config, Mapping):
        return FMANetConfig(**config)
    path = Path(config)
    if path.is_dir():
        path = path / "config.json"
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"Cannot read the config {path}: {error}.") from None
    for key in ("transformers_version", "architectures", "auto_map", "model_type", "dtype", "torch_dtype"):
        values.pop(key, None)
    return FMANetConfig(**values)


def convert_state_dict(
    weights: str | os.PathLike,
    out_dir: str | os.PathLike | None,
    key_map: KeyMap | Mapping[str, Any] | str | os.PathLike,
    *,
    config: Any = None,
    processor: str | os.PathLike | None = None,
    nested_key: str | None = None,
):
    """Convert ``weights`` into an fmanet-hf folder at ``out_dir`` (None: check only).

    Returns:
        (the loaded `FMANetForImageClassification`, `ConversionReport`).
    """
    import torch
    from fmanet_hf import FMANetForImageClassification, FMANetImageProcessor
    from fmanet_hf.atomic import atomic_directory

    if not isinstance(key_map, KeyMap):
        key_map = KeyMap.from_dict(key_map) if isinstance(key_map, Mapping) else KeyMap.from_file(key_map)
    model_config = _load_config(config)
    state = load_plain_state_dict(weights, nested_key)
    model = FMANetForImageClassification(model_config)
    expected = model.state_dict()
    renamed_state, report = remap_state_dict(state, key_map, expected)
    with torch.no_grad():
        model.load_state_dict({k: v.to(expected[k].dtype) for k, v in renamed_state.items()}, strict=True)
    model.eval()
    if out_dir is not None:
        image_processor = FMANetImageProcessor.from_pretrained(os.fspath(processor)) if processor else FMANetImageProcessor()
        with atomic_directory(out_dir) as staging:
            model.save_pretrained(staging)
            image_processor.save_pretrained(staging)
        report.out_dir = Path(out_dir)
    return model, report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", help="the .pth / .pt state dict")
    parser.add_argument("out_dir", nargs="?", help="folder to write (omit with --dry-run)")
    parser.add_argument("--key-map", required=True, help="JSON key map (see sample_key_map.json)")
    parser.add_argument("--config", help="config.json (or a folder with one) / JSON of FMANetConfig arguments; default: defaults")
    parser.add_argument("--processor", help="folder with the preprocessor_config.json to save with the model")
    parser.add_argument("--nested-key", help="key of the state dict inside a checkpoint dict (default: auto)")
    parser.add_argument("--dry-run", action="store_true", help="check the conversion, write nothing")
    args = parser.parse_args(argv)
    from fmanet_hf.errors import FMANetError

    if not args.dry_run and not args.out_dir:
        parser.error("give OUT_DIR, or --dry-run")
    try:
        _, report = convert_state_dict(
            args.weights, None if args.dry_run else args.out_dir, args.key_map,
            config=args.config, processor=args.processor, nested_key=args.nested_key,
        )
    except FMANetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for source, target in report.renamed.items():
        print(f"{source} -> {target}")
    for source in report.ignored:
        print(f"{source} (ignored)")
    print(f"{len(report.renamed)} tensors converted, {len(report.ignored)} ignored" + (f"; written to {report.out_dir}" if report.out_dir else " (dry run)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
