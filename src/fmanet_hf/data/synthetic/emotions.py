"""SynthME's classes: the MEGC 3 classes and the native emotions drawn for them."""

from __future__ import annotations

MEGC3_CLASSES = ("negative", "positive", "surprise")
NEGATIVE_EMOTIONS = ("disgust", "sadness", "repression", "anger", "fear")
NATIVE_EMOTIONS = ("happiness", "surprise") + NEGATIVE_EMOTIONS
NATIVE_TO_MEGC3 = {"happiness": "positive", "surprise": "surprise", **{e: "negative" for e in NEGATIVE_EMOTIONS}}


__all__ = ["MEGC3_CLASSES", "NATIVE_EMOTIONS", "NATIVE_TO_MEGC3", "NEGATIVE_EMOTIONS"]
