"""FMANet: dual-phase optical-flow network with learnable magnitude modulation, learnable
phase fusion and motion attention (our reconstruction of arXiv 2510.07810; the choices the
paper leaves open are listed in docs/design-notes.md).

Data flow for ``pixel_values`` (B, 2 * C, H, W), C = (u, v, M[, strain]) per phase::

    phase k input x_k (B, C, H, W) --(gate sigmoid(a_k (M_k - t_k)))--> encoder_k
      -> features f_k (B, E, H/2, W/2)
    fused = sum_k w_k * f_k, w = softmax(theta logits) over phases (global or per channel)
    attention A = sigmoid(conv[mean_c(fused), max_c(fused), fused magnitude]) (B, 1, H/2, W/2)
    trunk(fused * A) -> global average pool -> dropout -> linear -> logits (B, num_labels)

Remote-code file: imports only torch, transformers and relative modules.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_fmanet import FMANetConfig
from .errors import CheckpointError, FMANetInputError

MAGNITUDE_CHANNEL = 2

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}

# config.json's auto_map entries of a saved model (this file, copied beside the weights).
_AUTO_MAP = {
    "AutoModel": "modeling_fmanet.FMANetModel",
    "AutoModelForImageClassification": "modeling_fmanet.FMANetForImageClassification",
}


@dataclass
class FMANetModelOutput(ModelOutput):
    """Output of `FMANetModel`.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, hidden_sizes[-1], h, w)`):
            Feature map of the last trunk stage.
        pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_sizes[-1])`):
            Global average of `last_hidden_state`.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, with `output_hidden_states=True`):
            The fused phase features (before attention), the attended features, and each trunk stage's output.
        attention_map (`torch.FloatTensor` of shape `(batch_size, 1, image_size // 2, image_size // 2)`, *optional*):
            Motion attention in [0, 1] (None when `use_motion_attention=False`).
        phase_fusion_weights (`torch.FloatTensor` of shape `(batch_size, num_phases, encoder_hidden_size)`):
            Weight of each phase per feature channel (each column sums to 1 over the phases; equal across
            channels for a global fusion; all ones for a single phase). The weights are learned, not
            computed from the input, so every sample holds the same values; they are repeated per
            sample (a view, no copy) so that every output field has the batch first, as
            `Trainer.predict` and the pipelines' batching expect.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attention_map: torch.FloatTensor | None = None
    phase_fusion_weights: torch.FloatTensor | None = None


@dataclass
class FMANetImageClassifierOutput(ModelOutput):
    """Output of `FMANetForImageClassification`.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, when `labels` are given):
            Cross-entropy loss.
        logits (`torch.FloatTensor` of shape `(batch_size, num_labels)`):
            Class scores before softmax.
        hidden_states, attention_map, phase_fusion_weights:
            As in `FMANetModelOutput`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attention_map: torch.FloatTensor | None = None
    phase_fusion_weights: torch.FloatTensor | None = None


class FMANetConvBlock(nn.Module):
    """3x3 convolution -> GroupNorm -> activation."""

    def __init__(self, config: FMANetConfig, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.convolution = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.normalization = nn.GroupNorm(min(config.num_groups, out_channels), out_channels)
        self.activation = _ACTIVATIONS[config.hidden_act]()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.normalization(self.convolution(hidden_states)))


class FMANetResidualBlock(nn.Module):
    """Two 3x3 conv + GroupNorm layers with an identity shortcut."""

    def __init__(self, config: FMANetConfig, channels: int):
        super().__init__()
        self.first = FMANetConvBlock(config, channels, channels)
        self.second_convolution = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.second_normalization = nn.GroupNorm(min(config.num_groups, channels), channels)
        self.activation = _ACTIVATIONS[config.hidden_act]()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = self.second_normalization(self.second_convolution(self.first(hidden_states)))
        return self.activation(hidden_states + residual)


class FMANetPhaseEncoder(nn.Module):
    """Shallow stem for one phase: `encoder_depth` conv blocks, the first with stride 2."""

    def __init__(self, config: FMANetConfig):
        super().__init__()
        widths = [config.encoder_in_channels] + [config.encoder_hidden_size] * config.encoder_depth
        self.layers = nn.ModuleList(
            FMANetConvBlock(config, widths[i], widths[i + 1], stride=2 if i == 0 else 1)
            for i in range(config.encoder_depth)
        )

    def forward(self, phase_input: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            phase_input = layer(phase_input)
        return phase_input


class FMANetMagnitudeModulation(nn.Module):
    """Learnable soft threshold on each phase's magnitude: gate_k = sigmoid(a_k (M_k - t_k)).

    The slope is stored as log a_k so it stays positive (a negative slope would turn the
    gate into a "keep only still pixels" filter).
    """

    def __init__(self, config: FMANetConfig):
        super().__init__()
        self.log_slope = nn.Parameter(torch.empty(config.num_phases))
        self.threshold = nn.Parameter(torch.empty(config.num_phases))

    def forward(self, magnitude: torch.Tensor, phase_index: int) -> torch.Tensor:
        slope = self.log_slope[phase_index].exp()
        return torch.sigmoid(slope * (magnitude - self.threshold[phase_index]))


class FMANetPhaseFusion(nn.Module):
    """Softmax-normalised phase weights theta, global (P, 1) or per channel (P, E).

    Learnable: `theta_logits` is a parameter initialised to log(fusion_init_theta).
    Fixed: the same tensor is a buffer, i.e. the fixed MM-COF weighting.
    """

    def __init__(self, config: FMANetConfig):
        super().__init__()
        columns = config.encoder_hidden_size if config.fusion_granularity == "channel" else 1
        logits = torch.empty(config.num_phases, columns)
        if config.fusion_mode == "learnable":
            self.theta_logits = nn.Parameter(logits)
        else:
            self.register_buffer("theta_logits", logits)
        self.encoder_hidden_size = config.encoder_hidden_size

    def weights(self) -> torch.Tensor:
        """(P, E) phase weights; each column sums to 1."""
        return torch.softmax(self.theta_logits, dim=0).expand(-1, self.encoder_hidden_size)

    def forward(self, phase_features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        weights = self.weights()
        fused = sum(w[None, :, None, None] * f for w, f in zip(weights, phase_features))
        return fused, weights


class FMANetMotionAttention(nn.Module):
    """Spatial attention from the features' channel mean/max and the fused magnitude."""

    def __init__(self, config: FMANetConfig):
        super().__init__()
        kernel = config.attention_kernel_size
        self.convolution = nn.Conv2d(3, 1, kernel, padding=kernel // 2)

    def forward(self, features: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
        descriptor = torch.cat(
            [features.mean(dim=1, keepdim=True), features.amax(dim=1, keepdim=True), magnitude], dim=1
        )
        return torch.sigmoid(self.convolution(descriptor))


def fixed_mmcof(pixel_values: torch.Tensor, config: FMANetConfig) -> torch.Tensor:
    """The fixed MM-COF (B, 3, H, W) = (u_c, v_c, M_c) from dual-phase `pixel_values`.

    Same formula as `fmanet_hf.mmcof.compute_mmcof` on already normalised phases:
    u_c = theta1 u1 - theta2 u2 (the apex->offset motion points back), likewise v_c,
    M_c = theta1 M1 + theta2 M2, then all three times the gate sigmoid(k (M_c - t)).
    """
    per_phase = config.num_channels_per_phase
    theta = torch.tensor(config.fusion_init_theta, dtype=pixel_values.dtype, device=pixel_values.device)
    theta = theta / theta.sum()
    onset_apex = pixel_values[:, 0:3]
    apex_offset = pixel_values[:, per_phase : per_phase + 3]
    signs = torch.tensor([-1.0, -1.0, 1.0], dtype=pixel_values.dtype, device=pixel_values.device)
    combined = theta[0] * onset_apex + theta[1] * signs[None, :, None, None] * apex_offset
    magnitude = combined[:, MAGNITUDE_CHANNEL : MAGNITUDE_CHANNEL + 1]
    gate = torch.sigmoid(config.mmcof_modulation_sharpness * (magnitude - config.mmcof_modulation_threshold))
    return combined * gate


class FMANetStage(nn.Module):
    """Stride-2 conv block then `depth` residual blocks."""

    def __init__(self, config: FMANetConfig, in_channels: int, out_channels: int, depth: int):
        super().__init__()
        self.downsample = FMANetConvBlock(config, in_channels, out_channels, stride=2)
        self.blocks = nn.ModuleList(FMANetResidualBlock(config, out_channels) for _ in range(depth))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.downsample(hidden_states)
        for block in self.blocks:
            hidden_states = block(hidden_states)
        return hidden_states


class FMANetPreTrainedModel(PreTrainedModel):
    """Weights initialisation and the `from_pretrained` / `save_pretrained` plumbing."""

    config_class = FMANetConfig
    config: FMANetConfig
    base_model_prefix = "fmanet"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["FMANetStage", "FMANetPhaseEncoder"]
    # The loss is a plain (optionally class-weighted) mean over the batch: Trainer must not rescale
    # it by a token count (`num_items_in_batch`), which only means something for language models.
    accepts_loss_kwargs = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, restricted to safetensors weights.

        Pickle weights (``pytorch_model.bin``, ``.pt``) can run arbitrary code when they are
        read, so they are never loaded, whoever asks: ``use_safetensors=False`` is refused and a
        folder that only has pickle weights raises `CheckpointError` that says how to convert it.
        """
        if kwargs.get("use_safetensors") is False:
            raise CheckpointError(
                "FMANet checkpoints load from safetensors only (use_safetensors=False was given). Convert pickle "
                "weights once, on a machine you trust, with conversion/convert_state_dict.py."
            )
        kwargs["use_safetensors"] = True
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except RuntimeError as error:
            if "ignore_mismatched_sizes" not in str(error):
                raise
            raise CheckpointError(
                f"The weights in {os.fspath(pretrained_model_name_or_path)} do not match the sizes its config.json asks "
                "for (the table above lists each tensor). The config was edited or belongs to other weights: restore "
                "the config.json saved with these weights, or re-export the folder."
            ) from None
        except OSError as error:
            folder = os.fspath(pretrained_model_name_or_path)
            subfolder = kwargs.get("subfolder") or ""
            local = os.path.join(folder, subfolder)
            if os.path.isdir(local):
                names = set(os.listdir(local))
                pickles = sorted(n for n in names if n.endswith((".bin", ".pt", ".pth", ".ckpt")))
                if not any(n.endswith(".safetensors") for n in names):
                    raise CheckpointError(
                        f"{local} has no model.safetensors"
                        + (f"; it has pickle weights ({', '.join(pickles)}), which FMANet never loads because "
                           "unpickling can run code. Convert them once, on a machine you trust, with "
                           "conversion/convert_state_dict.py." if pickles else
                           ". Point from_pretrained at a folder written by save_pretrained or `fmanet-hf export`.")
                    ) from error
            raise
        except Exception as error:
            # A truncated or corrupt model.safetensors (safetensors' own error type).
            if type(error).__name__ != "SafetensorError":
                raise
            raise CheckpointError(
                f"The model.safetensors in {os.fspath(pretrained_model_name_or_path)} is unreadable ({error}): the file "
                "is truncated or corrupt. Re-export or re-download the folder."
            ) from None

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, with both model classes in ``config.json``'s ``auto_map``.

        transformers records only the saved class's Auto class; ``modeling_fmanet.py`` holds both,
        so ``AutoModel`` (features, attention map) loads from the folder too, with remote code.
        """
        auto_map = dict(getattr(self.config, "auto_map", None) or {})
        auto_map.update(_AUTO_MAP)
        self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.GroupNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, FMANetMagnitudeModulation):
            init.constant_(module.log_slope, math.log(self.config.modulation_init_slope))
            init.constant_(module.threshold, self.config.modulation_init_threshold)
        elif isinstance(module, FMANetPhaseFusion):
            theta = torch.tensor(self.config.fusion_init_theta[: self.config.num_phases], dtype=torch.float64)
            theta = theta / theta.sum()
            # log(0) is allowed for a fixed fusion: softmax turns -inf into a weight of exactly 0.
            logits = torch.log(theta).to(module.theta_logits.dtype)[:, None].expand_as(module.theta_logits)
            init.copy_(module.theta_logits, logits)


class FMANetModel(FMANetPreTrainedModel):
    """FMANet without a classification head: motion features, attention map and fusion weights."""

    def __init__(self, config: FMANetConfig):
        super().__init__(config)
        encoders = 1 if (config.share_phase_encoder or config.num_phases == 1) else config.num_phases
        self.phase_encoders = nn.ModuleList(FMANetPhaseEncoder(config) for _ in range(encoders))
        self.magnitude_modulation = FMANetMagnitudeModulation(config) if config.use_magnitude_modulation else None
        self.phase_fusion = FMANetPhaseFusion(config)
        self.motion_attention = FMANetMotionAttention(config) if config.use_motion_attention else None
        widths = [config.encoder_hidden_size, *config.hidden_sizes]
        self.stages = nn.ModuleList(
            FMANetStage(config, widths[i], widths[i + 1], depth) for i, depth in enumerate(config.depths)
        )
        self.post_init()

    def _check_pixel_values(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``pixel_values`` in the weights' dtype, or `FMANetInputError` saying what is wrong.

        Any floating dtype is accepted and cast (float64 from numpy, half from a mixed-precision
        loop): conv layers need input and weights of one dtype, and the processor's output is
        float32 whatever the model's precision."""
        if not isinstance(pixel_values, torch.Tensor):
            raise FMANetInputError(
                f"pixel_values must be a torch.Tensor, got {type(pixel_values).__name__}; make it with "
                "processor(..., return_tensors='pt') or torch.as_tensor(array)."
            )
        if not pixel_values.is_floating_point():
            raise FMANetInputError(
                f"pixel_values must be floating point (the processor's normalised flow), got {pixel_values.dtype}."
            )
        expected = self.config.num_channels
        if pixel_values.dim() != 4 or pixel_values.shape[1] != expected:
            raise FMANetInputError(
                f"pixel_values must have shape (batch, {expected}, height, width): {self.config.num_channels_per_phase} "
                f"channels per phase for both phases, as FMANetImageProcessor makes them; got {tuple(pixel_values.shape)}."
            )
        if pixel_values.shape[2] < 8 or pixel_values.shape[3] < 8:
            raise FMANetInputError(f"pixel_values is {tuple(pixel_values.shape[2:])} pixels; at least 8x8 is needed.")
        return pixel_values.to(self.dtype)

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> FMANetModelOutput | tuple:
        """Encode a batch of dual-phase motion inputs.

        Args:
            pixel_values: (B, 2 * num_channels_per_phase, H, W) float, as made by the processor.
            output_hidden_states: also return intermediate feature maps.
            return_dict: return an `FMANetModelOutput` (default) rather than a tuple.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else getattr(self.config, "return_dict", True)
        pixel_values = self._check_pixel_values(pixel_values)
        per_phase = self.config.num_channels_per_phase
        phase_features, gated_magnitudes = [], []
        for k in range(self.config.num_phases):
            if self.config.phase_mode == "mmcof":
                phase_input = fixed_mmcof(pixel_values, self.config)
            else:
                phase_input = pixel_values[:, k * per_phase : (k + 1) * per_phase]
            magnitude = phase_input[:, MAGNITUDE_CHANNEL : MAGNITUDE_CHANNEL + 1]
            if self.magnitude_modulation is not None:
                gate = self.magnitude_modulation(magnitude, k)
                phase_input = phase_input * gate
                magnitude = magnitude * gate
            encoder = self.phase_encoders[k if len(self.phase_encoders) > 1 else 0]
            phase_features.append(encoder(phase_input))
            gated_magnitudes.append(magnitude)

        fused, fusion_weights = self.phase_fusion(phase_features)
        all_hidden_states = [fused] if output_hidden_states else None

        attention_map = None
        if self.motion_attention is not None:
            feature_size = fused.shape[-2:]
            phase_share = fusion_weights.mean(dim=1)
            fused_magnitude = sum(
                w * F.adaptive_avg_pool2d(m, feature_size) for w, m in zip(phase_share, gated_magnitudes)
            )
            attention_map = self.motion_attention(fused, fused_magnitude)
            fused = fused * attention_map
            if output_hidden_states:
                all_hidden_states.append(fused)

        hidden_states = fused
        for stage in self.stages:
            hidden_states = stage(hidden_states)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
        pooled = hidden_states.mean(dim=(2, 3))

        output = FMANetModelOutput(
            last_hidden_state=hidden_states,
            pooler_output=pooled,
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            attention_map=attention_map,
            phase_fusion_weights=fusion_weights.unsqueeze(0).expand(pixel_values.shape[0], -1, -1),
        )
        return output if return_dict else output.to_tuple()


class FMANetForImageClassification(FMANetPreTrainedModel):
    """FMANet with a dropout + linear classification head and cross-entropy loss."""

    def __init__(self, config: FMANetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.fmanet = FMANetModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_sizes[-1], config.num_labels)
        self.post_init()

    def _checked_labels(self, labels: Any, logits: torch.Tensor) -> torch.Tensor:
        """(B,) int64 class ids on the logits' device, or `FMANetInputError` saying what is wrong
        (torch would end in an index error on CPU and a device-side assert on GPU)."""
        labels = torch.as_tensor(labels).to(logits.device)
        if labels.is_floating_point() and not bool(torch.all(labels == labels.round())):
            raise FMANetInputError("labels must be class ids (integers), got fractional values.")
        labels = labels.long().view(-1)
        if labels.numel() != logits.shape[0]:
            raise FMANetInputError(f"labels holds {labels.numel()} values for a batch of {logits.shape[0]}; give one class id per sample.")
        num_labels = self.config.num_labels
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_labels):
            outside = sorted({int(v) for v in labels.tolist() if not 0 <= v < num_labels})
            raise FMANetInputError(
                f"labels must be class ids in [0, {num_labels - 1}] (this model's {num_labels} classes, "
                f"config.id2label), got {outside}."
            )
        return labels

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> FMANetImageClassifierOutput | tuple:
        """Classify a batch.

        Args:
            pixel_values: (B, 2 * num_channels_per_phase, H, W) float.
            labels: optional (B,) class indices in [0, num_labels); gives `loss`.
            output_hidden_states / return_dict: as in `FMANetModel.forward`.
        """
        return_dict = return_dict if return_dict is not None else getattr(self.config, "return_dict", True)
        outputs = self.fmanet(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits, self._checked_labels(labels, logits))
        output = FMANetImageClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attention_map=outputs.attention_map,
            phase_fusion_weights=outputs.phase_fusion_weights,
        )
        return output if return_dict else output.to_tuple()


FMANetModel.register_for_auto_class("AutoModel")
FMANetForImageClassification.register_for_auto_class("AutoModelForImageClassification")

__all__ = [
    "FMANetPreTrainedModel",
    "FMANetModel",
    "FMANetForImageClassification",
    "FMANetModelOutput",
    "FMANetImageClassifierOutput",
]
