"""The subcommands of ``fmanet-hf``: one module per command, plus the flags they share."""
