"""The flags several ``fmanet-hf`` commands share, each declared once, and their argument types.

- ``--dataset/--root/--class-set`` (`add_dataset_arguments`): prepare, baseline, train, loso, ablate;
- ``--flow-method/--flow-params/--face-backend`` (`add_flow_arguments`; `flow_params_argument` parses
  ``--flow-params``, `processor_overrides` turns both into processor arguments);
- the data, training and LOSO groups of train, loso and ablate (`add_training_data_arguments`,
  `add_schedule_arguments`, `add_loso_arguments`) and the schedule defaults;
- argparse types: `assignment_argument`, `flow_params_argument`; numeric types come from
  `fmanet_hf.commands.ranges` (`positive_int`, `epochs_argument`... are aliases of its ranges).

Importing this module is cheap: the processor, datasets and torch are imported by the
functions that need them.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..data.registry import DATASET_NAMES
from ..devices import device_argument
from . import ranges

#: Where prepared inputs (``<cache>/prepared``) and the built-in example clips are kept.
DEFAULT_CACHE = Path(os.environ.get("FMANET_CACHE", Path.home() / ".cache" / "fmanet-hf"))

#: Defaults of the schedule options (docs/training.md says where they come from). "auto":
#: about 120 optimiser steps per model (`fmanet_hf.training.loso.auto_epochs`): 15 epochs
#: on a 12-subject SynthME LOSO, 5 on a MEGC-size one.
DEFAULT_EPOCHS = "auto"
DEFAULT_BATCH_SIZE = 16
DEFAULT_LEARNING_RATE = 2e-3
DEFAULT_WEIGHT_DECAY = 1e-4

FLOW_METHODS = ("tvl1", "dis", "farneback")
#: ``--precision`` choices (`fmanet_hf.training.schedule.PRECISIONS`, not imported here: it imports numpy).
PRECISIONS = ("fp32", "bf16")
#: ``--face-backend`` choices (`fmanet_hf.face.FACE_BACKENDS`, not imported here: it imports OpenCV).
FACE_BACKENDS = ("dlib", "mediapipe")
FACE_BACKEND_HELP = (
    "what finds the face: dlib (default; its 68-point model is licensed for non-commercial use only) or "
    "mediapipe (Apache-2.0; needs `pip install --no-deps mediapipe==0.10.21`)"
)


# --------------------------------------------------------------------------------------
# Argument types
# --------------------------------------------------------------------------------------
#: The numeric types live in `fmanet_hf.commands.ranges` (one place for every range); these
#: names stay for the commands and callers that import them from here.
positive_int = ranges.COUNT
epochs_argument = ranges.EPOCHS
seed_list_argument = ranges.SEEDS
ema_decay_argument = ranges.EMA_DECAY


def assignment_argument(text: str) -> tuple[str, Any]:
    """``--set KEY=VALUE``: (key, JSON value, or the bare word when it is not JSON)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare word such as gelu
    return key.strip(), value


def folder_argument(text: str) -> str:
    """A folder that may not exist yet (``--cache-dir``): refused when it is empty, names a file
    or lies under one (`fmanet_hf.output_paths.check_folder_path`)."""
    from ..errors import OutputPathError
    from ..output_paths import check_folder_path

    try:
        check_folder_path(text, flag="the folder")
    except OutputPathError as error:
        raise argparse.ArgumentTypeError(str(error).replace("the folder ", "", 1)) from None
    return text


def flow_params_argument(text: str) -> dict[str, Any]:
    """``--flow-params``: ``opencv`` (OpenCV's own TV-L1 defaults, what MER papers and runs
    recorded before the faster default ran with) or a JSON object of overrides."""
    from ..flow import OPENCV_TVL1_PARAMS

    if text.strip().lower() == "opencv":
        return dict(OPENCV_TVL1_PARAMS)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected 'opencv' or a JSON object such as '{{\"nscales\": 5}}', got {text!r}")
    return value


def processor_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """FMANetImageProcessor arguments of ``--flow-method``, ``--flow-params`` and ``--face-backend``."""
    from ..flow import OPENCV_TVL1_PARAMS

    overrides: dict[str, Any] = {}
    if getattr(args, "face_backend", None):
        overrides["face_backend"] = args.face_backend
    if getattr(args, "flow_method", None):
        overrides["flow_method"] = args.flow_method
    if getattr(args, "flow_params", None):
        overrides["flow_params"] = args.flow_params
        # `--flow-params opencv` names TV-L1 parameters; the default method is DIS since format 2.
        if "flow_method" not in overrides and args.flow_params == OPENCV_TVL1_PARAMS:
            overrides["flow_method"] = "tvl1"
    return overrides


# --------------------------------------------------------------------------------------
# Flags (``parser`` may be an argparse parser or an argument group)
# --------------------------------------------------------------------------------------
def add_dataset_arguments(parser: Any) -> None:
    """``--dataset`` (a name of `fmanet_hf.data.registry`), ``--root``, ``--class-set``, and the
    loader options ``--sheet``, ``--frames-dir``, ``--on-invalid`` (see `dataset_options`)."""
    parser.add_argument("--dataset", choices=DATASET_NAMES, default="synthme")
    parser.add_argument("--root", default="synthme", help="the dataset folder")
    parser.add_argument("--class-set", help="class set of the loader (e.g. 5class, megc3)")
    parser.add_argument("--sheet", metavar="PATH", help="the annotation sheet, when the dataset folder holds none or several")
    parser.add_argument("--frames-dir", metavar="FOLDER", help="the folder of subject folders, when it is not found under --root")
    parser.add_argument(
        "--on-invalid", choices=("raise", "skip"), default=None,
        help="a sheet row that cannot be used: stop with an error naming it (default), or skip it and count it",
    )


def dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    """The loader options of ``--sheet``, ``--frames-dir`` and ``--on-invalid`` that were given.
    Paths are made absolute: on the command line they are relative to the current folder (the
    loaders read a relative one under the dataset root)."""
    options = {"on_invalid": getattr(args, "on_invalid", None)}
    for name in ("sheet", "frames_dir"):
        value = getattr(args, name, None)
        options[name] = os.path.abspath(os.path.expanduser(value)) if value else None
    return {key: value for key, value in options.items() if value is not None}


def add_flow_arguments(parser: Any) -> None:
    """The processor's flags: ``--flow-method``, ``--flow-params`` and ``--face-backend`` (see
    `processor_overrides`)."""
    parser.add_argument("--flow-method", choices=FLOW_METHODS, help="optical flow (default: dis, full resolution; tvl1 is the field's standard)")
    parser.add_argument(
        "--flow-params", type=flow_params_argument,
        help="'opencv' (OpenCV's own TV-L1 defaults, as in published pipelines; implies --flow-method tvl1) or a JSON object of flow-solver settings",
    )
    add_face_backend_argument(parser)


def add_face_backend_argument(parser: Any) -> None:
    """``--face-backend dlib|mediapipe`` (predict and demo, where the processor comes with the
    model, and every command that builds one: `add_flow_arguments`)."""
    parser.add_argument("--face-backend", choices=FACE_BACKENDS, help=FACE_BACKEND_HELP)


def add_face_missing_argument(parser: Any) -> None:
    """``--on-face-missing raise|skip`` (see `fmanet_hf.data.prepare.prepare_dataset`)."""
    parser.add_argument(
        "--on-face-missing", choices=("raise", "skip"), default="raise",
        help="a clip whose face is not found: stop with an error (default), or skip it and "
        "list it (the skipped ids are printed and kept in the cache manifest)",
    )


def add_training_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``data`` group of train, loso and ablate: the dataset and how its inputs are prepared."""
    group = parser.add_argument_group("data")
    add_dataset_arguments(group)
    group.add_argument("--processor", help="folder with a preprocessor_config.json to prepare the inputs with")
    add_flow_arguments(group)
    group.add_argument("--size", type=ranges.IMAGE_SIDE, help="side of pixel_values in pixels (default: the processor's, 64)")
    group.add_argument("--num-proc", type=ranges.COUNT, default=None, help="preparation worker processes (default: all cores)")
    group.add_argument("--cache-dir", type=folder_argument, default=str(DEFAULT_CACHE), help="prepared inputs go to <cache-dir>/prepared")
    add_face_missing_argument(group)


def add_schedule_arguments(parser: argparse.ArgumentParser, *, out_help: str) -> None:
    """The ``training`` group of train, loso and ablate: output folder, schedule, model config."""
    group = parser.add_argument_group("training")
    group.add_argument("--out", required=True, help=out_help)
    group.add_argument(
        "--epochs", type=epochs_argument, default=DEFAULT_EPOCHS,
        help="training epochs, or 'auto' (default): about 120 optimiser steps per model, from the data's size",
    )
    group.add_argument("--batch-size", type=ranges.COUNT, default=DEFAULT_BATCH_SIZE, help="global batch size")
    group.add_argument("--lr", type=ranges.LEARNING_RATE, default=DEFAULT_LEARNING_RATE, help="peak learning rate")
    group.add_argument("--weight-decay", type=ranges.PENALTY, default=DEFAULT_WEIGHT_DECAY)
    group.add_argument("--seed", type=ranges.SEED, default=0)
    group.add_argument("--class-weighting", choices=("none", "balanced"), default="none")
    group.add_argument("--config", help="FMANetConfig arguments: a JSON file, or a folder with config.json")
    group.add_argument(
        "--set", action="append", type=assignment_argument, metavar="KEY=VALUE",
        help="override one FMANetConfig argument (JSON value), e.g. --set hidden_sizes=[32,64]; repeatable",
    )
    add_device_argument(group, help="where to train: auto (default: CUDA, else MPS, else CPU), cpu, cuda or mps")
    group.add_argument("--cpu", action="store_true", help="the same as --device cpu (kept for older scripts)")


def add_device_argument(parser: Any, *, help: str) -> None:
    """``--device auto|cpu|cuda|mps`` (`fmanet_hf.devices`; ``cuda:N`` too): predict, demo and the training commands."""
    parser.add_argument("--device", type=device_argument, default="auto", metavar="{auto,cpu,cuda,mps}", help=help)


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``recipe`` group of loso, ablate and pretrain: the small-data training switches and
    ``--precision``."""
    group = parser.add_argument_group("recipe (docs/training.md)")
    group.add_argument(
        "--augment", choices=("none", "flow"), default="none",
        help="'flow': flow-consistent mirror/rotation/zoom of each training batch (both phases alike); default none",
    )
    group.add_argument(
        "--ema-decay", type=ema_decay_argument, default=0.0,
        help="score an exponential moving average of the weights with this decay, e.g. 0.99 (default 0: off)",
    )
    group.add_argument(
        "--precision", choices=PRECISIONS, default="fp32",
        help="arithmetic of the training steps: fp32 (default) or bf16 (bfloat16 autocast of the forward pass; "
        "weights, optimiser state and loss stay float32; needs a CPU with AVX512 or an Ampere+ GPU)",
    )


def add_init_argument(parser: argparse.ArgumentParser) -> None:
    """``--init-from``: start from pretrained weights (loso, ablate, train)."""
    parser.add_argument(
        "--init-from", metavar="FOLDER",
        help="start every model from the weights in FOLDER (written by `fmanet-hf pretrain`) instead of at random",
    )


def add_loso_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``LOSO`` group of loso and ablate."""
    group = parser.add_argument_group("LOSO")
    group.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    group.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine")
    group.add_argument(
        "--record-leaky-best-epoch", action="store_true",
        help="also record the per-fold best epoch chosen ON THE TEST SUBJECT (leaky; labelled; for comparison only)",
    )
    group.add_argument(
        "--fold-parallel", action="store_true",
        help="with several processes, give each process whole folds instead of splitting batches",
    )
    group.add_argument(
        "--fold-workers", type=ranges.COUNT, default=1,
        help="single process: train this many folds at once in worker processes (CPU: cores split between "
        "them, e.g. the number of cores; GPU: they share it). Default 1",
    )
    group.add_argument(
        "--folds-at-once", type=ranges.FOLDS_AT_ONCE, default="auto",
        help="train this many folds (and, in ablate, seeds) as one batched computation; bounds memory. 1: one fold "
        "after another; 0 or auto (default): as many as fit on a GPU, one at a time on CPU (docs/performance.md)",
    )


__all__ = [
    "add_init_argument",
    "ema_decay_argument",
    "seed_list_argument",
    "add_recipe_arguments",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CACHE",
    "DEFAULT_EPOCHS",
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_WEIGHT_DECAY",
    "FLOW_METHODS",
    "add_dataset_arguments",
    "dataset_options",
    "add_face_backend_argument",
    "add_flow_arguments",
    "add_loso_arguments",
    "add_schedule_arguments",
    "add_face_missing_argument",
    "add_training_data_arguments",
    "assignment_argument",
    "epochs_argument",
    "flow_params_argument",
    "folder_argument",
    "positive_int",
    "processor_overrides",
]
