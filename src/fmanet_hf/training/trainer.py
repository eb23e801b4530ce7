"""Fine-tuning FMANet with `transformers.Trainer`.

Recipe (what `train_with_trainer` does; every step is plain transformers)::

    from transformers import TrainingArguments
    from fmanet_hf import FMANetConfig, FMANetForImageClassification
    from fmanet_hf.training.collate import FMANetDataCollator
    from fmanet_hf.training.metrics import make_compute_metrics
    from fmanet_hf.training.trainer import FMANetTrainer

    config = FMANetConfig(image_size=64, id2label={0: "negative", 1: "positive", 2: "surprise"})
    args = TrainingArguments(
        output_dir="runs/ft", num_train_epochs=30, learning_rate=1e-3, weight_decay=1e-4,
        per_device_train_batch_size=16, lr_scheduler_type="cosine",
        eval_strategy="epoch",        # transformers 5: not evaluation_strategy
        save_strategy="no",           # no checkpoint is chosen on the evaluation set
        remove_unused_columns=False,  # the collator turns label_id into labels
        label_names=["labels"], use_cpu=False, report_to="none", seed=0, data_seed=0,
    )
    trainer = FMANetTrainer(
        model=FMANetForImageClassification(config), args=args,
        train_dataset=train, eval_dataset=test,        # from prepare_dataset
        data_collator=FMANetDataCollator(), processing_class=processor,
        compute_metrics=make_compute_metrics(num_classes=3),
        preprocess_logits_for_metrics=keep_logits_only,
        class_weights=None,           # or balanced weights (see class_weights_for)
    )
    trainer.train(); trainer.save_model("runs/ft/model")

transformers 5 removed ``evaluation_strategy``, ``no_cuda`` and ``tokenizer=``: passing them
raises ``TypeError``. ``report_to="tensorboard"`` needs the ``tensorboard`` package.

An evaluation set here is ONE pool: its scores are a single split's. For the field's
protocol (leave-one-subject-out, pooled) use `fmanet_hf.training.loso.run_loso`.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from ..atomic import FILE_MODE
from ..errors import FMANetConfigError, TrainingDivergedError
from ..output_paths import checked_output_path, ensure_output_folder
from .collate import FMANetDataCollator, class_names_of
from .engine import class_weights_for
from .initialization import load_initial_weights
from .model_config import build_model_config, default_model_factory
from .schedule import CLASS_WEIGHTINGS
from .seeds import derive_seed

logger = logging.getLogger(__name__)


def keep_logits_only(logits: Any, labels: Any) -> torch.Tensor:
    """``preprocess_logits_for_metrics``: keep the (B, C) logits, drop the attention maps and
    phase weights FMANet also returns (they would be gathered over the whole evaluation set)."""
    return logits[0] if isinstance(logits, (tuple, list)) else logits


class FMANetTrainer(Trainer):
    """`transformers.Trainer` whose loss is a (optionally class-weighted) cross-entropy.

    Args:
        class_weights: optional (C,) weights of the cross-entropy; None is the plain mean.
        *args, **kwargs: as `transformers.Trainer`.
    """

    # compute_loss returns a per-batch mean; the Trainer must divide it for gradient accumulation.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, class_weights: torch.Tensor | Sequence[float] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.class_weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        # FMANet's forward takes **kwargs, which the Trainer reads as "the model normalises its
        # loss by num_items_in_batch"; it does not, and our compute_loss never passes it.
        self.model_accepts_loss_kwargs = False

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: Mapping[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ):
        """Cross-entropy of ``model(pixel_values)`` against ``inputs["labels"]``, weighted by
        ``class_weights`` when set: sum_i w_{y_i} CE_i / sum_i w_{y_i} over the batch."""
        labels = inputs["labels"]
        outputs = model(pixel_values=inputs["pixel_values"])
        logits = outputs.logits if hasattr(outputs, "logits") else outputs[0]
        weight = None if self.class_weights is None else self.class_weights.to(device=logits.device, dtype=torch.float32)
        loss = F.cross_entropy(logits.float(), labels.to(logits.device).long(), weight=weight)
        if hasattr(outputs, "loss"):
            outputs.loss = loss
        return (loss, outputs) if return_outputs else loss


@dataclass
class TrainerRun:
    """Result of `train_with_trainer`.

    Attributes:
        trainer: the `FMANetTrainer` (its ``model`` is the trained model).
        train_metrics: ``trainer.train()``'s metrics (``train_loss``, ``train_runtime``...).
        eval_metrics: final ``trainer.evaluate()`` metrics (``eval_accuracy``, ``eval_uf1``,
            ``eval_uar``, ``eval_loss``...), or ``{}`` without an evaluation set.
        class_weights: the (C,) cross-entropy weights used, or None.
    """

    trainer: FMANetTrainer
    train_metrics: dict[str, float]
    eval_metrics: dict[str, float]
    class_weights: list[float] | None


def train_with_trainer(
    train_dataset: Any,
    eval_dataset: Any = None,
    *,
    model_config: Any = None,
    output_dir: str | os.PathLike,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float = 1e-4,
    seed: int = 0,
    class_weighting: str = "none",
    report_to: str | list[str] = "none",
    processor: Any = None,
    use_cpu: bool | None = None,
    lr_scheduler_type: str = "cosine",
    save_model: bool = True,
    progress: bool = True,
    class_names: Sequence[str] | None = None,
    training_args: Mapping[str, Any] | None = None,
    init_from: str | os.PathLike | None = None,
) -> TrainerRun:
    """Fine-tune a fresh FMANet on a prepared dataset with `transformers.Trainer`.

    Args:
        train_dataset: prepared ``datasets.Dataset`` (`prepare_dataset`): ``pixel_values``
            (2 * C, H, W) float32 and ``label_id`` columns.
        eval_dataset: optional prepared dataset evaluated after every epoch (accuracy, UF1,
            UAR over that set). Nothing is chosen on it: the model kept is the final one.
        model_config: `FMANetConfig`, dict of its arguments, or None; image size and classes
            are taken from the data.
        output_dir: the Trainer's output folder; with ``save_model`` the model, its config
            and the processor (if given) are saved there.
        epochs: training epochs.
        batch_size: per-device batch size.
        learning_rate: peak learning rate (AdamW, ``lr_scheduler_type`` decay).
        weight_decay: AdamW weight decay.
        seed: seeds the model init (``Trainer`` ``seed``) and the data order (``data_seed``).
        class_weighting: ``"none"`` or ``"balanced"`` (n / (K * n_c) from the training labels).
        report_to: ``"none"``, ``"tensorboard"`` (needs the tensorboard package), ...
        processor: an `FMANetImageProcessor` saved with the model (``processing_class``).
        use_cpu: force CPU (default: CPU when no CUDA device is available).
        lr_scheduler_type: Trainer scheduler name (``"cosine"``, ``"linear"``, ``"constant"``).
        save_model: save the final model (and processor) to ``output_dir``.
        progress: Trainer progress bars; False: no bars and no printed log lines.
        class_names: override the dataset's class names.
        training_args: further `TrainingArguments` keywords (they override the ones above;
            removed transformers 4 names such as ``evaluation_strategy`` raise TypeError).
        init_from: start from the weights of this folder (`fmanet-hf pretrain` output;
            `fmanet_hf.training.initialization.load_initial_weights`) instead of at random.

    Returns:
        A `TrainerRun`.
    """
    if class_weighting not in CLASS_WEIGHTINGS:
        raise FMANetConfigError(f"class_weighting must be one of {list(CLASS_WEIGHTINGS)}, got {class_weighting!r}.")
    from .metrics import make_compute_metrics

    names = class_names_of(train_dataset, class_names)
    first = train_dataset[0]["pixel_values"]
    shape = tuple(first.shape) if hasattr(first, "shape") else (len(first), len(first[0]), len(first[0][0]))
    config = build_model_config(model_config, names, (int(shape[1]), int(shape[2])), int(shape[0]))
    weights = None
    if class_weighting == "balanced":
        labels = torch.as_tensor(train_dataset.select_columns(["label_id"]).with_format(None)["label_id"])
        weights = class_weights_for(labels, len(names), "balanced")

    arguments: dict[str, Any] = dict(
        output_dir=str(output_dir),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=max(batch_size, 32),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        lr_scheduler_type=lr_scheduler_type,
        seed=seed,
        data_seed=seed,
        eval_strategy="epoch" if eval_dataset is not None else "no",
        save_strategy="no",
        logging_strategy="epoch",
        report_to=report_to,
        use_cpu=(not torch.cuda.is_available()) if use_cpu is None else use_cpu,
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=0,
        disable_tqdm=not progress,
    )
    arguments.update(training_args or {})
    args = TrainingArguments(**arguments)
    if save_model and args.should_save:
        ensure_output_folder(checked_output_path(output_dir, flag="--out"), "train")

    # Seed the init explicitly (Trainer seeds only inside train()), from (seed, "trainer").
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(int(seed), "trainer"))
        model = default_model_factory(config)
        if init_from is not None:
            load_initial_weights(model, init_from)
    trainer = FMANetTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=FMANetDataCollator(),
        processing_class=processor,
        compute_metrics=make_compute_metrics(len(names)) if eval_dataset is not None else None,
        preprocess_logits_for_metrics=keep_logits_only if eval_dataset is not None else None,
        class_weights=weights,
    )
    if not progress:
        # Without tqdm the Trainer prints each log dict to stdout instead (PrinterCallback);
        # progress=False means silence (`fmanet-hf train --json` keeps stdout pure JSON).
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    train_output = trainer.train()
    # Trainer's logged loss skips NaN steps (logging_nan_inf_filter), so check the weights:
    # saved, a NaN model would predict argmax(NaN) = the first class for every input.
    weights_finite = all(bool(torch.isfinite(p).all()) for p in trainer.model.parameters())
    if not (weights_finite and math.isfinite(float(train_output.training_loss))):
        raise TrainingDivergedError(
            f"Training diverged: the weights became NaN or infinite (mean logged loss {train_output.training_loss:.4g}), "
            f"so nothing was saved to {output_dir}. Lower the learning rate (--lr, now {learning_rate:g}), or "
            "check the prepared inputs for NaN or huge values."
        )
    eval_metrics = dict(trainer.evaluate()) if eval_dataset is not None else {}
    if save_model:
        trainer.save_model(str(output_dir))
        if args.should_save:
            # transformers writes the weights 0600; the folder's readers expect what open() gives.
            for weights_file in Path(output_dir).glob("model*.safetensors"):
                os.chmod(weights_file, FILE_MODE)
    return TrainerRun(
        trainer=trainer,
        train_metrics=dict(train_output.metrics),
        eval_metrics=eval_metrics,
        class_weights=None if weights is None else [float(w) for w in weights],
    )


__all__ = ["FMANetTrainer", "TrainerRun", "keep_logits_only", "train_with_trainer"]
