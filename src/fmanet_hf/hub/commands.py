"""The ``export`` and ``push`` subcommands of ``fmanet-hf``.

    fmanet-hf export RUN_DIR OUT_DIR [--dataset casme2] [--include-folds] [--repo-id user/name]
    fmanet-hf push OUT_DIR --repo-id user/name [--private] [--dry-run]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any


def cmd_export(args: argparse.Namespace) -> int:
    """``fmanet-hf export``: see `fmanet_hf.hub.export.export_run`."""
    from .cards import CARD_DATASETS
    from .export import export_run
    from .push import format_plan, plan_upload

    command = ["fmanet-hf export RUN_DIR OUT_DIR"]
    if args.dataset:
        command.append(f"--dataset {args.dataset}")
    if args.include_folds:
        command.append("--include-folds")
    if args.repo_id:
        command.append(f"--repo-id {shlex.quote(args.repo_id)}")
    if args.model_name:
        command.append(f"--model-name {shlex.quote(args.model_name)}")
    if args.data_root:
        command.append("--data-root DATA_DIR")
    info = export_run(
        args.run_dir,
        args.out_dir,
        dataset=args.dataset,
        include_folds=args.include_folds,
        model_name=args.model_name,
        repo_id=args.repo_id,
        template_dir=args.template_dir,
        data_root=args.data_root,
        overwrite=args.overwrite,
        export_command=" ".join(command),
    )
    print(format_plan(plan_upload(info.out_dir)))
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in info.metrics.items())
    print(
        f"\nExported {args.run_dir} -> {info.out_dir} (card: {CARD_DATASETS[info.dataset]}; pooled LOSO {metrics}"
        + (f"; {len(info.folds)} fold models" if info.folds else "")
        + ")."
    )
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """``fmanet-hf push``: see `fmanet_hf.hub.push.push_folder`."""
    from .push import format_plan, push_folder

    result = push_folder(
        args.folder,
        args.repo_id,
        private=args.private,
        dry_run=args.dry_run,
        token=args.token,
        commit_message=args.message,
        revision=args.revision,
    )
    print(format_plan(result.items))
    if result.dry_run:
        print(f"\nDry run: nothing was uploaded. Without --dry-run these files go to https://huggingface.co/{result.repo_id}.")
    else:
        print(f"\nUploaded to {result.repo_url or result.repo_id}" + (f" ({result.commit_url})" if result.commit_url else "") + ".")
    return 0


def register_hub_commands(subparsers: Any) -> dict[str, argparse.ArgumentParser]:
    """Add ``export`` and ``push`` to an ``argparse`` subparsers object (``handler`` defaults set)."""
    from .cards import CARD_DATASETS, TEMPLATE_DIR_ENV

    export = subparsers.add_parser(
        "export", help="turn a LOSO run into a Hub-ready model folder with a model card",
        description="Build a Hub-ready folder from `fmanet-hf loso ... --train-final-model`: the final model "
        "(safetensors), config with id2label, processor, remote code, the LOSO results and a README model card "
        "whose model-index is read from results.json.",
    )
    export.add_argument("run_dir", help="the LOSO results folder (with final_model/)")
    export.add_argument("out_dir", help="the folder to create")
    export.add_argument("--dataset", choices=list(CARD_DATASETS), help="card template (default: detected from the run)")
    export.add_argument("--include-folds", action="store_true", help="also export folds/<subject>/ (run made with --save-fold-models)")
    export.add_argument("--repo-id", help="the intended Hub repo, used in the card's examples")
    export.add_argument("--model-name", help="name in the card's model-index (default: the repo name)")
    export.add_argument("--data-root", help="the dataset folder (SynthME: its manifest gives the exact synth command)")
    export.add_argument("--template-dir", help=f"card templates (default: the source tree's hub_cards/ or ${TEMPLATE_DIR_ENV})")
    export.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")
    export.set_defaults(handler=cmd_export)

    push = subparsers.add_parser(
        "push", help="upload an exported folder to the Hugging Face Hub",
        description="Create the model repo (if needed) and upload the folder in one commit. The token comes from "
        "--token, $HF_TOKEN or `hf auth login`.",
    )
    push.add_argument("folder", help="a folder written by `fmanet-hf export`")
    push.add_argument("--repo-id", required=True, help="user/name or org/name")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--dry-run", action="store_true", help="list what would be uploaded, with sizes; upload nothing")
    push.add_argument("--token", help="Hub token (default: $HF_TOKEN or the stored login)")
    push.add_argument("--message", help="commit message")
    push.add_argument("--revision", help="branch to commit to (default: main)")
    push.set_defaults(handler=cmd_push)
    return {"export": export, "push": push}


__all__ = ["cmd_export", "cmd_push", "register_hub_commands"]
