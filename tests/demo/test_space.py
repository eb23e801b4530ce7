"""The Space folder (hub_cards/space/) builds on the Hub as shipped: what its requirements install
can be reached by a Space, Gradio is pinned in one place, and the wheel it names is the package's."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from fmanet_hf.version import __version__

SPACE = Path(__file__).resolve().parents[2] / "hub_cards" / "space"


def _requirements() -> list[str]:
    lines = (SPACE / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_requirements_install_the_package_from_the_wheel_beside_app_py():
    # A Space installs from PyPI (and the extra index given) or from its own files: fmanet-hf is not
    # on PyPI, so it must come from the wheel uploaded with the folder, named for this version.
    package_lines = [line for line in _requirements() if "fmanet" in line.lower()]
    assert package_lines == [f"./fmanet_hf-{__version__}-py3-none-any.whl[demo]"]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in _requirements()


def test_gradio_is_pinned_in_one_place_the_space_metadata():
    metadata = yaml.safe_load((SPACE / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert metadata["sdk"] == "gradio" and re.fullmatch(r"\d+\.\d+\.\d+", str(metadata["sdk_version"]))
    assert not [line for line in _requirements() if line.lower().startswith("gradio")]
    assert metadata["app_file"] == "app.py" and (SPACE / "app.py").is_file()


def test_the_deploy_steps_build_the_wheel_the_requirements_name():
    steps = (SPACE.parents[1] / "docs" / "demo.md").read_text(encoding="utf-8")
    assert "## Deploy the Space" in steps
    # The command that writes the folder (tests/hub/test_space.py checks what it writes).
    assert "fmanet-hf space /tmp/fmanet-space" in steps
    assert "hf upload USER/fmanet-demo /tmp/fmanet-space . --repo-type space --exclude .fmanet-hf-output" in steps
    assert f"fmanet_hf-{__version__}-py3-none-any.whl" in steps
