"""``fmanet-hf space``: the Space folder with the wheel its requirements install, and the refusals."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from fmanet_hf.cli import main as cli_main
from fmanet_hf.errors import OutputPathError, SpaceBuildError
from fmanet_hf.hub import space as space_module
from fmanet_hf.hub.space import build_space
from fmanet_hf.version import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]
SPACE_SOURCE = REPO_ROOT / "hub_cards" / "space"
WHEEL_NAME = f"fmanet_hf-{__version__}-py3-none-any.whl"
BUNDLED_WEIGHTS = REPO_ROOT / "src" / "fmanet_hf" / "checkpoints" / "synthme-megc3" / "model.safetensors"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_wheel(folder: Path, *, name: str = WHEEL_NAME, package: str = "fmanet-hf", version: str = __version__,
               members=("fmanet_hf/demo/app.py", "fmanet_hf/checkpoints/synthme-megc3/model.safetensors")) -> Path:
    """A zip laid out like a wheel: METADATA plus the given members (placeholder bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"fmanet_hf-{version}.dist-info/METADATA", f"Metadata-Version: 2.4\nName: {package}\nVersion: {version}\n")
        for member in members:
            archive.writestr(member, b"placeholder " + member.encode())
    return path


def exported_model(folder: Path, model_type: str = "fmanet") -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


def test_built_from_the_source_tree_the_space_gets_this_trees_wheel(tmp_path):
    build_dir_before = (REPO_ROOT / "build").exists()
    info = build_space(tmp_path / "space")
    out = tmp_path / "space"
    assert info.files == sorted(["README.md", "app.py", "requirements.txt", WHEEL_NAME])
    for name in ("README.md", "app.py", "requirements.txt"):
        assert (out / name).read_bytes() == (SPACE_SOURCE / name).read_bytes()
    # The requirements install exactly the file that was put beside them.
    requirements = (out / "requirements.txt").read_text(encoding="utf-8")
    assert f"./{WHEEL_NAME}[demo]" in requirements.splitlines()
    with zipfile.ZipFile(out / WHEEL_NAME) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"fmanet_hf-{__version__}.dist-info/METADATA").decode()
        # The bundled model inside the wheel is the source tree's, byte for byte.
        assert sha256(wheel.read("fmanet_hf/checkpoints/synthme-megc3/model.safetensors")) == sha256(BUNDLED_WEIGHTS.read_bytes())
        assert wheel.read("fmanet_hf/demo/webm.py") == (REPO_ROOT / "src" / "fmanet_hf" / "demo" / "webm.py").read_bytes()
    assert f"Version: {__version__}" in metadata and "fmanet_hf/hub_cards/space/app.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    # The source tree is left as it was (the build ran on a copy).
    assert (REPO_ROOT / "build").exists() == build_dir_before
    assert sorted(p.name for p in out.iterdir()) == sorted([".fmanet-hf-output", *info.files])


def test_a_given_wheel_and_exported_models_are_copied(tmp_path):
    wheel = fake_wheel(tmp_path / "dist")
    first = exported_model(tmp_path / "exports" / "casme2")
    (first / ".fmanet-hf-output").write_text("{}", encoding="utf-8")  # export's marker stays out of the Space
    second = exported_model(tmp_path / "other" / "samm")
    info = build_space(tmp_path / "space", wheel=wheel, model_dirs=[first, second])
    out = tmp_path / "space"
    assert (out / WHEEL_NAME).read_bytes() == wheel.read_bytes()
    assert info.models == ["casme2", "samm"]
    assert sorted(info.files) == sorted([
        "README.md", "app.py", "requirements.txt", WHEEL_NAME,
        "models/casme2/config.json", "models/casme2/model.safetensors", "models/samm/config.json", "models/samm/model.safetensors",
    ])
    # app.py lists the folders under ./models (the model selector).
    assert 'os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")' in (out / "app.py").read_text(encoding="utf-8")


def test_overwrite_replaces_only_a_folder_this_command_wrote(tmp_path):
    wheel = fake_wheel(tmp_path / "dist")
    out = tmp_path / "space"
    build_space(out, wheel=wheel)
    with pytest.raises(SpaceBuildError, match="already exists"):
        build_space(out, wheel=wheel)
    build_space(out, wheel=wheel, overwrite=True)  # its own output: replaced
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputPathError, match="notes.txt"):
        build_space(out, wheel=wheel, overwrite=True)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize(
    "wheel_kwargs, message",
    [
        (dict(name="fmanet_hf-9.9.9-py3-none-any.whl"), "requirements.txt installs"),
        (dict(version="9.9.9"), "holds fmanet-hf 9.9.9"),
        (dict(package="numpy"), "not an fmanet-hf wheel"),
        (dict(members=("fmanet_hf/demo/app.py",)), "without its default model"),
    ],
)
def test_a_wheel_the_space_could_not_use_is_refused(tmp_path, wheel_kwargs, message):
    wheel = fake_wheel(tmp_path / "dist", **wheel_kwargs)
    with pytest.raises(SpaceBuildError, match=message):
        build_space(tmp_path / "space", wheel=wheel)
    assert not (tmp_path / "space").exists()


def test_not_a_zip_and_not_a_file_are_refused(tmp_path):
    broken = tmp_path / WHEEL_NAME
    broken.write_bytes(b"not a zip")
    with pytest.raises(SpaceBuildError, match="not a readable wheel"):
        build_space(tmp_path / "space", wheel=broken)
    with pytest.raises(SpaceBuildError, match="is not a file"):
        build_space(tmp_path / "space", wheel=tmp_path / "missing.whl")


def test_model_folders_must_be_fmanet_exports_with_distinct_names(tmp_path):
    wheel = fake_wheel(tmp_path / "dist")
    with pytest.raises(SpaceBuildError, match="not an FMANet folder"):
        build_space(tmp_path / "space", wheel=wheel, model_dirs=[exported_model(tmp_path / "vit", model_type="vit")])
    with pytest.raises(SpaceBuildError, match="no readable config.json"):
        build_space(tmp_path / "space", wheel=wheel, model_dirs=[tmp_path / "dist"])
    twins = [exported_model(tmp_path / "a" / "casme2"), exported_model(tmp_path / "b" / "casme2")]
    with pytest.raises(SpaceBuildError, match="named 'casme2'"):
        build_space(tmp_path / "space", wheel=wheel, model_dirs=twins)
    assert not (tmp_path / "space").exists()
    with pytest.raises(OutputPathError, match="sits inside the input --model"):
        build_space(tmp_path / "exports" / "space", wheel=wheel, model_dirs=[exported_model(tmp_path / "exports")])


def test_a_wheel_install_without_source_tree_asks_for_wheel(tmp_path, monkeypatch):
    monkeypatch.setattr(space_module, "source_tree", lambda: None)
    with pytest.raises(SpaceBuildError, match="Pass --wheel PATH"):
        build_space(tmp_path / "space")
    assert not (tmp_path / "space").exists()


def test_a_failed_build_says_so_and_leaves_nothing(tmp_path, monkeypatch):
    def failing_pip(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, stdout="", stderr="error: invalid command 'bdist_wheel'")

    monkeypatch.setattr(space_module.subprocess, "run", failing_pip)
    with pytest.raises(SpaceBuildError, match="invalid command 'bdist_wheel'.*--wheel"):
        build_space(tmp_path / "space")
    assert list(tmp_path.iterdir()) == []


def test_cli_json_and_one_line_errors(tmp_path, capsys):
    wheel = fake_wheel(tmp_path / "dist")
    assert cli_main(["space", str(tmp_path / "space"), "--wheel", str(wheel), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["wheel"] == WHEEL_NAME and WHEEL_NAME in result["files"]
    assert cli_main(["space", str(tmp_path / "space"), "--wheel", str(wheel)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "already exists" in error and "Traceback" not in error
