"""Model cards (README.md) rendered from the plain-text templates in ``hub_cards/``.

A card = the dataset's template (``hub_cards/<dataset>.md``) with ``hub_cards/common.md``
inserted at ``${common}``, its ``${placeholders}`` filled from the LOSO run's files, and a
YAML front matter whose ``model-index`` holds accuracy, UF1 and UAR **read from the run's
results.json** (exact floats, never retyped). `check_model_card` re-parses a card with
``huggingface_hub.ModelCard`` and verifies those values against the results.

Templates are looked up in: an explicit folder; ``$FMANET_HUB_CARDS``; the ``hub_cards/``
folder of the source tree this module belongs to (a checkout or an editable install); the
copy that a wheel install carries as ``fmanet_hf/hub_cards/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import CheckpointError, FMANetConfigError, ModelCardError

TEMPLATE_DIR_ENV = "FMANET_HUB_CARDS"
COMMON_TEMPLATE = "common"

#: Card templates: dataset key -> (display name, name of the data set in `model-index`).
CARD_DATASETS: dict[str, str] = {
    "casme2": "CASME II",
    "samm": "SAMM",
    "smic": "SMIC",
    "mmew": "MMEW",
    "casme3": "CAS(ME)^3 part A",
    "megc2019": "MEGC2019 composite",
    "synthme": "SynthME (synthetic)",
}
#: Names the loaders write into the ``dataset`` column, mapped to a card template.
_DATASET_COLUMN_ALIASES = {"casme2": "casme2", "samm": "samm", "smic": "smic", "mmew": "mmew", "casme3": "casme3", "synthme": "synthme"}
_MEGC_PARTS = {"casme2", "samm", "smic"}

#: `model-index` entries: results key -> (metric type, metric name, metric config).
MODEL_INDEX_METRICS = (
    ("accuracy", "accuracy", "Accuracy (pooled LOSO, final epoch)", None),
    ("uf1", "f1", "UF1 (macro F1, pooled LOSO, final epoch)", "macro"),
    ("uar", "recall", "UAR (macro recall, pooled LOSO, final epoch)", "macro"),
)
MODEL_INDEX_SPLIT = "loso-pooled"
TASK_TYPE = "image-classification"
TASK_NAME = "Micro-expression recognition"


def default_template_dir() -> Path | None:
    """``hub_cards/`` of the source tree (``src/fmanet_hf/hub/cards.py`` -> ``../../../../hub_cards``),
    else the copy installed inside the package (``fmanet_hf/hub_cards/``, from a wheel)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parents[1] / "hub_cards", package / "hub_cards"):
        if (candidate / f"{COMMON_TEMPLATE}.md").is_file():
            return candidate
    return None


def find_template_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder holding the card templates (see the module docstring).

    Raises:
        ModelCardError: none found, with where to look.
    """
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get(TEMPLATE_DIR_ENV):
        candidates.append(Path(os.environ[TEMPLATE_DIR_ENV]))
    source_tree = default_template_dir()
    if source_tree is not None:
        candidates.append(source_tree)
    for folder in candidates:
        if (folder / f"{COMMON_TEMPLATE}.md").is_file():
            return folder
    raise ModelCardError(
        "The model-card templates (hub_cards/*.md) were not found"
        + (f" in {', '.join(str(c) for c in candidates)}" if candidates else "")
        + ". They live in the fmanet-hf source tree: pass --template-dir path/to/fmanet-hf/hub_cards or set "
        f"{TEMPLATE_DIR_ENV}."
    )


def detect_card_dataset(results: Mapping[str, Any]) -> str:
    """The template key for a LOSO result, from the dataset names of its predictions.

    One known dataset -> its template; several of CASME II / SAMM / SMIC -> ``megc2019``.

    Raises:
        ModelCardError: unknown or mixed datasets (pass ``dataset=`` explicitly).
    """
    names = {str(n).lower() for n in (results.get("by_dataset") or {})}
    if len(names) == 1:
        (name,) = names
        for prefix, key in _DATASET_COLUMN_ALIASES.items():
            if name == prefix or name.startswith(prefix):  # smic_hs, casme3_a...
                return key
    if len(names) > 1 and names <= _MEGC_PARTS:
        return "megc2019"
    raise ModelCardError(
        f"Cannot tell which card template fits this run (datasets in its predictions: {sorted(names) or 'none'}). "
        f"Pass --dataset with one of {list(CARD_DATASETS)}."
    )


def load_template(template_dir: Path, name: str) -> str:
    """Text of ``<template_dir>/<name>.md``."""
    if name not in CARD_DATASETS and name != COMMON_TEMPLATE:
        raise FMANetConfigError(f"Unknown model-card template {name!r}; choose one of {list(CARD_DATASETS)}.")
    path = template_dir / f"{name}.md"
    if not path.is_file():
        raise ModelCardError(f"The model-card template {path} is missing; restore it from the fmanet-hf source tree.")
    return path.read_text(encoding="utf-8")


def _substitute(text: str, context: Mapping[str, str], name: str) -> str:
    try:
        return string.Template(text).substitute(context)
    except KeyError as error:
        raise ModelCardError(
            f"The card template {name}.md uses the placeholder ${{{error.args[0]}}}, which the exporter does not "
            f"provide. Known placeholders: {sorted(context)}."
        ) from None
    except ValueError as error:
        raise ModelCardError(f"The card template {name}.md has a malformed placeholder ({error}); write $$ for a dollar sign.") from None


def _split_front_matter(text: str, name: str) -> tuple[str, str]:
    if not text.startswith("---\n"):
        raise ModelCardError(f"The card template {name}.md must start with a '---' YAML front matter block.")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ModelCardError(f"The YAML front matter of {name}.md is not closed by a '---' line.")
    return text[4:end], text[end + 5 :]


def model_index_results(
    results: Mapping[str, Any], dataset_key: str, *, class_names: Sequence[str] | None = None
) -> list[Any]:
    """`huggingface_hub.EvalResult` entries of the run: pooled accuracy/UF1/UAR (and each
    dataset's subset for a composite), values copied from ``results``."""
    from huggingface_hub import EvalResult

    names = list(class_names or results.get("class_names") or [])
    config = ",".join(names) if names else None

    def entries(metrics: Mapping[str, Any], dataset_name: str, dataset_type: str) -> list[Any]:
        return [
            EvalResult(
                task_type=TASK_TYPE,
                task_name=TASK_NAME,
                dataset_type=dataset_type,
                dataset_name=dataset_name,
                dataset_config=config,
                dataset_split=MODEL_INDEX_SPLIT,
                metric_type=metric_type,
                metric_name=metric_name,
                metric_config=metric_config,
                metric_value=metrics[key],
            )
            for key, metric_type, metric_name, metric_config in MODEL_INDEX_METRICS
        ]

    display = CARD_DATASETS[dataset_key]
    found = entries(results, f"{display}, {len(names)} classes, LOSO over {results['num_folds']} subjects", dataset_key)
    by_dataset = results.get("by_dataset") or {}
    if len(by_dataset) > 1:
        for name, metrics in sorted(by_dataset.items()):
            found.extend(entries(metrics, f"{display}: {name} subset of the pooled LOSO predictions", f"{dataset_key}/{name}"))
    return found


def render_model_card(
    dataset_key: str,
    context: Mapping[str, str],
    results: Mapping[str, Any],
    *,
    model_name: str,
    template_dir: str | os.PathLike | None = None,
) -> str:
    """The README text: template + common sections + front matter with ``model-index``.

    Args:
        dataset_key: one of `CARD_DATASETS`.
        context: every placeholder's text (`card_context`).
        results: the run's results.json dict (metrics for ``model-index``).
        model_name: the ``model-index`` name (usually the repo name).
        template_dir: see `find_template_dir`.
    """
    import yaml
    from huggingface_hub import ModelCardData

    folder = find_template_dir(template_dir)
    values = dict(context)
    values["common"] = _substitute(load_template(folder, COMMON_TEMPLATE), values, COMMON_TEMPLATE).strip("\n")
    rendered = _substitute(load_template(folder, dataset_key), values, dataset_key)
    front, body = _split_front_matter(rendered, dataset_key)
    try:
        metadata = yaml.safe_load(front) or {}
    except yaml.YAMLError as error:
        raise ModelCardError(f"The YAML front matter of {dataset_key}.md does not parse: {error}") from None
    if not isinstance(metadata, dict):
        raise ModelCardError(f"The YAML front matter of {dataset_key}.md must be a mapping.")
    data = ModelCardData(
        model_name=model_name,
        eval_results=model_index_results(results, dataset_key, class_names=results.get("class_names")),
        **metadata,
    )
    return f"---\n{data.to_yaml()}\n---\n{body.lstrip()}"


def check_model_card(card_text: str, results: Mapping[str, Any]) -> Any:
    """Parse ``card_text`` with ``huggingface_hub.ModelCard`` and check its ``model-index``
    against ``results`` (exact equality). Returns the `ModelCard`.

    Raises:
        ModelCardError: the YAML does not parse, or a metric differs from the results file.
    """
    from huggingface_hub import ModelCard

    try:
        card = ModelCard(card_text, ignore_metadata_errors=False)
    except Exception as error:  # huggingface_hub raises ValueError / yaml errors
        raise ModelCardError(f"The rendered model card does not parse as a Hub model card: {error}") from None
    evaluations = card.data.eval_results or []
    pooled = {r.metric_type: r.metric_value for r in evaluations if r.dataset_split == MODEL_INDEX_SPLIT and "/" not in r.dataset_type}
    for key, metric_type, _, _ in MODEL_INDEX_METRICS:
        if pooled.get(metric_type) != results[key]:
            raise ModelCardError(
                f"The card's {metric_type} ({pooled.get(metric_type)!r}) differs from results.json's {key} ({results[key]!r})."
            )
    return card


# ------------------------------------------------------------------------------------------
# Placeholder texts
# ------------------------------------------------------------------------------------------
def _number(value: Any, digits: int = 4) -> str:
    return f"{float(value):.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def results_table(results: Mapping[str, Any]) -> str:
    """Markdown: the pooled metrics, then per-class recall/F1 and support."""
    matrix = results.get("confusion_matrix") or []
    correct = sum(matrix[i][i] for i in range(len(matrix))) if matrix else None
    accuracy = _number(results["accuracy"]) + (f" ({correct}/{results['num_samples']})" if correct is not None else "")
    headline = _table(
        ["protocol", "samples", "subjects (folds)", "accuracy", "UF1", "UAR"],
        [["pooled LOSO, final epoch", results["num_samples"], results["num_folds"], accuracy, _number(results["uf1"]), _number(results["uar"])]],
    )
    names = results.get("class_names") or []
    recall, f1, support = results.get("per_class_recall") or [], results.get("per_class_f1") or [], results.get("support") or []
    if not (names and len(recall) == len(names) == len(f1) == len(support)):
        return headline
    per_class = _table(
        ["class", "support", "recall", "F1"],
        [[n, s, "n/a" if r is None else _number(r), "n/a" if f is None else _number(f)] for n, s, r, f in zip(names, support, recall, f1)],
    )
    return f"{headline}\n\nPer class (pooled):\n\n{per_class}"


def per_dataset_table(results: Mapping[str, Any]) -> str:
    """Markdown table of each source dataset's subset (composites only), else ''."""
    by_dataset = results.get("by_dataset") or {}
    if len(by_dataset) <= 1:
        return ""
    rows = [
        [name, m["num_samples"], _number(m["accuracy"]), _number(m["uf1"]), _number(m["uar"])]
        for name, m in sorted(by_dataset.items())
    ]
    return "\nEach dataset's subset of the pooled predictions:\n\n" + _table(["dataset", "samples", "accuracy", "UF1", "UAR"], rows) + "\n"


def schedule_table(schedule: Mapping[str, Any], seed: Any) -> str:
    """Markdown table of the fixed training schedule."""
    rows = [[key.replace("_", " "), f"`{value}`"] for key, value in sorted(schedule.items())]
    rows.append(["seed", f"`{seed}`"])
    return _table(["setting", "value"], rows)


def preprocessing_table(settings: Mapping[str, Any]) -> str:
    """Markdown table of the processor's output-defining settings."""
    rows = [[f"`{key}`", f"`{json.dumps(value, sort_keys=True)}`"] for key, value in settings.items()]
    return _table(["setting", "value"], rows)


_MODEL_KEYS = (
    "phase_mode", "num_channels_per_phase", "share_phase_encoder", "encoder_hidden_size", "encoder_depth",
    "use_magnitude_modulation", "fusion_mode", "fusion_granularity", "fusion_init_theta", "use_motion_attention",
    "attention_kernel_size", "hidden_sizes", "depths", "hidden_act", "num_groups", "classifier_dropout", "image_size",
)


def model_table(config: Mapping[str, Any]) -> str:
    """Markdown table of the architecture settings of a config dict."""
    rows = [[f"`{key}`", f"`{json.dumps(config[key])}`"] for key in _MODEL_KEYS if key in config]
    rows.append(["classes (`id2label`)", ", ".join(f"{k}: {v}" for k, v in sorted(config.get("id2label", {}).items(), key=lambda kv: int(kv[0])))])
    return _table(["setting", "value"], rows)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class CardInputs:
    """What `card_context` needs from a run and an export."""

    results: Mapping[str, Any]
    run_config: Mapping[str, Any]
    processor_settings: Mapping[str, Any]
    model_config: Mapping[str, Any]
    num_parameters: int
    final_model_info: Mapping[str, Any] | None
    dataset_key: str
    model_name: str
    repo_id: str | None
    loso_command: str
    export_command: str
    results_sha256: str
    includes_folds: bool
    evidence: Mapping[str, Any] | None = None


EVIDENCE_LABELS = {
    "full": "FMANet (full)",
    "single_phase": "FMANet, onset->apex phase only",
    "fixed_fusion": "FMANet, fixed phase weights",
    "no_modulation": "FMANet, no magnitude modulation",
    "no_attention": "FMANet, no motion attention",
    "mmcof_cnn": "baseline: fixed MM-COF into the same CNN",
    "mmcof_logreg": "baseline: logistic regression on fixed MM-COF (deterministic)",
    "init_from_pretrained": "FMANet, started from SynthME pretraining on another person",
    "plain_no_augmentation_no_ema": "FMANet without augmentation and weight averaging",
}


def evidence_table(evidence: Mapping[str, Any] | None) -> str:
    """The comparison on the same data (variants and baselines, mean ± std over seeds), or "".

    ``evidence`` is a file written by ``benchmarks/collect_synthme2_evidence.py``: ``variants``
    and ``extra_runs`` map a name to ``{"uf1"|"uar"|"accuracy": {"mean", "std", "per_seed"}}``.
    """
    if not evidence:
        return ""
    try:
        seeds = ", ".join(str(s) for s in evidence["seeds"])
        rows = {**evidence["variants"], **evidence.get("extra_runs", {})}
        lines = [
            f"Same data, same protocol, seeds {seeds} (mean ± sample std of pooled LOSO over "
            f"{evidence['data']['subjects']} subjects, {evidence['data']['clips']} clips):",
            "",
            "| model | UF1 | UAR | UF1 per seed |",
            "|---|---:|---:|---|",
        ]
        for name, values in rows.items():
            label = EVIDENCE_LABELS.get(name, name)
            lines.append(
                f"| {label} | {values['uf1']['mean']:.3f} ± {values['uf1']['std']:.3f} | "
                f"{values['uar']['mean']:.3f} ± {values['uar']['std']:.3f} | "
                + ", ".join(f"{v:.3f}" for v in values["uf1"]["per_seed"])
                + " |"
            )
    except (KeyError, TypeError, ValueError) as error:
        raise ModelCardError(
            f"The evidence file does not have the layout benchmarks/collect_synthme2_evidence.py writes ({error!r})."
        ) from error
    return "\n".join(lines) + "\n"


def card_context(inputs: CardInputs) -> dict[str, str]:
    """Every placeholder of the templates (see hub_cards/README.md) as text."""
    results, checked = inputs.results, inputs.run_config.get("checked", {})
    names = list(results.get("class_names") or checked.get("data", {}).get("class_names") or [])
    repo = inputs.repo_id or f"path/to/{inputs.model_name}"
    info = inputs.final_model_info or {}
    final_note = (
        f"It saw {info.get('num_samples', '?')} samples of {len(info.get('subjects', []))} subjects.\n  Its expected "
        "performance on new subjects is the LOSO estimate above, not a number measured on it."
        if info
        else "Its expected performance on new subjects is the LOSO estimate above, not a number measured on it."
    )
    leaky = ""
    if "leaky_best_epoch_uf1" in results:
        leaky = (
            "\n- The run also recorded **leaky** numbers (for each fold, the epoch with the best accuracy ON THE TEST "
            f"SUBJECT), only to compare with papers that report them: accuracy {_number(results['leaky_best_epoch_accuracy'])}, "
            f"UF1 {_number(results['leaky_best_epoch_uf1'])}, UAR {_number(results['leaky_best_epoch_uar'])}. They are "
            "optimistic, and they are not in `model-index`."
        )
    folds = (
        "The fold models are in `folds/<subject>/`: `from_pretrained(repo, subfolder=\"folds/<subject>\")` "
        "reproduces that fold's held-out predictions in `loso_predictions.jsonl`."
        if inputs.includes_folds
        else "The LOSO fold models are not included."
    )
    versions = results.get("versions") or {}
    usage = f"""```python
import fmanet_hf  # registers FMANet and the "micro-expression-recognition" pipeline
from transformers import pipeline

classify = pipeline("micro-expression-recognition", model="{repo}")
print(classify(("onset.png", "apex.png", "offset.png")))                     # [{{'label': ..., 'score': ...}}, ...]
print(classify("clip.mp4", onset=12, offset=40))                             # 0-based indices; apex estimated
```

Without fmanet-hf installed, the remote code in this folder runs the same pipeline and loads
the model and processor (`trust_remote_code=True`). It needs
`pip install torch transformers pillow opencv-contrib-python-headless dlib-bin face-recognition-models`:
`dlib-bin` detects the face and `face-recognition-models` ships the 68-landmark model file
(`shape_predictor_68_face_landmarks.dat`, non-commercial training data, see below). A processor
with `face_backend="mediapipe"` needs MediaPipe's Apache-2.0 model files instead of dlib:
`pip install --no-deps mediapipe==0.10.21`.

```python
from transformers import pipeline

classify = pipeline("micro-expression-recognition", model="{repo}", trust_remote_code=True)
print(classify(("onset.png", "apex.png", "offset.png")))
```

```python
import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification

processor = AutoImageProcessor.from_pretrained("{repo}", trust_remote_code=True)
model = AutoModelForImageClassification.from_pretrained("{repo}", trust_remote_code=True).eval()
inputs = processor("onset.png", "apex.png", "offset.png", return_tensors="pt")
with torch.no_grad():
    probabilities = model(**inputs).logits.softmax(-1)[0]
print({{model.config.id2label[i]: float(p) for i, p in enumerate(probabilities)}})
```

From the command line: `fmanet-hf predict onset.png apex.png offset.png --model {repo} --figure why.png`."""
    return {
        "model_name": inputs.model_name,
        "repo_id": repo,
        "dataset_display": CARD_DATASETS[inputs.dataset_key],
        "class_names": ", ".join(names),
        "num_classes": str(len(names)),
        "num_samples": str(results["num_samples"]),
        "num_subjects": str(results["num_folds"]),
        "accuracy": _number(results["accuracy"]),
        "uf1": _number(results["uf1"]),
        "uar": _number(results["uar"]),
        "chance_uar": _number(1.0 / len(names)) if names else "n/a",
        "results_table": results_table(results),
        "evidence_table": evidence_table(inputs.evidence),
        "per_dataset_table": per_dataset_table(results),
        "loso_command": inputs.loso_command,
        "export_command": inputs.export_command,
        "schedule_table": schedule_table(checked.get("schedule", {}), checked.get("seed", results.get("seed"))),
        "preprocessing_table": preprocessing_table(inputs.processor_settings),
        "model_table": model_table(inputs.model_config),
        "num_parameters": f"{inputs.num_parameters:,}",
        "final_model_note": final_note,
        "folds_note": folds,
        "leaky_note": leaky,
        "versions": ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "not recorded",
        "run_created": str(inputs.run_config.get("info", {}).get("created", "(not recorded)")),
        "results_sha256": inputs.results_sha256,
        "usage": usage,
    }


__all__ = [
    "CARD_DATASETS",
    "CardInputs",
    "ModelCardError",
    "TEMPLATE_DIR_ENV",
    "card_context",
    "evidence_table",
    "check_model_card",
    "detect_card_dataset",
    "find_template_dir",
    "model_index_results",
    "render_model_card",
    "results_table",
]
