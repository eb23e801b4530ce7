"""FMANet configuration.

Remote-code file: imports only transformers, the standard library and relative modules.
"""

from __future__ import annotations

import functools
import inspect
import math

from transformers import PreTrainedConfig

from .errors import FMANetConfigError, did_you_mean

#: True for the installed package's module, False for the copy transformers loads as remote
#: code from a model folder (a module of ``transformers_modules``).
_IS_PACKAGE_MODULE = __name__.split(".")[0] == "fmanet_hf"

PHASE_MODES = ("dual", "onset_apex", "mmcof")
FUSION_MODES = ("learnable", "fixed")
FUSION_GRANULARITIES = ("global", "channel")
HIDDEN_ACTS = ("gelu", "relu", "silu")

# Beyond these the config is almost certainly corrupt or hostile; refusing early avoids
# allocating gigabytes before failing (a config from a stranger's Hub folder, say).
MAX_IMAGE_SIZE = 1024
MAX_WIDTH = 4096
MAX_BLOCKS = 64
MAX_LABELS = 10000
# Each size within its bound can still multiply into billions of weights (4096 channels x
# 64 blocks x 2 stages is about 39 billion): the whole model is capped too. The default
# model has under half a million parameters.
MAX_PARAMETERS = 100_000_000

ABLATIONS = {
    "full": {},
    "single_phase": {"phase_mode": "onset_apex"},
    "fixed_fusion": {"fusion_mode": "fixed"},
    "no_modulation": {"use_magnitude_modulation": False},
    "no_attention": {"use_motion_attention": False},
}

#: Baselines that run through the same training code as the ablations (not FMANet variants):
#: the fixed MM-COF descriptor into the same conv encoder + trunk, with none of FMANet's
#: learnable blocks (the paper's "MM-COF into a network" comparison).
BASELINE_CONFIGS = {
    "mmcof_cnn": {
        "phase_mode": "mmcof",
        "fusion_mode": "fixed",
        "use_magnitude_modulation": False,
        "use_motion_attention": False,
    },
}


#: Keys transformers 4.x wrote into (or read from) every config.json. transformers 5 reads
#: some of them no more, but a config.json saved by an older transformers still holds them.
_TRANSFORMERS_4_CONFIG_KEYS = (
    "_attn_implementation_autoset", "_commit_hash", "_name_or_path", "add_cross_attention", "architectures",
    "attn_implementation", "auto_map", "bad_words_ids", "begin_suppress_tokens", "bos_token_id",
    "chunk_size_feed_forward", "cross_attention_hidden_size", "custom_pipelines", "decoder_start_token_id",
    "diversity_penalty", "do_sample", "dtype", "early_stopping", "encoder_no_repeat_ngram_size", "eos_token_id",
    "exponential_decay_length_penalty", "finetuning_task", "forced_bos_token_id", "forced_eos_token_id",
    "gradient_checkpointing", "id2label", "is_decoder", "is_encoder_decoder", "label2id", "length_penalty",
    "max_length", "min_length", "model_type", "name_or_path", "no_repeat_ngram_size", "num_beam_groups",
    "num_beams", "num_labels", "num_return_sequences", "output_attentions", "output_hidden_states",
    "output_scores", "pad_token_id", "prefix", "problem_type", "pruned_heads", "remove_invalid_values",
    "repetition_penalty", "return_dict", "return_dict_in_generate", "sep_token_id", "suppress_tokens",
    "task_specific_params", "temperature", "tf_legacy_loss", "tie_encoder_decoder", "tie_word_embeddings",
    "tokenizer_class", "top_k", "top_p", "torch_dtype", "torchscript", "transformers_version", "typical_p",
    "use_bfloat16", "use_cache",
)


@functools.lru_cache(maxsize=1)
def transformers_config_keys() -> frozenset[str]:
    """Keys of a config.json that belong to transformers, not to FMANet (``auto_map``,
    ``architectures``, ``id2label``, ``transformers_version``...): allowed in any FMANet config.

    The installed transformers' own fields and serialised keys, plus those of transformers 4.x.
    """
    keys = set(_TRANSFORMERS_4_CONFIG_KEYS)
    keys.update(getattr(PreTrainedConfig, "__dataclass_fields__", {}))
    keys.update(name for name in inspect.signature(PreTrainedConfig.__init__).parameters if name not in ("self", "kwargs"))
    keys.update(PreTrainedConfig().to_dict())
    keys.update(("experts_implementation", "per_layer_config", "_attn_implementation_internal", "_experts_implementation_internal"))
    try:  # generation settings an old config.json may hold; transformers drops them on load
        from transformers import GenerationConfig

        keys.update(GenerationConfig._get_default_generation_params())
    except (ImportError, AttributeError):
        pass
    return frozenset(keys)


#: config.json keys of the pre-release format 0, renamed since (conversion/upgrade_checkpoint.py).
FORMAT_0_CONFIG_KEYS = ("fusion_theta", "attention", "modulation")


def unknown_settings_message(unknown: list[str]) -> str:
    """What to say about config keys that are neither FMANet's nor transformers': each with the
    closest valid setting, or, for keys of the pre-release format 0, the upgrade script."""
    if set(unknown) & set(FORMAT_0_CONFIG_KEYS):
        return (
            f"{', '.join(map(repr, unknown))} are settings of the pre-release format 0 (renamed since); upgrade "
            "the folder with `python conversion/upgrade_checkpoint.py FOLDER` from the fmanet-hf source tree."
        )
    named = ", ".join(f"{key!r}{did_you_mean(key, FMANET_SETTINGS)}" for key in unknown)
    return (
        f"unknown setting {named}. FMANetConfig's docstring lists its settings; transformers' own keys "
        "(model_type, auto_map, id2label, ...) are allowed too."
    )


def check_class_labels(id2label, label2id) -> None:
    """Refuse class labels a classifier cannot use: ``id2label`` keys that are not the ids
    0..N-1 (as ints or digit strings, JSON turns them into strings), names that are empty or
    repeat, and a ``label2id`` that disagrees with ``id2label``. Either may be None."""

    def fail(message: str) -> None:
        raise FMANetConfigError(f"Invalid FMANetConfig: {message}")

    if id2label is not None:
        if not isinstance(id2label, dict) or not id2label:
            fail(f"id2label must map the class ids 0..N-1 to label names (at least 1 of the labels), got {id2label!r}.")
        try:
            ids = sorted(int(key) for key in id2label if not isinstance(key, bool) and str(key).strip().lstrip("-").isdigit())
        except ValueError:
            ids = []
        if len(ids) != len(id2label) or ids != list(range(len(id2label))):
            fail(
                f"id2label keys must be the class ids 0..{len(id2label) - 1}, one each (the classifier's output "
                f"index), got {sorted(map(str, id2label))}."
            )
        names = [str(name) for name in id2label.values()]
        if not all(isinstance(name, str) and name.strip() for name in id2label.values()):
            fail(f"id2label names must be non-empty strings, got {list(id2label.values())}.")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            fail(f"id2label names each class once; {repeated} name several classes, so predictions could not be told apart.")
        if label2id is not None:
            expected = {str(name): int(key) for key, name in id2label.items()}
            try:
                given = {str(name): int(value) for name, value in label2id.items()}
            except (AttributeError, TypeError, ValueError):
                given = None
            if given != expected:
                fail(f"label2id {label2id!r} does not invert id2label {dict(id2label)!r}; give one that does, or none.")


class FMANetConfig(PreTrainedConfig):
    r"""Configuration of an FMANet model (our reconstruction of arXiv 2510.07810).

    Input: ``pixel_values`` (B, num_phases * num_channels_per_phase, image_size, image_size)
    holding, per phase (onset->apex, then apex->offset), the channels (u, v, M[, strain])
    made by `FMANetImageProcessor`. Where the paper is silent the defaults are our choices
    (docs/design-notes.md); every block can be switched off for ablations.

    Args:
        phase_mode (`str`, defaults to `"dual"`):
            `"dual"` uses both phases; `"onset_apex"` uses only the onset->apex phase (the
            single-phase ablation: the apex->offset channels of `pixel_values` are ignored,
            so the same processor output serves both); `"mmcof"` is the fixed-descriptor
            baseline: the model forms the fixed MM-COF (u_c, v_c, M_c) from both phases'
            (u, v, M) exactly as `fmanet_hf.compute_mmcof` does (weights `fusion_init_theta`,
            the apex->offset direction reversed, the fixed gate sigmoid(k (M_c - t)) with
            `mmcof_modulation_sharpness` k and `mmcof_modulation_threshold` t) and feeds those
            3 channels to ONE encoder and the same trunk. Use it with `fusion_mode="fixed"`,
            no learnable modulation and no attention (`BASELINE_CONFIGS["mmcof_cnn"]`). It
            equals `compute_mmcof` on the processor's output when the processor uses
            `flow_normalization="per_phase_minmax"` (the default).
        num_channels_per_phase (`int`, defaults to 3):
            Channels of one phase in `pixel_values`: 3 for (u, v, M), 4 with optical strain.
            The magnitude is always channel index 2 of each phase.
        share_phase_encoder (`bool`, defaults to `False`):
            One encoder applied to both phases (fewer parameters) instead of one each.
        encoder_hidden_size (`int`, defaults to 32):
            Channels of the phase encoders' output features.
        encoder_depth (`int`, defaults to 2):
            Convolution blocks per phase encoder; the first one has stride 2.
        use_magnitude_modulation (`bool`, defaults to `True`):
            Learnable magnitude modulation: each phase's input is multiplied by the gate
            sigmoid(a * (M - t)), the learnable form of thresholding with slope a and
            threshold t (one pair per phase).
        modulation_init_slope (`float`, defaults to 10.0):
            Initial a (> 0).
        modulation_init_threshold (`float`, defaults to 0.1):
            Initial t, on the processor's normalised magnitude in [0, 1].
        fusion_mode (`str`, defaults to `"learnable"`):
            `"learnable"`: softmax-normalised phase weights theta are trained; `"fixed"`: the
            weights stay at `fusion_init_theta` (the fixed MM-COF combination).
        fusion_granularity (`str`, defaults to `"channel"`):
            `"global"`: one weight per phase; `"channel"`: one weight per phase and feature channel.
        fusion_init_theta (`list[float]`, defaults to `[0.6, 0.4]`):
            Initial (or fixed) weights of (onset->apex, apex->offset); non-negative, normalised to sum 1.
        use_motion_attention (`bool`, defaults to `True`):
            Spatial motion attention over the fused features, driven by the features'
            channel mean and max and by the fused magnitude; its map is returned.
        attention_kernel_size (`int`, defaults to 7):
            Odd kernel size of the attention convolution.
        hidden_sizes (`list[int]`, defaults to `[64, 128]`):
            Channels of the trunk stages after fusion; each stage halves the resolution.
        depths (`list[int]`, defaults to `[1, 1]`):
            Residual blocks per trunk stage (same length as `hidden_sizes`).
        hidden_act (`str`, defaults to `"gelu"`):
            Activation: `"gelu"`, `"relu"` or `"silu"`.
        num_groups (`int`, defaults to 8):
            Groups of the GroupNorm layers (GroupNorm, not BatchNorm, so a sample's output
            never depends on the rest of its batch: identical results across batch sizes
            and data-parallel splits).
        classifier_dropout (`float`, defaults to 0.3):
            Dropout before the linear classifier, in [0, 1).
        mmcof_modulation_threshold (`float`, defaults to 0.15):
            t of the fixed MM-COF gate (`phase_mode="mmcof"` only), in [0, 1].
        mmcof_modulation_sharpness (`float`, defaults to 20.0):
            k of the fixed MM-COF gate (`phase_mode="mmcof"` only), > 0.
        image_size (`int`, defaults to 64):
            Side of the square input in pixels (must match the processor's `size`).
        initializer_range (`float`, defaults to 0.02):
            Std of the normal init of the classifier weights (convolutions use Kaiming init).
        num_labels / id2label / label2id:
            The classes (standard `PreTrainedConfig` arguments). Defaults to the MEGC
            three classes negative, positive, surprise.
    """

    model_type = "fmanet"

    def __init__(
        self,
        phase_mode: str = "dual",
        num_channels_per_phase: int = 3,
        share_phase_encoder: bool = False,
        encoder_hidden_size: int = 32,
        encoder_depth: int = 2,
        use_magnitude_modulation: bool = True,
        modulation_init_slope: float = 10.0,
        modulation_init_threshold: float = 0.1,
        fusion_mode: str = "learnable",
        fusion_granularity: str = "channel",
        fusion_init_theta: list[float] | tuple[float, float] = (0.6, 0.4),
        use_motion_attention: bool = True,
        attention_kernel_size: int = 7,
        hidden_sizes: list[int] | tuple[int, ...] = (64, 128),
        depths: list[int] | tuple[int, ...] = (1, 1),
        hidden_act: str = "gelu",
        num_groups: int = 8,
        classifier_dropout: float = 0.3,
        image_size: int = 64,
        initializer_range: float = 0.02,
        mmcof_modulation_threshold: float = 0.15,
        mmcof_modulation_sharpness: float = 20.0,
        **kwargs,
    ):
        # Another model's config.json would otherwise be refused for one of its fields.
        model_type = kwargs.get("model_type")
        if model_type is not None and model_type != self.model_type:
            raise FMANetConfigError(
                f"Invalid FMANetConfig: this config describes a {model_type!r} model (model_type), not FMANet "
                f"(model_type {self.model_type!r}); load it with its own classes, or point at a folder written by fmanet-hf."
            )
        # A misspelt setting would otherwise become an attribute nobody reads: refuse it.
        unknown = sorted(set(kwargs) - transformers_config_keys())
        if unknown:
            raise FMANetConfigError(f"Invalid FMANetConfig: {unknown_settings_message(unknown)}")
        # Check the label count before PreTrainedConfig builds an id2label dict of that size.
        requested_labels = kwargs.get("num_labels")
        if requested_labels is not None and (
            isinstance(requested_labels, bool) or not isinstance(requested_labels, int) or not 1 <= requested_labels <= MAX_LABELS
        ):
            raise FMANetConfigError(
                f"Invalid FMANetConfig: num_labels must be an integer in [1, {MAX_LABELS}], got {requested_labels!r}."
            )
        check_class_labels(kwargs.get("id2label"), kwargs.get("label2id"))
        if "id2label" not in kwargs and "label2id" not in kwargs and "num_labels" not in kwargs:
            kwargs["id2label"] = {0: "negative", 1: "positive", 2: "surprise"}
        if _IS_PACKAGE_MODULE:
            # An exported config.json names the folder's own pipeline file (custom_pipelines) for
            # users without the package. transformers' pipeline() prefers it to the registered
            # task and then demands trust_remote_code; the package's registered pipeline is the
            # same code, so the package's config does not carry the entry.
            kwargs.pop("custom_pipelines", None)
        self.phase_mode = phase_mode
        self.num_channels_per_phase = num_channels_per_phase
        self.share_phase_encoder = share_phase_encoder
        self.encoder_hidden_size = encoder_hidden_size
        self.encoder_depth = encoder_depth
        self.use_magnitude_modulation = use_magnitude_modulation
        self.modulation_init_slope = modulation_init_slope
        self.modulation_init_threshold = modulation_init_threshold
        self.fusion_mode = fusion_mode
        self.fusion_granularity = fusion_granularity
        self.fusion_init_theta = list(fusion_init_theta)
        self.use_motion_attention = use_motion_attention
        self.attention_kernel_size = attention_kernel_size
        self.hidden_sizes = list(hidden_sizes)
        self.depths = list(depths)
        self.hidden_act = hidden_act
        self.num_groups = num_groups
        self.classifier_dropout = classifier_dropout
        self.image_size = image_size
        self.initializer_range = initializer_range
        self.mmcof_modulation_threshold = mmcof_modulation_threshold
        self.mmcof_modulation_sharpness = mmcof_modulation_sharpness
        super().__init__(**kwargs)
        self.validate_fmanet()

    @property
    def num_phases(self) -> int:
        """Phase streams the network encodes: 2 for `"dual"`, 1 for `"onset_apex"` and for
        `"mmcof"` (whose one stream is the fixed combination of both phases)."""
        return 2 if self.phase_mode == "dual" else 1

    @property
    def encoder_in_channels(self) -> int:
        """Channels one phase encoder reads: a phase's channels, or the 3 of the fixed MM-COF."""
        return 3 if self.phase_mode == "mmcof" else self.num_channels_per_phase

    @property
    def num_channels(self) -> int:
        """Channels `pixel_values` must have: always both phases (the processor's output)."""
        return 2 * self.num_channels_per_phase

    def validate_fmanet(self) -> None:
        """Refuse impossible or absurd settings with an `FMANetConfigError` that says which and why."""

        def fail(message: str) -> None:
            raise FMANetConfigError(f"Invalid FMANetConfig: {message}")

        def finite_number(name: str, value) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                fail(f"{name} must be a finite number, got {value!r}.")

        def positive_int(name: str, value, upper: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
                fail(f"{name} must be an integer in [1, {upper}], got {value!r}.")

        if self.phase_mode not in PHASE_MODES:
            fail(f"phase_mode must be one of {list(PHASE_MODES)}, got {self.phase_mode!r}.")
        if self.num_channels_per_phase not in (3, 4):
            fail(f"num_channels_per_phase must be 3 (u, v, M) or 4 (+ strain), got {self.num_channels_per_phase!r}.")
        if self.fusion_mode not in FUSION_MODES:
            fail(f"fusion_mode must be one of {list(FUSION_MODES)}, got {self.fusion_mode!r}.")
        if self.fusion_granularity not in FUSION_GRANULARITIES:
            fail(f"fusion_granularity must be one of {list(FUSION_GRANULARITIES)}, got {self.fusion_granularity!r}.")
        if self.hidden_act not in HIDDEN_ACTS:
            fail(f"hidden_act must be one of {list(HIDDEN_ACTS)}, got {self.hidden_act!r}.")
        positive_int("image_size", self.image_size, MAX_IMAGE_SIZE)
        positive_int("encoder_hidden_size", self.encoder_hidden_size, MAX_WIDTH)
        positive_int("encoder_depth", self.encoder_depth, MAX_BLOCKS)
        positive_int("num_groups", self.num_groups, MAX_WIDTH)
        if not self.hidden_sizes or len(self.hidden_sizes) != len(self.depths):
            fail(f"hidden_sizes and depths must be non-empty and of equal length, got {self.hidden_sizes} and {self.depths}.")
        for size in self.hidden_sizes:
            positive_int("each of hidden_sizes", size, MAX_WIDTH)
        for depth in self.depths:
            positive_int("each of depths", depth, MAX_BLOCKS)
        for width in [self.encoder_hidden_size, *self.hidden_sizes]:
            if width % self.num_groups:
                fail(f"every width ({self.encoder_hidden_size}, {self.hidden_sizes}) must be divisible by num_groups={self.num_groups}.")
        min_size = 2 ** (1 + len(self.hidden_sizes))
        if self.image_size < min_size:
            fail(f"image_size {self.image_size} is too small for {len(self.hidden_sizes)} trunk stages; use >= {min_size}.")
        for name in (
            "modulation_init_slope", "modulation_init_threshold", "classifier_dropout", "initializer_range",
            "mmcof_modulation_threshold", "mmcof_modulation_sharpness",
        ):
            finite_number(name, getattr(self, name))
        if len(self.fusion_init_theta) != 2:
            fail(f"fusion_init_theta must hold two weights, got {self.fusion_init_theta}.")
        for weight in self.fusion_init_theta:
            finite_number("each of fusion_init_theta", weight)
        if min(self.fusion_init_theta) < 0 or sum(self.fusion_init_theta) <= 0:
            fail(f"fusion_init_theta must be two non-negative weights, not both 0; got {self.fusion_init_theta}.")
        if self.fusion_mode == "learnable" and min(self.fusion_init_theta) <= 0:
            fail("a learnable fusion initialises its logits from log(theta), so both weights must be > 0.")
        if not 0.0 <= self.mmcof_modulation_threshold <= 1.0 or not self.mmcof_modulation_sharpness > 0:
            fail(
                "mmcof_modulation_threshold must be in [0, 1] and mmcof_modulation_sharpness > 0; got "
                f"{self.mmcof_modulation_threshold} and {self.mmcof_modulation_sharpness}."
            )
        if self.phase_mode == "mmcof" and self.fusion_mode != "fixed":
            fail('phase_mode="mmcof" combines the phases with the fixed MM-COF weights: set fusion_mode="fixed".')
        if not self.modulation_init_slope > 0:
            fail(f"modulation_init_slope must be > 0, got {self.modulation_init_slope}.")
        if not 0.0 <= self.classifier_dropout < 1.0:
            fail(f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}.")
        positive_int("attention_kernel_size", self.attention_kernel_size, 31)
        if self.attention_kernel_size % 2 == 0:
            fail(f"attention_kernel_size must be a positive odd integer, got {self.attention_kernel_size}.")
        if not self.initializer_range > 0:
            fail(f"initializer_range must be > 0, got {self.initializer_range}.")
        if not 1 <= self.num_labels <= MAX_LABELS:
            fail(f"the number of labels must be in [1, {MAX_LABELS}], got {self.num_labels}.")
        parameters = self.estimated_num_parameters()
        if parameters > MAX_PARAMETERS:
            fail(
                f"these sizes give about {parameters:,} parameters ({4 * parameters / 1e9:.1f} GB in float32), more "
                f"than the {MAX_PARAMETERS:,} allowed; reduce hidden_sizes, depths, encoder_hidden_size or "
                "encoder_depth (the default model has under 0.5 million)."
            )

    def estimated_num_parameters(self) -> int:
        """Weights of the convolutions and the classifier, computed from the sizes alone.

        These are over 99 % of the model's parameters (GroupNorm, modulation, fusion and
        attention add a few hundred), so the count can be checked before anything is built.
        """
        encoders = 1 if (self.share_phase_encoder or self.num_phases == 1) else self.num_phases
        width = self.encoder_hidden_size
        total = encoders * 9 * width * (self.encoder_in_channels + (self.encoder_depth - 1) * width)
        for size, depth in zip(self.hidden_sizes, self.depths):
            total += 9 * width * size + depth * 2 * 9 * size * size
            width = size
        return int(total + (width + 1) * self.num_labels)

    @classmethod
    def for_ablation(cls, name: str, **kwargs) -> "FMANetConfig":
        """Build the config of a named ablation (`ABLATIONS`: full, single_phase, fixed_fusion,
        no_modulation, no_attention); `kwargs` set everything else."""
        if name not in ABLATIONS:
            raise FMANetConfigError(f"Unknown ablation {name!r}; choose one of {list(ABLATIONS)}.")
        return cls(**{**kwargs, **ABLATIONS[name]})


#: FMANet's own settings: the arguments of `FMANetConfig` (transformers' keys aside).
FMANET_SETTINGS = tuple(
    name for name in inspect.signature(FMANetConfig.__init__).parameters if name not in ("self", "kwargs")
)

FMANetConfig.register_for_auto_class()

__all__ = ["FMANetConfig", "ABLATIONS", "BASELINE_CONFIGS", "FMANET_SETTINGS", "MAX_PARAMETERS", "check_class_labels", "transformers_config_keys", "unknown_settings_message"]
