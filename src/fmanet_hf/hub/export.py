"""``fmanet-hf export RUN_DIR OUT_DIR``: a LOSO run -> a Hub-ready model folder.

Input: the results folder of ``fmanet-hf loso ... --train-final-model`` (see
`fmanet_hf.training.run_folder`): ``results.json``, ``run_config.json``, ``predictions.jsonl``,
``final_model/`` (the model trained on all subjects, with its processor) and, with
``--save-fold-models``, ``folds/<subject>/``.

Output (built in a temporary sibling folder and renamed into place, so a failed export
leaves nothing half-written)::

    model.safetensors            the final model (weights copied bit for bit)
    config.json                  with id2label, auto_map (AutoConfig, AutoModel,
                                 AutoModelForImageClassification) and custom_pipelines
                                 (the micro-expression-recognition task), all remote code
    preprocessor_config.json     the processor the training data was prepared with
    *.py                         remote code: configuration/modeling/image processing/pipeline + helpers
    README.md                    model card from hub_cards/<dataset>.md, model-index from results.json
    loso_results.json            the run's results.json, unchanged
    loso_predictions.jsonl       the run's held-out predictions, unchanged
    training_info.json           how the final model was trained
    fmanet_export.json           provenance: source run, digests, package version
    folds/<subject>/             optional: each fold's model (+ processor)

Everything is loaded with safetensors only and written by ``save_pretrained``, so the
folder never contains a pickle.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..atomic import atomic_directory, atomic_write_json, atomic_write_text
from ..data.registry import get_dataset_loader
from ..errors import CheckpointError
from ..output_paths import OUTPUT_MARKER_NAME, check_replaceable_folder, checked_output_path, mark_output_folder
from .cards import CARD_DATASETS, CardInputs, card_context, check_model_card, detect_card_dataset, file_sha256, render_model_card

EXPORT_FORMAT_VERSION = 1
RESULTS_COPY = "loso_results.json"
PREDICTIONS_COPY = "loso_predictions.jsonl"
PROVENANCE_NAME = "fmanet_export.json"


@dataclass
class ExportInfo:
    """What `export_run` wrote.

    Attributes:
        out_dir: the exported folder.
        dataset: card template used.
        files: relative paths of every file written, sorted.
        folds: subjects whose fold models were included.
        metrics: ``{"accuracy", "uf1", "uar"}`` copied into the card's model-index.
    """

    out_dir: Path
    dataset: str
    files: list[str] = field(default_factory=list)
    folds: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: {what}") from None
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is unreadable ({error}); the run folder is damaged.") from None


def _default_model_config() -> dict[str, Any]:
    from ..configuration_fmanet import FMANetConfig
    from ..training.model_config import config_to_dict

    return config_to_dict(FMANetConfig())


def reproduction_commands(run_config: dict[str, Any], results: dict[str, Any], processor_settings: dict[str, Any], dataset_key: str, data_root: Path | None) -> str:
    """The commands that reproduce the run, rebuilt from run_config.json (and the SynthME manifest):
    the ``synth`` line for SynthME data, then ``loso`` with the processor, schedule, recipe,
    ``--init-from`` and model settings that differ from the defaults (one command per line)."""
    from ..flow import FLOW_METHODS, OPENCV_TVL1_PARAMS
    from ..image_processing_fmanet import FMANetImageProcessor

    checked = run_config.get("checked", {})
    schedule = checked.get("schedule", {})
    lines = []
    data_arg = "DATA_DIR"
    if dataset_key == "synthme" and data_root is not None and (data_root / "synthme_manifest.json").is_file():
        manifest = _read_json(data_root / "synthme_manifest.json", "the SynthME manifest")
        arguments = manifest.get("arguments", {})
        if str(manifest.get("generator_version", "")).startswith("2."):
            people = arguments.get("people_group") or ",".join(s.get("person", "?") for s in manifest.get("subjects", []))
            lines.append(
                f"fmanet-hf synth --generator 2.0 --people {people} --out {data_arg} --samples-per-class "
                f"{arguments.get('samples_per_class')} --frames-per-clip {arguments.get('frames_per_clip')} --seed {manifest.get('seed')}"
                f"   # SynthME generator {manifest.get('generator_version')}: one subject per person"
            )
        else:
            lines.append(
                f"fmanet-hf synth --out {data_arg} --subjects {arguments.get('subjects')} --samples-per-class "
                f"{arguments.get('samples_per_class')} --frames-per-clip {arguments.get('frames_per_clip')} --seed {manifest.get('seed')}"
                f"   # SynthME generator {manifest.get('generator_version')}, faces: {', '.join(arguments.get('face_sources') or [])}"
            )
    parts = ["fmanet-hf loso", f"--dataset {get_dataset_loader(dataset_key).name}", f"--root {data_arg}"]
    defaults = FMANetImageProcessor().output_settings()
    if processor_settings.get("flow_method") != defaults["flow_method"]:
        parts.append(f"--flow-method {processor_settings['flow_method']}")
    if processor_settings.get("size") != defaults["size"]:
        parts.append(f"--size {processor_settings['size']['height']}")
    if processor_settings.get("face_backend", "dlib") != "dlib":  # settings saved before the option are dlib's
        parts.append(f"--face-backend {processor_settings['face_backend']}")
    other = sorted(
        k for k in defaults
        if k not in ("flow_method", "flow_params", "size", "face_backend") and processor_settings.get(k) != defaults[k]
    )
    method = processor_settings.get("flow_method")
    # `--flow-method M` alone gives M's default parameters: compare with those.
    method_defaults = FMANetImageProcessor(flow_method=method).output_settings() if method in FLOW_METHODS else defaults
    if processor_settings.get("flow_params") != method_defaults["flow_params"]:
        if method == "tvl1" and processor_settings.get("flow_params") == OPENCV_TVL1_PARAMS:
            parts.append("--flow-params opencv")
        else:
            other.append("flow_params")
    if other:
        parts.append("--processor PROCESSOR_DIR")
    option_names = {
        "epochs": "--epochs", "batch_size": "--batch-size", "learning_rate": "--lr", "weight_decay": "--weight-decay",
        "optimizer": "--optimizer", "lr_schedule": "--lr-schedule", "class_weighting": "--class-weighting",
    }
    for key, option in option_names.items():
        if key in schedule:
            parts.append(f"{option} {schedule[key]}")
    if schedule.get("augmentation", "none") != "none":
        parts.append(f"--augment {schedule['augmentation']}")
    if float(schedule.get("ema_decay", 0.0)) > 0:
        parts.append(f"--ema-decay {schedule['ema_decay']}")
    if schedule.get("precision", "fp32") != "fp32":
        parts.append(f"--precision {schedule['precision']}")
    if checked.get("init_from"):
        parts.append("--init-from PRETRAINED_DIR")
    if schedule.get("optimizer") == "sgd" and schedule.get("momentum"):
        parts.append(f"# momentum {schedule['momentum']} (Python API only)")
    parts.append(f"--seed {checked.get('seed', 0)}")
    default_config = _default_model_config()
    ignored = {"id2label", "label2id", "num_labels"}
    for key, value in sorted((checked.get("model_config") or {}).items()):
        if key not in ignored and key in default_config and default_config[key] != value:
            parts.append(shlex.quote(f"--set={key}={json.dumps(value, separators=(',', ':'))}"))
    if checked.get("record_leaky_best_epoch"):
        parts.append("--record-leaky-best-epoch")
    if checked.get("save_fold_models"):
        parts.append("--save-fold-models")
    fold_workers = results.get("settings", {}).get("fold_workers") or 1
    if fold_workers > 1:  # a fold's float result depends on its thread count
        parts.append(f"--fold-workers {fold_workers}")
    folds_at_once = results.get("settings", {}).get("folds_at_once") or 1
    if folds_at_once > 1:  # batched folds draw their dropout masks from their own seeds; the batch sets the rounding
        parts.append(f"--folds-at-once {folds_at_once}")
    parts += ["--train-final-model", "--cpu" if str(results.get("settings", {}).get("device", "")).startswith("cpu") else "", "--out RUN_DIR"]
    lines.append(" ".join(p for p in parts if p))
    if other:
        lines.append(f"# PROCESSOR_DIR: a folder with this card's preprocessor_config.json (settings {', '.join(other)} differ from the defaults)")
    if checked.get("init_from"):
        lines.append(
            "# PRETRAINED_DIR: the `fmanet-hf pretrain` folder the run started from (model.safetensors sha256 "
            f"{checked['init_from'].get('sha256', '?')})"
        )
    return "\n".join(lines)


def _copy_model(source: Path, target: Path, processor: Any) -> Any:
    """Load ``source`` (safetensors only) and ``save_pretrained`` it (+ processor) into ``target``."""
    from ..pretrained import load_pretrained_model

    model = load_pretrained_model(source)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    if processor is not None:
        processor.save_pretrained(target)
    return model


def export_run(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    dataset: str | None = None,
    include_folds: bool = False,
    model_name: str | None = None,
    repo_id: str | None = None,
    template_dir: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    overwrite: bool = False,
    export_command: str | None = None,
    evidence: str | os.PathLike | None = None,
) -> ExportInfo:
    """Build a Hub-ready folder from a finished LOSO run (see the module docstring).

    Args:
        run_dir: the ``fmanet-hf loso`` results folder (needs ``final_model/``).
        out_dir: the folder to create (refused if it exists, unless ``overwrite``).
        dataset: card template (`CARD_DATASETS`); default: detected from the predictions.
        include_folds: also export ``folds/<subject>/`` (needs ``--save-fold-models``).
        model_name: ``model-index`` name; default: ``repo_id``'s name, else ``fmanet-<dataset>``.
        repo_id: the intended Hub repo (used in the card's examples).
        template_dir: card templates (default: the source tree's ``hub_cards/``).
        data_root: the dataset folder; for SynthME its manifest gives the exact ``synth`` command.
        overwrite: replace an existing ``out_dir``.
        export_command: the command line to quote in the card (default: rebuilt).
        evidence: a committed comparison file (``benchmarks/collect_synthme2_evidence.py``
            output) whose variants and baselines the card shows beside the run's own
            numbers; copied into the folder as ``evidence.json``.

    Raises:
        CheckpointError: the run is unfinished, has no final model or processor, or holds pickles.
        ModelCardError: a template is missing/broken or the card does not match the results.
        OutputPathError: ``out_dir`` is empty, is / contains / sits inside an input, or
            ``overwrite`` would remove a folder (or a file in it) that export did not write.
    """
    # The names first: a typo here should cost nothing.
    if repo_id is not None and (repo_id.count("/") != 1 or not all(part.strip() for part in repo_id.split("/"))):
        raise CheckpointError(f"--repo-id must look like 'user/name', got {repo_id!r}.")
    if model_name is not None and not model_name.strip():
        raise CheckpointError("--model-name is empty (an unset shell variable?); give a name, or leave the flag out for the default.")
    from ..image_processing_fmanet import FMANetImageProcessor
    from ..training.run_folder import FINAL_MODEL_DIR, FOLDS_DIR, PREDICTIONS_NAME, RESULTS_NAME, RUN_CONFIG_NAME, fold_file_stem

    run = Path(run_dir)
    out = Path(out_dir)
    if not run.is_dir():
        raise CheckpointError(f"The run folder {run} does not exist.")
    if out.exists() and not overwrite:
        raise CheckpointError(f"{out} already exists; choose a new folder or pass --overwrite to replace it.")
    checked_output_path(
        out_dir,
        flag="OUT_DIR",
        inputs={"RUN_DIR": run_dir, "--data-root": data_root, "--evidence": evidence, "--template-dir": template_dir},
    )
    if overwrite:
        check_replaceable_folder(out, command="export", flag="OUT_DIR")
    results_path = run / RESULTS_NAME
    if not results_path.is_file():
        if (run / "config.json").is_file():
            raise CheckpointError(
                f"{run} is a trained model, not a LOSO run: a Hub card needs LOSO results. Run `fmanet-hf loso ... "
                "--train-final-model --out RUN_DIR` and export RUN_DIR."
            )
        raise CheckpointError(f"{run} has no {RESULTS_NAME}: the LOSO run has not finished (rerun the same command to resume).")
    results = _read_json(results_path, "the run's pooled results")
    run_config = _read_json(run / RUN_CONFIG_NAME, "the run's settings")
    evidence_data = None
    if evidence is not None:
        if not Path(evidence).is_file():
            raise CheckpointError(f"--evidence {str(evidence)!r} is not a file; give a results file of benchmarks/collect_synthme2_evidence.py.")
        evidence_data = _read_json(Path(evidence), "the evidence file")
    final = run / FINAL_MODEL_DIR
    if not (final / "config.json").is_file():
        raise CheckpointError(
            f"{run} has no {FINAL_MODEL_DIR}/ (the model trained on all subjects). Rerun the same `fmanet-hf loso` command "
            "with --train-final-model: finished folds are reused, only the final model is trained."
        )
    if not (final / "preprocessor_config.json").is_file():
        raise CheckpointError(
            f"{final} has no preprocessor_config.json, so the preprocessing is unknown. Save the processor the data was "
            f"prepared with there (FMANetImageProcessor(...).save_pretrained('{final}')) and export again."
        )
    dataset_key = dataset or detect_card_dataset(results)
    if dataset_key not in CARD_DATASETS:
        raise CheckpointError(f"--dataset must be one of {list(CARD_DATASETS)}, got {dataset_key!r}.")
    processor = FMANetImageProcessor.from_pretrained(str(final))
    subjects = list(run_config.get("checked", {}).get("data", {}).get("subjects") or [f["subject"] for f in results.get("per_fold", [])])
    if include_folds:
        missing = [s for s in subjects if not (run / FOLDS_DIR / fold_file_stem(s) / "config.json").is_file()]
        if missing:
            raise CheckpointError(
                f"Fold models of {missing[:5]}{'...' if len(missing) > 5 else ''} are missing in {run / FOLDS_DIR}; the run "
                "was made without --save-fold-models. Export without --include-folds, or rerun into a new folder with it."
            )
    model_name = model_name or (repo_id.split("/")[-1] if repo_id else f"fmanet-{dataset_key}")
    final_info_path = final / "training_info.json"
    final_info = _read_json(final_info_path, "") if final_info_path.is_file() else None

    info = ExportInfo(out_dir=out, dataset=dataset_key, metrics={k: results[k] for k in ("accuracy", "uf1", "uar")})
    with atomic_directory(out, overwrite=overwrite) as staging:
        model = _copy_model(final, staging, processor)
        # pipeline(TASK, model=folder, trust_remote_code=True) without the package.
        from ..pipeline import add_pipeline_code

        add_pipeline_code(staging)
        if include_folds:
            for subject in subjects:
                stem = fold_file_stem(subject)
                _copy_model(run / FOLDS_DIR / stem, staging / FOLDS_DIR / stem, processor)
                info.folds.append(subject)
        shutil.copyfile(results_path, staging / RESULTS_COPY)
        if (run / PREDICTIONS_NAME).is_file():
            shutil.copyfile(run / PREDICTIONS_NAME, staging / PREDICTIONS_COPY)
        if final_info is not None:
            atomic_write_json(staging / "training_info.json", final_info)
        config_dict = json.loads((staging / "config.json").read_text())
        command = export_command or " ".join(
            ["fmanet-hf export RUN_DIR OUT_DIR", f"--dataset {dataset_key}"]
            + (["--include-folds"] if include_folds else [])
            + ([f"--repo-id {repo_id}"] if repo_id else [])
        )
        inputs = CardInputs(
            results=results,
            run_config=run_config,
            processor_settings=processor.output_settings(),
            model_config=config_dict,
            num_parameters=sum(p.numel() for p in model.parameters()),
            final_model_info=final_info,
            dataset_key=dataset_key,
            model_name=model_name,
            repo_id=repo_id,
            loso_command=reproduction_commands(run_config, results, processor.output_settings(), dataset_key, Path(data_root) if data_root else None),
            export_command=command,
            results_sha256=file_sha256(results_path),
            includes_folds=include_folds,
            evidence=evidence_data,
        )
        card = render_model_card(dataset_key, card_context(inputs), results, model_name=model_name, template_dir=template_dir)
        check_model_card(card, results)
        atomic_write_text(staging / "README.md", card)
        if evidence_data is not None:
            atomic_write_json(staging / "evidence.json", evidence_data)
        from ..version import __version__

        atomic_write_json(
            staging / PROVENANCE_NAME,
            {
                "export_format_version": EXPORT_FORMAT_VERSION,
                "fmanet_hf_version": __version__,
                "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "source_run": str(run.resolve()),
                "run_config_digest": results.get("settings", {}).get("run_config_digest"),
                "results_sha256": inputs.results_sha256,
                "final_model_sha256": file_sha256(final / "model.safetensors"),
                "dataset_template": dataset_key,
                "folds": info.folds,
            },
        )
        mark_output_folder(staging, "export")
        # What push uploads: the hidden marker stays local.
        info.files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file() and p.name != OUTPUT_MARKER_NAME)
    return info


__all__ = ["EXPORT_FORMAT_VERSION", "ExportInfo", "export_run", "reproduction_commands"]
