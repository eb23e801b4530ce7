"""The wheel's contents: every package is listed in pyproject.toml and the data files a user needs
(bundled checkpoint, model-card templates, evaluate module) are declared as package data."""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


@pytest.fixture(scope="module")
def setuptools_config():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_python_package_is_listed(setuptools_config):
    source = ROOT / "src"
    found = {".".join(p.parent.relative_to(source).parts) for p in source.rglob("__init__.py")}
    listed = set(setuptools_config["packages"])
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
    for package in listed - found:
        assert setuptools_config["package-dir"].get(package), f"{package} is listed but has no folder"


def _shipped(setuptools_config, package: str, folder: Path) -> set[str]:
    patterns = setuptools_config["package-data"][package]
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    # setuptools' "**/" also matches files at the top of the package.
    return {f for f in files if any(fnmatch.fnmatch(f, pat) or fnmatch.fnmatch(f, pat.replace("**/", "")) for pat in patterns)}


def test_data_files_a_user_needs_are_package_data(setuptools_config):
    package = ROOT / "src" / "fmanet_hf"
    shipped = _shipped(setuptools_config, "fmanet_hf", package)
    bundled = package / "checkpoints" / "synthme-megc3"
    needed = {p.relative_to(package).as_posix() for p in bundled.iterdir() if p.is_file()}
    needed |= {"training/uf1_uar/uf1_uar.py", "py.typed"}
    assert needed <= shipped, f"not shipped: {sorted(needed - shipped)}"


def test_card_templates_ship_with_the_package(setuptools_config):
    folder = ROOT / setuptools_config["package-dir"]["fmanet_hf.hub_cards"]
    shipped = _shipped(setuptools_config, "fmanet_hf.hub_cards", folder)
    templates = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert {"common.md", "synthme.md", "casme2.md", "space/app.py"} <= templates
    assert templates <= shipped, f"not shipped: {sorted(templates - shipped)}"
