"""The subcommands of ``fmanet-hf``: one module per command, plus the flags they share.

Each command module has ``register(subparsers) -> parser`` (declares the command's flags
and sets ``handler=run`` as the parser's default) and ``run(args) -> exit status``. Its
top level imports only argparse and the shared flag modules; torch, transformers, datasets
and gradio are imported inside ``run``, so building the parser stays cheap.

- `common_flags`: flags used by several commands, each declared once, and argparse types;
- `inputs`: what those flags build (processor, prepared dataset, model config, accelerator).

`fmanet_hf.cli` registers the modules named in `COMMANDS`, in that order.
"""

#: The subcommands, in the order ``fmanet-hf --help`` lists them; each is a module here.
COMMANDS = ("predict", "synth", "prepare", "baseline", "loso", "ablate", "pretrain", "train", "export", "push", "space", "demo")
#: The commands that train models.
TRAINING_COMMANDS = ("loso", "ablate", "train")

__all__ = ["COMMANDS", "TRAINING_COMMANDS"]
