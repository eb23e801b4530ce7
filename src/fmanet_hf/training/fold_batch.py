"""Several models trained as one batched computation: the fold models of a LOSO run (and the
(seed, fold) pairs of an ablation) stacked and stepped together.

`train_models_batched` is `fmanet_hf.training.engine.train_model` for K models at once. Their
weights are stacked along a new leading dimension (``torch.func.stack_module_state``) and one
``torch.func.vmap`` of ``grad(functional_call(model))`` computes all K gradients in one pass
(for convolutions the batched kernels are grouped convolutions), so a small model fills a GPU
instead of leaving it idle. Everything that makes a fold a fold stays per model:

- data: model k draws its batches from ITS training rows only, in the order
  ``derive_seed(seed_k, "epoch", epoch)`` gives, as `train_model` does; the leak check of
  each fold reads the samples its optimiser saw, unchanged;
- augmentation: drawn for model k's batch from its own stream
  ``derive_seed(seed_k, "augment", epoch)``, exactly as per-model training draws it;
- dropout: each ``nn.Dropout`` keeps a unit with uniform noise drawn from the model's own
  generator (``derive_seed(seed_k, "dropout")``), so a fold's masks never depend on which
  folds share its batch. They are not the masks per-model training draws from torch's global
  generator (same distribution, other draws); with dropout 0 the two paths agree up to float
  rounding;
- precision: ``schedule.precision="bf16"`` runs each model's forward pass under bfloat16
  autocast, as `train_model` does;
- optimiser (AdamW or SGD, the same element-wise update and parameter groups as
  `train_model`), learning-rate schedule, step count, class weights and weight EMA: per
  model. Models with fewer optimiser steps (a smaller training set) finish early: from then
  on they get empty (zero-weight) batches and their weights, optimiser state and EMA are left
  as they are (masked).

Batches of unequal length (a fold's short last batch) are padded with zero-weight rows; the
model is per sample (GroupNorm), so padding changes nothing but float rounding. Models whose
output depends on the whole batch (BatchNorm) or that draw other random numbers cannot be
batched this way: `batching_obstacle` says so and the caller trains them one by one.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FMANetConfigError, FMANetError, TrainingDivergedError
from .augmentation import FlowAugmentation, transform_motion_channels
from .collate import PreparedTensors
from .precision import check_precision, training_autocast
from .schedule import TrainingSchedule
from .seeds import derive_seed
from .stacked_optimizer import StackedOptimizer, per_model_column

#: Normalisations whose output mixes the samples of a batch, or which keep running statistics.
_BATCH_COUPLED = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.instancenorm._InstanceNorm)
#: Random layers other than plain element-wise dropout (their noise has other shapes or laws).
_OTHER_RANDOM = (torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d, torch.nn.AlphaDropout, torch.nn.FeatureAlphaDropout)

#: ``folds_at_once`` "auto" on CPU: 1 (one fold after another). On a CPU the batched kernels
#: (grouped convolutions) do the same arithmetic as K separate ones no faster, and vmap's
#: layout copies come on top: 4 MEGC-size folds at once took 1.5x the CPU time of the
#: per-fold loop (docs/performance.md, "Fold batching").
CPU_AUTO_FOLDS_AT_ONCE = 1
#: Share of the accelerator's free memory that "auto" plans to fill.
AUTO_MEMORY_SHARE = 0.5



@dataclass
class BatchMember:
    """One model of a batch.

    Attributes:
        name: the model's name for the observer (a fold's held-out subject).
        seed: its seed (a fold's `fold_seed`): shuffles, augmentation and dropout.
        train_indices: row indices of its training samples in the shared data.
        model: the freshly initialised model (trained weights are written back into it).
        observer: `TrainingObserver` hooks of this model (None: none).
        on_epoch_end: ``on_epoch_end(epoch, model)`` after each of its epochs (None: none).
    """

    name: str
    seed: int
    train_indices: np.ndarray
    model: torch.nn.Module
    observer: Any = None
    on_epoch_end: Callable[[int, torch.nn.Module], None] | None = None


def batching_obstacle(model: torch.nn.Module) -> str | None:
    """Why ``model`` cannot be trained in a batch of models (None: it can).

    Batch-coupled normalisations (BatchNorm, InstanceNorm with running statistics) would mix a
    fold's samples with padding rows and keep running buffers that vmap cannot update; random
    layers other than ``nn.Dropout`` have no per-model noise here.
    """
    for name, module in model.named_modules():
        if isinstance(module, _BATCH_COUPLED):
            return f"{name or 'the model'} is a {type(module).__name__} (batch statistics)"
        if isinstance(module, _OTHER_RANDOM):
            return f"{name or 'the model'} is a {type(module).__name__} (no per-model noise for it)"
    return None


class _NoiseDropout(torch.nn.Module):
    """``nn.Dropout`` that keeps a unit where a given uniform noise is >= p (noise per model)."""

    def __init__(self, p: float, feed: "_NoiseFeed") -> None:
        super().__init__()
        self.p = float(p)
        self.feed = feed

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return hidden
        if self.feed.recording is not None:
            self.feed.recording.append(tuple(hidden.shape[1:]))
            return hidden
        noise = self.feed.next()
        return hidden * (noise >= self.p).to(hidden.dtype) * (1.0 / (1.0 - self.p))


class _NoiseFeed:
    """The noise tensors of one forward pass, handed to the dropout layers in call order."""

    def __init__(self) -> None:
        self.recording: list[tuple[int, ...]] | None = None
        self.pending: list[torch.Tensor] = []

    def next(self) -> torch.Tensor:
        if not self.pending:
            raise FMANetError("a dropout layer ran more often than in the shape probe; train this model per fold.")
        return self.pending.pop(0)


def _template_of(model: torch.nn.Module, feed: _NoiseFeed) -> torch.nn.Module:
    """A copy of ``model`` whose ``nn.Dropout`` layers take their noise from ``feed``."""
    template = copy.deepcopy(model)
    for name, module in list(template.named_modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is torch.nn.Dropout:
                setattr(module, child_name, _NoiseDropout(child.p, feed))
    return template


def _logits_of(outputs: Any) -> torch.Tensor:
    if hasattr(outputs, "logits"):
        return outputs.logits
    if isinstance(outputs, (tuple, list)):
        return outputs[0]
    return outputs


@dataclass
class _MemberState:
    """Where one model is in its schedule."""

    train_indices: np.ndarray
    class_weights: torch.Tensor
    steps_per_epoch: int
    total_steps: int
    dropout_stream: torch.Generator
    epoch: int = 0
    position: int = 0
    order: np.ndarray | None = None
    augment_stream: torch.Generator | None = None
    loss_sum: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.float64))
    weight_sum: float = 0.0


def train_models_batched(
    members: Sequence[BatchMember],
    data: PreparedTensors,
    schedule: TrainingSchedule,
    *,
    device: Any = "cpu",
    progress: bool = False,
    description: str = "",
) -> list[Any]:
    """Train the ``members``' models together; see the module docstring.

    Args:
        members: K `BatchMember` (K >= 1), each with a freshly initialised model (create it
            under the member's seed, as `run_fold` does); all of the same architecture.
        data: the dataset in memory; model k reads only its ``train_indices`` rows.
        schedule: the fixed schedule of every model (epochs resolved).
        device: where the stacked weights live and the batches are computed.
        progress: a progress bar over the optimiser steps.
        description: the progress bar's label.

    Returns:
        K `fmanet_hf.training.engine.TrainingLog`, one per member; each member's ``model``
        now holds its trained weights (the EMA weights with ``schedule.ema_decay > 0``), on
        ``device``.

    Raises:
        FMANetConfigError: epochs not resolved, or a model that cannot be batched
            (`batching_obstacle`).
        FMANetError: a member has no training samples.
    """
    from torch.func import functional_call, grad, stack_module_state, vmap

    from .engine import TrainingLog, TrainingObserver, class_weights_for, describe_training

    if schedule.epochs_rule == "auto":
        raise FMANetConfigError("train_models_batched needs a number of epochs; resolve epochs='auto' first.")
    if not members:
        return []
    for member in members:
        obstacle = batching_obstacle(member.model)
        if obstacle:
            raise FMANetConfigError(f"cannot train {member.name!r} in a batch of models: {obstacle}. Train it per fold.")
        if len(member.train_indices) == 0:
            raise FMANetError(f"fold {member.name!r} has no training samples.")
    started = time.perf_counter()
    device = torch.device(device)
    check_precision(schedule.precision, device)
    count = len(members)
    observers = [member.observer or TrainingObserver() for member in members]
    models = [member.model.to(device).train() for member in members]
    feed = _NoiseFeed()
    template = _template_of(models[0], feed).train()
    trainable_names = {name for name, p in models[0].named_parameters() if p.requires_grad}
    parameters, buffers = stack_module_state(models)
    parameters = {name: tensor.detach() for name, tensor in parameters.items()}
    trainable = {name: parameters[name] for name in parameters if name in trainable_names}
    constants = {**{name: parameters[name] for name in parameters if name not in trainable_names}, **buffers}

    # Shapes of the dropout noise: one probe forward of one sample, in training mode.
    feed.recording = []
    with torch.no_grad():
        template(pixel_values=data.pixel_values[:1].to(device))
    noise_shapes, feed.recording = feed.recording, None

    num_classes = len(data.class_names)
    batch_size = int(schedule.batch_size)
    states = []
    for member in members:
        indices = np.asarray(member.train_indices, dtype=np.int64)
        steps_per_epoch = math.ceil(indices.size / batch_size)
        states.append(
            _MemberState(
                train_indices=indices,
                class_weights=class_weights_for(data.labels[indices], num_classes, schedule.class_weighting),
                steps_per_epoch=steps_per_epoch,
                total_steps=steps_per_epoch * int(schedule.epochs),
                dropout_stream=torch.Generator().manual_seed(derive_seed(int(member.seed), "dropout")),
            )
        )
    logs = [TrainingLog() for _ in members]
    augmentation = None
    if schedule.augmentation == "flow":
        augmentation = FlowAugmentation(
            channels_per_phase=int(data.pixel_values.shape[1]) // 2, scale_vectors=bool(data.vectors_in_pixels)
        )
    optimizer = StackedOptimizer(trainable, parameters, schedule)
    shadow = (
        {name: tensor.clone() for name, tensor in parameters.items() if tensor.dtype.is_floating_point}
        if schedule.ema_decay > 0
        else None
    )

    def member_loss(weights, fixed, pixel_values, labels, sample_weights, inverse_weight, noise):
        feed.pending = list(noise)
        # bf16: autocast inside the vmapped function, as train_model wraps its forward pass.
        with training_autocast(schedule.precision, device):
            logits = _logits_of(functional_call(template, (weights, fixed), args=(), kwargs={"pixel_values": pixel_values}))
        per_sample = F.cross_entropy(logits.float(), labels, reduction="none")
        weighted_sum = (sample_weights * per_sample).sum()
        return weighted_sum * inverse_weight, weighted_sum

    batched_gradients = vmap(grad(member_loss, has_aux=True), randomness="error")
    # The whole (small) dataset on the device once, plus one zero row for padding.
    sample_shape = tuple(data.pixel_values.shape[1:])
    padding_row = len(data)
    pixels = torch.cat([data.pixel_values, data.pixel_values.new_zeros((1, *sample_shape))]).to(device)
    from tqdm.auto import tqdm

    bar = tqdm(
        total=max(state.total_steps for state in states), desc=description or f"{count} models", leave=False,
        disable=not progress, dynamic_ncols=True,
    )
    done = [False] * count
    while not all(done):
        batches: list[np.ndarray | None] = []
        for k, state in enumerate(states):
            if done[k]:
                batches.append(None)
                continue
            if state.position == 0:
                state.epoch += 1
                shuffle = torch.Generator().manual_seed(derive_seed(int(members[k].seed), "epoch", state.epoch))
                state.augment_stream = torch.Generator().manual_seed(derive_seed(int(members[k].seed), "augment", state.epoch))
                state.order = state.train_indices[torch.randperm(state.train_indices.size, generator=shuffle).numpy()]
                state.loss_sum = torch.zeros((), dtype=torch.float64)
                state.weight_sum = 0.0
            batches.append(state.order[state.position : state.position + batch_size])
        rows = max(len(b) for b in batches if b is not None)
        # Row `padding_row` of the device copy is all zeros: the filler of short and empty batches.
        index = torch.full((count, rows), padding_row, dtype=torch.int64)
        label_batch = torch.zeros((count, rows), dtype=torch.int64)
        weight_batch = torch.zeros((count, rows), dtype=torch.float32)
        inverse_weights = torch.zeros(count, dtype=torch.float32)
        global_weights = [0.0] * count
        noise = [torch.ones((count, rows, *shape)) for shape in noise_shapes]
        if augmentation is not None:
            mirror = torch.zeros((count, rows), dtype=torch.bool)
            angle = torch.zeros((count, rows))
            zoom = torch.ones((count, rows))
        for k, batch in enumerate(batches):
            if batch is None:
                continue
            state = states[k]
            index[k, : batch.size] = torch.from_numpy(batch)
            if augmentation is not None:
                # Drawn from the fold's own stream for its batch, as per-fold training draws them.
                mirror[k, : batch.size], angle[k, : batch.size], zoom[k, : batch.size] = augmentation.draw(
                    batch.size, state.augment_stream
                )
            labels = data.labels[batch]
            label_batch[k, : batch.size] = labels
            weight_batch[k, : batch.size] = state.class_weights[labels]
            global_weights[k] = float(state.class_weights[labels].sum())
            # As train_model: loss = weighted sum * (1 / global weight), the factor a Python float.
            inverse_weights[k] = (1.0 / global_weights[k]) if global_weights[k] > 0 else 0.0
            for tensor, shape in zip(noise, noise_shapes):
                tensor[k, : batch.size] = torch.rand((batch.size, *shape), generator=state.dropout_stream)
        pixel_batch = pixels[index.to(device)]
        if augmentation is not None:
            pixel_batch = transform_motion_channels(
                pixel_batch.view(count * rows, *sample_shape), mirror=mirror.view(-1), angle=angle.view(-1),
                zoom=zoom.view(-1), channels_per_phase=augmentation.channels_per_phase,
                scale_vectors=augmentation.scale_vectors,
            ).view(count, rows, *sample_shape)
        active = [k for k in range(count) if not done[k]]
        gradients, weighted_sums = batched_gradients(
            trainable, constants, pixel_batch, label_batch.to(device), weight_batch.to(device),
            inverse_weights.to(device), [n.to(device) for n in noise],
        )
        learning_rates = [schedule.learning_rate_at(logs[k].steps, states[k].total_steps) for k in active]
        step_numbers = [logs[k].steps + 1 for k in active]
        selected = None if len(active) == count else torch.tensor(active, dtype=torch.int64, device=device)
        optimizer.step(gradients, selected, learning_rates, step_numbers)
        if shadow is not None:
            with torch.no_grad():
                decays = [min(float(schedule.ema_decay), (1.0 + logs[k].steps) / (10.0 + logs[k].steps)) for k in active]
                for name, average in shadow.items():
                    current = parameters[name] if selected is None else parameters[name].index_select(0, selected)
                    rows_average = average if selected is None else average.index_select(0, selected)
                    rows_average.mul_(per_model_column(decays, rows_average)).add_(
                        current.to(average.dtype) * per_model_column([1.0 - d for d in decays], rows_average)
                    )
                    if selected is not None:
                        average.index_copy_(0, selected, rows_average)
        sums = weighted_sums.detach().double().cpu()
        for k in active:
            state, log, batch = states[k], logs[k], batches[k]
            state.loss_sum += sums[k]
            state.weight_sum += global_weights[k]
            batch_list = batch.tolist()
            log.optimizer_sample_indices.extend(batch_list)
            ids = [data.sample_ids[i] for i in batch_list]
            observers[k].on_optimizer_step(members[k].name, state.epoch, log.steps, ids, ids)
            log.steps += 1
            state.position += batch_size
            if state.position >= state.train_indices.size:
                epoch_loss = float(state.loss_sum / state.weight_sum) if state.weight_sum > 0 else float("nan")
                log.epoch_losses.append(epoch_loss)
                if state.weight_sum > 0 and not math.isfinite(epoch_loss):
                    bar.close()
                    raise TrainingDivergedError(
                        f"Training {describe_training(members[k].name)} diverged: its loss was {epoch_loss} in epoch "
                        f"{state.epoch} of {schedule.epochs} (trained in a batch of {count} models). The run stops so "
                        f"that no NaN prediction is scored. Lower the learning rate (--lr, now "
                        f"{schedule.learning_rate:g}), or check the prepared inputs for NaN or huge values."
                    )
                state.position = 0
                if members[k].on_epoch_end is not None:
                    _write_back(models[k], parameters, buffers, k)
                    members[k].on_epoch_end(state.epoch, models[k])
                    models[k].train()
                if state.epoch >= int(schedule.epochs):
                    done[k] = True
        bar.update(1)
    bar.close()
    if shadow is not None:
        parameters = {**parameters, **shadow}
    seconds = time.perf_counter() - started
    for k, (model, log) in enumerate(zip(models, logs)):
        _write_back(model, parameters, buffers, k)
        log.seconds = seconds
    return logs


@torch.no_grad()
def _write_back(model: torch.nn.Module, parameters: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], row: int) -> None:
    """Copy row ``row`` of the stacked weights into ``model`` (in place)."""
    for name, tensor in model.named_parameters():
        tensor.copy_(parameters[name][row])
    for name, tensor in model.named_buffers():
        if name in buffers:
            tensor.copy_(buffers[name][row])


@dataclass
class FoldJob:
    """One LOSO fold to train in a batch: the fold of ``seed``'s run that holds out ``subject``.

    Attributes:
        subject, fold_index: the held-out subject and the fold's position in its run.
        train_indices, test_indices: row indices of the shared data.
        seed: the master seed of the fold's run (the fold's own seed is `fold_seed` of it).
        run_digest: the settings digest of the fold's run, written into its record.
        observer: the run's `TrainingObserver`.
    """

    subject: str
    fold_index: int
    train_indices: np.ndarray
    test_indices: np.ndarray
    seed: int
    run_digest: str
    observer: Any = None


def run_folds_batched(
    jobs: Sequence[FoldJob],
    *,
    data: PreparedTensors,
    config: Any,
    schedule: TrainingSchedule,
    device: Any,
    record_leaky_best_epoch: bool,
    model_factory: Callable[[Any], torch.nn.Module],
    eval_batch_size: int,
    progress: bool = False,
) -> list[tuple[dict[str, Any], torch.nn.Module]]:
    """`fmanet_hf.training.engine.run_fold` for several folds at once, trained as one batch.

    Each fold's model is created by ``model_factory(config)`` under its `fold_seed` (the same
    initial weights as per-fold training), trained with `train_models_batched`, and its
    held-out subject predicted once after the final epoch (and after every epoch with
    ``record_leaky_best_epoch``), exactly as `run_fold` does.

    Returns:
        One (record, trained model) per job, in order. A record's ``seconds`` is its share of
        the batch's wall time (so the run's ``fold_seconds_total`` stays the time spent), and
        ``folds_at_once`` says how many models shared the batch.
    """
    from .engine import TrainingObserver, check_finite_probabilities, predict_probabilities, seeded_torch
    from .fold_records import fold_record, leaky_best_epoch
    from .seeds import fold_seed

    started = time.perf_counter()
    device = torch.device(device)
    members, test_sets, per_epoch = [], [], []
    for job in jobs:
        observer = job.observer or TrainingObserver()
        seed_of_fold = fold_seed(job.seed, job.subject)
        observer.on_fold_start(
            job.subject, [data.sample_ids[i] for i in job.train_indices.tolist()],
            [data.sample_ids[i] for i in job.test_indices.tolist()],
        )
        test_pixels = data.pixel_values[job.test_indices]
        test_ids = [data.sample_ids[i] for i in job.test_indices.tolist()]
        test_sets.append((test_pixels, test_ids))
        probabilities: list[np.ndarray] = []
        per_epoch.append(probabilities)

        def record_epoch(epoch: int, model: torch.nn.Module, *, _observer=observer, _job=job, _pixels=test_pixels,
                         _ids=test_ids, _into=probabilities) -> None:
            _observer.on_predict(_job.subject, epoch, _ids, "leaky_epoch_selection")
            _into.append(predict_probabilities(model, _pixels, batch_size=eval_batch_size, device=device))

        with seeded_torch(seed_of_fold, device):
            model = model_factory(config)
        members.append(
            BatchMember(
                name=job.subject, seed=seed_of_fold, train_indices=np.asarray(job.train_indices), model=model,
                observer=observer, on_epoch_end=record_epoch if record_leaky_best_epoch else None,
            )
        )
    logs = train_models_batched(
        members, data, schedule, device=device, progress=progress, description=f"{len(jobs)} folds at once"
    )
    share = (time.perf_counter() - started) / len(jobs)
    results = []
    for job, member, log, (test_pixels, test_ids), probabilities in zip(jobs, members, logs, test_sets, per_epoch):
        member.observer.on_predict(job.subject, schedule.epochs, test_ids, "final")
        final = check_finite_probabilities(
            predict_probabilities(member.model, test_pixels, batch_size=eval_batch_size, device=device), job.subject
        )
        leaky = leaky_best_epoch(probabilities, data.labels[job.test_indices].numpy()) if record_leaky_best_epoch else None
        record = fold_record(
            subject=job.subject,
            fold_index=job.fold_index,
            seed_of_fold=member.seed,
            run_digest=job.run_digest,
            data=data,
            train_indices=np.asarray(job.train_indices),
            test_indices=np.asarray(job.test_indices),
            final_probabilities=final,
            log=log,
            epochs=schedule.epochs,
            leaky=leaky,
            seconds=share,
            world_size=1,
        )
        record["folds_at_once"] = len(jobs)
        results.append((record, member.model))
    return results


def estimated_bytes_per_model(model: torch.nn.Module, sample: torch.Tensor, batch_size: int) -> int:
    """Memory one model of a batch needs while training, in bytes (an estimate).

    The tensors autograd saves for one sample's forward pass (probed once) times the batch
    size, twice over for the gradients and temporaries, plus six copies of the weights
    (weights, gradients, two optimiser moments, EMA, the stacked copy).

    Args:
        model: a model of the batch.
        sample: one input (1, C, H, W).
        batch_size: samples per optimiser step.
    """
    saved = 0
    weight_storage = {p.data_ptr() for p in model.parameters()}

    def count(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        if tensor.data_ptr() not in weight_storage:  # the weights are counted once, below
            saved += tensor.numel() * tensor.element_size()
        return tensor

    was_training = model.training
    model.train()
    probe = sample.detach().clone().requires_grad_(False)
    with torch.autograd.graph.saved_tensors_hooks(count, lambda tensor: tensor):
        outputs = model(pixel_values=probe)
    del outputs
    model.train(was_training)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return int(2 * saved * int(batch_size) + 6 * weights)


def resolve_folds_at_once(
    requested: int, *, device: Any, model: torch.nn.Module, sample: torch.Tensor, batch_size: int, folds: int
) -> int:
    """How many folds to train as one batch.

    Args:
        requested: the user's ``folds_at_once``: >= 1 as given (capped at ``folds``), 0 = auto.
        device: the training device. Auto on CUDA: as many models as fill `AUTO_MEMORY_SHARE`
            of the free memory (`estimated_bytes_per_model`); auto on CPU:
            `CPU_AUTO_FOLDS_AT_ONCE`.
        model, sample, batch_size: for the memory estimate (``sample``: (1, C, H, W)).
        folds: folds to train.

    Returns:
        An integer in [1, folds] (1: the per-fold loop).
    """
    folds = max(1, int(folds))
    if requested >= 1:
        return min(int(requested), folds)
    device = torch.device(device)
    if device.type != "cuda":
        return min(CPU_AUTO_FOLDS_AT_ONCE, folds)
    free_bytes, _ = torch.cuda.mem_get_info(device)
    per_model = estimated_bytes_per_model(model.to(device), sample.to(device), batch_size)
    return int(max(1, min(folds, (AUTO_MEMORY_SHARE * free_bytes) // max(per_model, 1))))


__all__ = [
    "BatchMember",
    "CPU_AUTO_FOLDS_AT_ONCE",
    "resolve_folds_at_once",
    "FoldJob",
    "batching_obstacle",
    "estimated_bytes_per_model",
    "run_folds_batched",
    "train_models_batched",
]
