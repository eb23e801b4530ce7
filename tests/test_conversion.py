"""conversion/: plain state dicts -> fmanet-hf folders; upgrades of older folder formats;
and the rule that pickle weights are loaded nowhere else."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fmanet_hf import CheckpointError, FMANetForImageClassification, FMANetImageProcessor
from fmanet_hf.errors import FMANetConfigError
from tests.helpers.tiny import tiny_config_kwargs, tiny_model

ROOT = Path(__file__).resolve().parents[1]
CONVERSION = ROOT / "conversion"


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"conversion_{name}", CONVERSION / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


convert = _load_script("convert_state_dict")
upgrade = _load_script("upgrade_checkpoint")

TINY = tiny_config_kwargs(encoder_depth=2)  # two encoder convs per phase: the key map's layer rule runs on layer 1 too


def _tiny_model(seed: int = 3) -> FMANetForImageClassification:
    model = tiny_model(seed, **TINY)
    with torch.no_grad():  # move every parameter off its init value, so a mix-up cannot go unnoticed
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model


def research_name(name: str) -> str:
    """Our parameter name -> the hypothetical research naming that sample_key_map.json describes.

    Written independently of the key map (plain string surgery), so the test checks the map.
    """
    parts = name.split(".")
    if name.startswith("fmanet.phase_encoders."):
        k, i, module, tensor = parts[2], parts[4], parts[5], parts[6]
        return f"flow_encoders.{k}.blocks.{i}.{'conv' if module == 'convolution' else 'gn'}.{tensor}"
    if name.startswith("fmanet.magnitude_modulation."):
        return {"log_slope": "mag_gate.slope_log", "threshold": "mag_gate.tau"}[parts[2]]
    if name == "fmanet.phase_fusion.theta_logits":
        return "fusion.theta"
    if name.startswith("fmanet.motion_attention."):
        return f"attention.conv.{parts[-1]}"
    if name.startswith("fmanet.stages."):
        stage = int(parts[2]) + 1  # research code counts layers from 1
        if parts[3] == "downsample":
            return f"backbone.layer{stage}.down.{'conv' if parts[4] == 'convolution' else 'gn'}.{parts[5]}"
        block, rest = parts[4], parts[5:]
        table = {
            ("first", "convolution"): "conv1", ("first", "normalization"): "gn1",
            ("second_convolution",): "conv2", ("second_normalization",): "gn2",
        }
        key = tuple(rest[:2]) if rest[0] == "first" else (rest[0],)
        return f"backbone.layer{stage}.res{block}.{table[key]}.{rest[-1]}"
    if name.startswith("classifier."):
        return f"fc.{parts[-1]}"
    raise AssertionError(name)


def _research_checkpoint(model, path: Path, *, data_parallel: bool = True, nested: bool = True) -> Path:
    state = {("module." if data_parallel else "") + research_name(k): v.clone() for k, v in model.state_dict().items()}
    state["module.backbone.layer1.down.gn.num_batches_tracked" if data_parallel else "x.num_batches_tracked"] = torch.tensor(7)
    payload = {"state_dict": state, "epoch": 30, "best_acc": 0.81} if nested else state
    torch.save(payload, path)
    return path


def test_sample_key_map_converts_a_dataparallel_research_checkpoint(tmp_path):
    model = _tiny_model()
    weights = _research_checkpoint(model, tmp_path / "best.pth")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(TINY))
    converted, report = convert.convert_state_dict(weights, tmp_path / "out", CONVERSION / "sample_key_map.json", config=config_path)
    assert report.ignored == ["backbone.layer1.down.gn.num_batches_tracked"]
    assert len(report.renamed) == len(model.state_dict())
    for name, tensor in model.state_dict().items():
        assert torch.equal(converted.state_dict()[name], tensor), name
    # The written folder loads through the package's safe loader and computes the same outputs.
    from fmanet_hf.pretrained import load_model

    loaded, processor, trained = load_model(tmp_path / "out")
    assert trained and isinstance(processor, FMANetImageProcessor)
    assert (tmp_path / "out" / "model.safetensors").is_file() and not list((tmp_path / "out").glob("*.bin"))
    pixels = torch.rand(2, 6, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(pixel_values=pixels).logits, model(pixel_values=pixels).logits)


def test_plain_top_level_state_dict_and_compile_prefix(tmp_path):
    model = _tiny_model()
    state = {"_orig_mod." + research_name(k): v for k, v in model.state_dict().items()}
    torch.save(state, tmp_path / "w.pt")
    loaded = convert.load_plain_state_dict(tmp_path / "w.pt")
    assert set(loaded) == {research_name(k) for k in model.state_dict()}


def test_unmapped_keys_and_shape_errors_are_listed(tmp_path):
    model = _tiny_model()
    state = {research_name(k): v for k, v in model.state_dict().items()}
    state["extra_head.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match="No key-map rule matches the source key 'extra_head.weight'"):
        convert.convert_state_dict(tmp_path / "w.pth", None, CONVERSION / "sample_key_map.json", config=TINY)
    # Wrong config (5 classes): the classifier's shape is reported with the fix.
    del state["extra_head.weight"]
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match=r"'fc.weight' -> 'classifier.weight': shape \(3, 16\) but FMANet expects \(5, 16\)"):
        convert.convert_state_dict(tmp_path / "w.pth", None, CONVERSION / "sample_key_map.json", config={**TINY, "num_labels": 5})
    # A map that leaves parameters unfilled.
    partial = {"rules": [["^(fc)\\.(weight|bias)$", "classifier.\\2"]], "ignore": ["^(?!fc\\.)"]}
    with pytest.raises(CheckpointError, match="FMANet parameters nothing maps to"):
        convert.convert_state_dict(tmp_path / "w.pth", None, partial, config=TINY)


class NotATensor:
    """Any custom class: weights_only loading must refuse to unpickle it."""

    def __init__(self):
        self.payload = [1, 2, 3]


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"state_dict": {"fc.weight": torch.zeros(3, 16)}, "trainer": NotATensor()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"torch.load\(weights_only=True\) refused it"):
        convert.load_plain_state_dict(tmp_path / "evil.pth")
    # Plain containers pass weights_only but are not tensors: refused too, naming the keys.
    torch.save({"fc.weight": torch.zeros(3, 16), "fc.bias": [0.0, 0.0, 0.0]}, tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match=r"non-tensor entries \['fc.bias'\]"):
        convert.load_plain_state_dict(tmp_path / "list.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="refused it"):
        convert.load_plain_state_dict(tmp_path / "garbage.pth")


def test_key_map_file_errors(tmp_path):
    with pytest.raises(CheckpointError, match="invalid regular expression"):
        convert.KeyMap.from_dict({"rules": [["(unclosed", "x"]]})
    with pytest.raises(CheckpointError, match='"rules"'):
        convert.KeyMap.from_dict({"ignore": []})
    key_map = convert.KeyMap.from_dict({"rules": {"^a\\.(\\d+)$": "b.\\1"}})
    assert key_map.rename("a.12") == "b.12"


@pytest.mark.slow
def test_convert_script_command_line(tmp_path):
    model = _tiny_model()
    weights = _research_checkpoint(model, tmp_path / "best.pth")
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    result = subprocess.run(
        [sys.executable, str(CONVERSION / "convert_state_dict.py"), str(weights), "--key-map", str(CONVERSION / "sample_key_map.json"),
         "--config", str(tmp_path / "config.json"), "--dry-run"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "fc.weight -> classifier.weight" in result.stdout and "(dry run)" in result.stdout


# ---------------------------------------------------------------------------------- safe loading elsewhere
def _pickle_only_folder(tmp_path: Path) -> Path:
    model = _tiny_model()
    folder = tmp_path / "pickled"
    model.save_pretrained(folder)
    FMANetImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


def test_package_entry_points_refuse_pickle_folders(tmp_path):
    from transformers import pipeline

    from fmanet_hf.pipeline import micro_expression_pipeline
    from fmanet_hf.pretrained import load_model

    folder = _pickle_only_folder(tmp_path)
    with pytest.raises(CheckpointError, match="pickle-based weights \\(pytorch_model.bin\\)"):
        load_model(folder)
    with pytest.raises(CheckpointError, match="convert_state_dict.py"):
        micro_expression_pipeline(folder)
    # transformers' pipeline() wraps loader errors in its own ValueError; ours is inside.
    with pytest.raises(ValueError, match="never loads pickles"):
        pipeline("micro-expression-recognition", model=str(folder))
    with pytest.raises(CheckpointError, match="is a file"):
        load_model(folder / "pytorch_model.bin")


# ---------------------------------------------------------------------------------- format upgrades
def _version0_folder(tmp_path: Path, model, processor) -> Path:
    """A folder as format 0 (see upgrade_checkpoint's docstring) wrote it."""
    from safetensors.torch import save_file

    folder = tmp_path / "v0"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["fusion_theta"] = config.pop("fusion_init_theta")
    config["attention"] = config.pop("use_motion_attention")
    config["modulation"] = config.pop("use_magnitude_modulation")
    (folder / "config.json").write_text(json.dumps(config))
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    settings["flow_algorithm"] = settings.pop("flow_method")
    settings["output_size"] = settings.pop("size")["height"]
    settings["theta"] = settings.pop("mmcof_theta")
    del settings["processor_format_version"]
    (folder / "preprocessor_config.json").write_text(json.dumps(settings))
    state = {("fmanet.fusion.theta" if k == "fmanet.phase_fusion.theta_logits" else k): v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_upgrade_version0_folder_reproduces_the_model(tmp_path):
    model = _tiny_model()
    processor = FMANetImageProcessor(size={"height": 32, "width": 32}, flow_method="dis", mmcof_theta=(0.7, 0.3))
    folder = _version0_folder(tmp_path, model, processor)
    pixels = torch.rand(2, 6, 32, 32)
    # Loaded as it is, format 0's renamed keys would be ignored (and its fusion weights re-initialised):
    # both files are refused with the upgrade command instead.
    with pytest.raises(FMANetConfigError, match=r"'attention', 'fusion_theta', 'modulation' are settings of the pre-release format 0.*upgrade_checkpoint.py"):
        FMANetForImageClassification.from_pretrained(folder, use_safetensors=True)
    with pytest.raises(FMANetConfigError, match=r"'flow_algorithm', 'output_size', 'theta'.*pre-release format 0.*upgrade_checkpoint.py"):
        FMANetImageProcessor.from_pretrained(folder)
    report = upgrade.upgrade_folder(folder, tmp_path / "v1")
    assert (report.from_version, report.to_version) == (0, 2)
    assert "model.safetensors: fmanet.fusion.theta -> fmanet.phase_fusion.theta_logits" in report.changes
    upgraded = FMANetForImageClassification.from_pretrained(tmp_path / "v1", use_safetensors=True).eval()
    with torch.no_grad():
        assert torch.equal(upgraded(pixel_values=pixels).logits, model(pixel_values=pixels).logits)
    reloaded = FMANetImageProcessor.from_pretrained(tmp_path / "v1")
    assert reloaded.output_settings() == processor.output_settings()
    assert upgraded.config.use_motion_attention is True and upgraded.config.fusion_init_theta == [0.6, 0.4]
    # A second upgrade is a no-op; a format from the future is refused.
    assert upgrade.upgrade_folder(tmp_path / "v1").changes == []
    settings = json.loads((tmp_path / "v1" / "preprocessor_config.json").read_text())
    settings["processor_format_version"] = 99
    (tmp_path / "v1" / "preprocessor_config.json").write_text(json.dumps(settings))
    with pytest.raises(CheckpointError, match="newer than this fmanet-hf"):
        upgrade.upgrade_folder(tmp_path / "v1", dry_run=True)


def test_version_table_is_complete_and_dict_upgrade_is_pure():
    from fmanet_hf.image_processing_fmanet import PROCESSOR_FORMAT_VERSION

    assert sorted(upgrade.UPGRADES) == list(range(PROCESSOR_FORMAT_VERSION))
    old_processor = {"flow_algorithm": "dis", "output_size": 48}
    config, processor, renames, log = upgrade.upgrade_dicts({"attention": False}, old_processor, ["fmanet.fusion.theta", "x"])
    assert processor == {
        "flow_method": "dis",
        "size": {"height": 48, "width": 48},
        # format 2's new settings, at the values format 1 always used
        "face_detection_max_side": None,
        "stabilization_iterations": 60,
        "stabilization_epsilon": 1e-5,
        "processor_format_version": 2,
    }
    assert config == {"use_motion_attention": False}
    assert renames == {"fmanet.fusion.theta": "fmanet.phase_fusion.theta_logits"}
    assert old_processor == {"flow_algorithm": "dis", "output_size": 48}  # inputs untouched
    with pytest.raises(CheckpointError, match="both 'attention'"):
        upgrade.upgrade_dicts({"attention": False, "use_motion_attention": True}, {}, [])


def test_no_pickle_loading_outside_conversion():
    """No code in the package calls torch.load / pickle.load(s) (docstrings may mention them)."""
    import ast

    offenders = []
    for path in (ROOT / "src" / "fmanet_hf").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
                if (node.func.value.id, node.func.attr) in {("torch", "load"), ("pickle", "load"), ("pickle", "loads")}:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
