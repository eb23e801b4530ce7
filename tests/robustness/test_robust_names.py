"""Silently ignored names (issue 14, class 2): a misspelt ``--set`` key, an unknown key in a
``--config`` file, a ``config.json`` or a ``preprocessor_config.json`` is an error naming the
closest valid key; transformers' own keys stay allowed; a file written by an earlier version
of the package, lacking a key added since, loads with the value from before that key existed.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

from fmanet_hf import FMANetConfig, FMANetForImageClassification, FMANetImageProcessor
from fmanet_hf.cli import main as cli_main
from fmanet_hf.errors import FMANetConfigError
from tests.helpers.tiny import tiny_config_kwargs, tiny_model, tiny_pixel_values


def one_line_cli_error(argv, capsys) -> str:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


# ----------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("command", ["loso", "train", "ablate", "pretrain"])
def test_a_misspelt_set_key_names_the_closest_setting(command, tmp_path, capsys):
    # The dataset root does not exist: the key is checked before any data is read.
    err = one_line_cli_error([command, "--root", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--set", "hiden_sizes=[8,16]"], capsys)
    assert "--set hiden_sizes=...: 'hiden_sizes' is not an FMANetConfig setting (did you mean 'hidden_sizes'?)" in err
    assert not (tmp_path / "o").exists()


def test_set_refuses_transformers_keys_it_would_ignore(tmp_path, capsys):
    err = one_line_cli_error(["loso", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "o"), "--set", "id2label={}"], capsys)
    assert "'id2label' is not an FMANetConfig setting" in err


def test_an_unknown_key_in_a_config_file_names_the_closest_setting(tmp_path, capsys):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"hidden_sizes": [8, 16], "num_grups": 4}))
    err = one_line_cli_error(["loso", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "o"), "--config", str(path)], capsys)
    assert f"--config {path}: unknown FMANetConfig setting 'num_grups' (did you mean 'num_groups'?)" in err


def test_a_misspelt_flow_parameter_names_the_closest_one():
    with pytest.raises(FMANetConfigError, match=r"Unknown parameter 'nscale' for flow_method='tvl1' \(did you mean 'nscales'\?\)"):
        FMANetImageProcessor(flow_method="tvl1", flow_params={"nscale": 3})


# ----------------------------------------------------------------------------- config.json
def saved_config(tmp_path, **changes):
    tiny_model().save_pretrained(tmp_path)
    values = json.loads((tmp_path / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            values.pop(key)
        else:
            values[key] = value
    (tmp_path / "config.json").write_text(json.dumps(values))
    return tmp_path


def test_python_config_arguments_are_checked_too():
    with pytest.raises(FMANetConfigError, match=r"unknown setting 'hiden_sizes' \(did you mean 'hidden_sizes'\?\)"):
        FMANetConfig(hiden_sizes=[8, 16])


@pytest.mark.parametrize("loader", ["config", "auto-config", "model", "auto-model"])
def test_an_unknown_key_in_config_json_names_the_closest_setting(tmp_path, loader):
    folder = saved_config(tmp_path, use_motion_atention=False)
    load = {
        "config": FMANetConfig.from_pretrained,
        "auto-config": AutoConfig.from_pretrained,
        "model": lambda path: FMANetForImageClassification.from_pretrained(path, use_safetensors=True),
        "auto-model": AutoModelForImageClassification.from_pretrained,
    }[loader]
    with pytest.raises(FMANetConfigError, match=r"unknown setting 'use_motion_atention' \(did you mean 'use_motion_attention'\?\)"):
        load(folder)


def test_transformers_own_config_keys_stay_allowed(tmp_path):
    transformers_keys = {
        "auto_map": {"AutoConfig": "configuration_fmanet.FMANetConfig"},
        "architectures": ["FMANetForImageClassification"],
        "transformers_version": "4.46.3",
        "torch_dtype": "float32",
        "_name_or_path": "someone/fmanet",
        "use_bfloat16": False,
        "problem_type": "single_label_classification",
        "return_dict": True,
        "max_length": 20,
    }
    folder = saved_config(tmp_path, **transformers_keys)
    model = FMANetForImageClassification.from_pretrained(folder, use_safetensors=True)
    assert model.config.num_labels == 3


def test_a_config_json_of_an_earlier_version_loads_with_the_old_defaults(tmp_path):
    """Written before the fixed-MM-COF baseline existed: no mmcof_* keys. They are read only by
    phase_mode='mmcof', which such a file cannot ask for, so the old behaviour is the defaults'."""
    model = tiny_model()
    folder = saved_config(tmp_path, mmcof_modulation_threshold=None, mmcof_modulation_sharpness=None)
    assert "mmcof_modulation_threshold" not in (folder / "config.json").read_text()
    reloaded = FMANetForImageClassification.from_pretrained(folder, use_safetensors=True).eval()
    assert (reloaded.config.mmcof_modulation_threshold, reloaded.config.mmcof_modulation_sharpness) == (0.15, 20.0)
    pixels = tiny_pixel_values(reloaded.config)
    with torch.no_grad():
        assert torch.equal(reloaded(pixel_values=pixels).logits, model(pixel_values=pixels).logits)


# ----------------------------------------------------------------------------- preprocessor_config.json
def saved_processor(tmp_path, **changes):
    FMANetImageProcessor(align_faces=False, flow_method="dis").save_pretrained(tmp_path)
    values = json.loads((tmp_path / "preprocessor_config.json").read_text())
    for key, value in changes.items():
        if value is None:
            values.pop(key)
        else:
            values[key] = value
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(values))
    return tmp_path


@pytest.mark.parametrize("loader", [FMANetImageProcessor.from_pretrained, AutoImageProcessor.from_pretrained], ids=["class", "auto"])
def test_an_unknown_key_in_preprocessor_config_names_the_closest_setting(tmp_path, loader):
    folder = saved_processor(tmp_path, stabilisation="none")
    with pytest.raises(FMANetConfigError, match=r"preprocessor_config.json has an unknown setting 'stabilisation' \(did you mean 'stabilization'\?\)"):
        loader(folder)


def test_python_processor_arguments_are_checked_too():
    with pytest.raises(FMANetConfigError, match=r"unknown setting 'flow_methd' \(did you mean 'flow_method'\?\)"):
        FMANetImageProcessor(flow_methd="dis")


def test_the_processor_folder_of_the_cli_is_checked(tmp_path, capsys):
    folder = saved_processor(tmp_path / "processor", size_px=64)
    err = one_line_cli_error(["prepare", "--root", str(tmp_path), "--processor", str(folder)], capsys)
    assert "unknown setting 'size_px' (did you mean 'size'?)" in err


def test_transformers_own_processor_keys_stay_allowed(tmp_path):
    folder = saved_processor(
        tmp_path, processor_class="FMANetProcessor", feature_extractor_type="FMANetFeatureExtractor", do_resize=False,
        auto_map={"AutoImageProcessor": "image_processing_fmanet.FMANetImageProcessor"},
    )
    loaded = FMANetImageProcessor.from_pretrained(folder)
    assert loaded.flow_method == "dis"


def test_a_preprocessor_config_of_an_earlier_version_loads_with_the_old_defaults(tmp_path):
    """Written before the flow margin, robust normalisation and intensity matching existed: the
    processor of that time computed the flow on the crop itself (margin 0), normalised by the
    plain maximum (percentile 100) and matched no intensities."""
    folder = saved_processor(tmp_path, flow_margin_fraction=None, normalization_percentile=None, intensity_matching=None)
    for loader in (FMANetImageProcessor.from_pretrained, AutoImageProcessor.from_pretrained):
        loaded = loader(folder)
        assert (loaded.flow_margin_fraction, loaded.normalization_percentile, loaded.intensity_matching) == (0.0, 100.0, "none")
        assert loaded.flow_method == "dis"  # the keys it has are read as they are
    # Today's defaults are unchanged for processors built in Python.
    fresh = FMANetImageProcessor()
    assert (fresh.flow_margin_fraction, fresh.normalization_percentile, fresh.intensity_matching) == (0.125, 99.5, "mean_std")
