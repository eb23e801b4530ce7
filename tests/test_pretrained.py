"""A Hub repo id that cannot be fetched gets a message about the network or HF_HUB_OFFLINE,
not about converting weights (fmanet_hf.pretrained)."""

from __future__ import annotations

import pytest

from fmanet_hf.cli import main as cli_main
from fmanet_hf.errors import CheckpointError
from fmanet_hf.pretrained import load_pretrained_model


def test_hub_id_offline_names_hf_hub_offline_not_conversion():
    # conftest sets HF_HUB_OFFLINE=1 and an empty HF_HOME: the repo cannot be in the cache
    with pytest.raises(CheckpointError) as error:
        load_pretrained_model("someone/fmanet-not-cached")
    message = str(error.value)
    assert "HF_HUB_OFFLINE=1" in message and "Hub repo id" in message and "hf download someone/fmanet-not-cached" in message
    assert "convert" not in message.lower() and "\n" not in message


def test_hub_id_without_network_says_the_hub_could_not_be_reached(monkeypatch):
    from huggingface_hub import constants

    from fmanet_hf.modeling_fmanet import FMANetForImageClassification

    def unreachable(*args, **kwargs):
        try:
            raise ConnectionError("[Errno -2] Name or service not known")
        except ConnectionError as cause:
            raise OSError("We couldn't connect to 'https://huggingface.co' to load the files") from cause

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(FMANetForImageClassification, "from_pretrained", unreachable)
    with pytest.raises(CheckpointError, match="could not be reached \\(no network connection\\?\\)") as error:
        load_pretrained_model("someone/fmanet-x")
    assert "convert" not in str(error.value).lower()


def test_predict_with_an_offline_hub_id_is_one_line_about_the_network(capsys):
    assert cli_main(["predict", "a.png", "b.png", "c.png", "--model", "someone/fmanet-not-cached"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: 'someone/fmanet-not-cached' is not a local folder") and "HF_HUB_OFFLINE" in err
    assert "\n" not in err


def test_predict_model_help_says_folder_or_hub_id(capsys):
    with pytest.raises(SystemExit):
        cli_main(["predict", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "a saved FMANet folder, or a Hugging Face Hub repo id (user/name" in help_text
