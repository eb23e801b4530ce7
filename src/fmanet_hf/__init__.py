"""fmanet-hf: FMANet micro-expression recognition as a Hugging Face model."""

__version__ = "0.1.0"

from .errors import *  # noqa: F401,F403
