"""``fmanet-hf space OUT_DIR``: the Gradio Space folder, ready to upload, with the wheel it installs.

A Space installs its ``requirements.txt`` from PyPI (and the indexes it names) or from its
own files. fmanet-hf is not on PyPI, so the Space's requirements name a wheel placed next
to ``app.py``; this module puts it there. Output (built in a temporary sibling and renamed
into place, so a failed build leaves nothing)::

    README.md, app.py, requirements.txt   the Space files shipped in the package (hub_cards/space/)
    fmanet_hf-<version>-py3-none-any.whl  the package, with the bundled model and remote code
    models/<name>/                        optional: exported FMANet folders, shown in the model selector

The wheel is either given (``wheel=``) or built from the source tree this package runs
from (an editable or source-tree install) with ``pip wheel --no-deps``. When setuptools and
wheel are already installed, the build runs without build isolation, so nothing is
downloaded; otherwise pip fetches the build backend from the package index.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..atomic import atomic_directory
from ..errors import SpaceBuildError
from ..output_paths import OUTPUT_MARKER_NAME, check_replaceable_folder, checked_output_path, mark_output_folder

#: The files of the Space folder (package data ``fmanet_hf/hub_cards/space/``).
SPACE_FILES = ("README.md", "app.py", "requirements.txt")
#: Files the wheel must hold for the Space to run offline: the app and the default model.
REQUIRED_WHEEL_MEMBERS = ("fmanet_hf/demo/app.py", "fmanet_hf/checkpoints/synthme-megc3/model.safetensors")
MODELS_DIR = "models"


@dataclass
class SpaceInfo:
    """What `build_space` wrote.

    Attributes:
        out_dir: the Space folder.
        wheel: the wheel's file name inside it.
        models: names of the model folders under ``models/``.
        files: every file written, relative to ``out_dir``, sorted (the hidden output marker excluded).
    """

    out_dir: Path
    wheel: str
    models: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def space_template_dir() -> Path:
    """The Space files: ``hub_cards/space/`` of the source tree, else the copy a wheel install carries."""
    package = Path(__file__).resolve().parents[1]
    candidates = (package.parents[1] / "hub_cards" / "space", package / "hub_cards" / "space")
    for folder in candidates:
        if all((folder / name).is_file() for name in SPACE_FILES):
            return folder
    raise SpaceBuildError(
        f"This install of fmanet-hf lacks the Space files {list(SPACE_FILES)} (looked in {', '.join(map(str, candidates))}); "
        "reinstall the package."
    )


def required_wheel_name(requirements: str) -> str:
    """The wheel file name a Space ``requirements.txt`` installs (its ``./<name>.whl[...]`` line).

    Raises:
        SpaceBuildError: no such line, or more than one.
    """
    names = re.findall(r"^\./([^\s\[]+\.whl)", requirements, flags=re.MULTILINE)
    if len(names) != 1:
        raise SpaceBuildError(f"The Space's requirements.txt should install exactly one local wheel (./NAME.whl), found {names}.")
    return names[0]


def source_tree() -> Path | None:
    """The fmanet-hf source tree this package runs from (editable install), or None for a wheel install."""
    root = Path(__file__).resolve().parents[3]  # <root>/src/fmanet_hf/hub/space.py
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and re.search(r'^name\s*=\s*"fmanet-hf"', pyproject.read_text(encoding="utf-8"), re.MULTILINE):
        return root
    return None


def _can_build_offline() -> bool:
    """Whether pip can build the wheel without build isolation (nothing downloaded): setuptools
    >= 70.1 (which builds wheels itself), or setuptools >= 68 with the ``wheel`` package."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(part) for part in re.findall(r"\d+", setuptools.__version__)[:2])
    if version >= (70, 1):
        return True
    try:
        import wheel  # noqa: F401
    except ImportError:
        return False
    return version >= (68, 0)


#: What the build reads from the source tree (pyproject.toml's readme, license, package folders).
SOURCE_TREE_PARTS = ("pyproject.toml", "README.md", "LICENSE", "src", "hub_cards")


def build_wheel(source: str | os.PathLike, into: str | os.PathLike) -> Path:
    """Build the fmanet-hf wheel of the source tree ``source`` into the folder ``into``.

    The build runs on a copy of the tree's packaging inputs under ``into``: setuptools leaves
    ``build/`` and ``*.egg-info`` where it builds, and a stale ``build/lib`` would put files
    deleted from ``src/`` into later wheels.

    Returns:
        The wheel's path (in ``into``).

    Raises:
        SpaceBuildError: pip failed (its last lines are in the message).
    """
    into = Path(into)
    snapshot = into / "source"
    for part in SOURCE_TREE_PARTS:
        origin = Path(source) / part
        if origin.is_dir():
            shutil.copytree(origin, snapshot / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
        elif origin.is_file():
            snapshot.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, snapshot / part)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check", "-w", str(into)]
    if _can_build_offline():
        command.append("--no-build-isolation")
    command.append(str(snapshot))
    completed = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(into.glob("fmanet_hf-*.whl"))
    if completed.returncode != 0 or len(wheels) != 1:
        tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-5:])
        raise SpaceBuildError(
            f"Building the fmanet-hf wheel from {source} failed (`{' '.join(command)}`): {tail or 'no wheel was written'}. "
            "Build it yourself (python -m pip wheel --no-deps -w DIR .) and pass --wheel DIR/NAME.whl."
        )
    return wheels[0]


def check_space_wheel(path: str | os.PathLike, expected_name: str) -> None:
    """Refuse a wheel the Space could not install or run: wrong name or version, or not this package.

    Raises:
        SpaceBuildError: saying what is wrong with it.
    """
    from ..version import __version__

    wheel = Path(path)
    if not wheel.is_file():
        raise SpaceBuildError(f"--wheel {str(path)!r} is not a file.")
    if wheel.name != expected_name:
        raise SpaceBuildError(
            f"The wheel is named {wheel.name!r}, but the Space's requirements.txt installs {expected_name!r} (fmanet-hf "
            f"{__version__}). Build the wheel of this version, or run the command from that version's install."
        )
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = set(archive.namelist())
            metadata_names = [name for name in members if name.endswith(".dist-info/METADATA")]
            metadata = archive.read(metadata_names[0]).decode("utf-8") if len(metadata_names) == 1 else ""
    except (zipfile.BadZipFile, OSError) as error:
        raise SpaceBuildError(f"--wheel {str(path)!r} is not a readable wheel (zip archive): {error}.") from error
    version = re.search(r"^Version:\s*(\S+)", metadata, re.MULTILINE)
    if not re.search(r"^Name:\s*fmanet[-_]hf\s*$", metadata, re.MULTILINE) or not version:
        raise SpaceBuildError(f"{wheel.name} is not an fmanet-hf wheel (its METADATA names another package).")
    if version.group(1) != __version__:
        raise SpaceBuildError(f"{wheel.name} holds fmanet-hf {version.group(1)}, not {__version__}; rebuild it.")
    missing = [name for name in REQUIRED_WHEEL_MEMBERS if name not in members]
    if missing:
        raise SpaceBuildError(f"{wheel.name} lacks {missing}: the Space would start without its default model or app.")


def _model_folder_name(folder: Path) -> str:
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SpaceBuildError(f"--model {str(folder)!r} has no readable config.json ({error}); give an `fmanet-hf export` folder.") from error
    if not isinstance(config, dict) or config.get("model_type") != "fmanet":
        raise SpaceBuildError(f"--model {str(folder)!r} is not an FMANet folder (config.json model_type is not 'fmanet').")
    return folder.resolve().name


def build_space(
    out_dir: str | os.PathLike,
    *,
    wheel: str | os.PathLike | None = None,
    model_dirs: Sequence[str | os.PathLike] = (),
    overwrite: bool = False,
) -> SpaceInfo:
    """Write the Space folder ``out_dir``: the Space files, the wheel they install and optional models.

    Args:
        out_dir: the folder to create (``overwrite`` replaces one this command wrote).
        wheel: an fmanet-hf wheel of this version; None builds it from the source tree.
        model_dirs: exported FMANet folders copied to ``models/<folder name>/``.
        overwrite: replace ``out_dir`` if this command wrote it.

    Raises:
        SpaceBuildError: no wheel and no source tree, a wrong wheel, a folder that is not an
            FMANet export, two models with one name. OutputPathError: ``out_dir`` overlaps an
            input, or exists (without ``overwrite``) or holds files this command did not write.
    """
    out = checked_output_path(
        out_dir, flag="OUT_DIR", inputs={"--wheel": wheel, **{f"--model (#{i + 1})": m for i, m in enumerate(model_dirs)}}
    )
    if out.exists() and not overwrite:
        raise SpaceBuildError(f"{out} already exists; choose a new folder or pass --overwrite to replace it.")
    if overwrite:
        check_replaceable_folder(out, command="space", flag="OUT_DIR")
    template = space_template_dir()
    expected_wheel = required_wheel_name((template / "requirements.txt").read_text(encoding="utf-8"))
    models = [Path(folder) for folder in model_dirs]
    names = [_model_folder_name(folder) for folder in models]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SpaceBuildError(f"Two --model folders are named {duplicates[0]!r}; the Space keeps them under models/<name>/. Rename one.")
    source = None
    if wheel is None:
        source = source_tree()
        if source is None:
            raise SpaceBuildError(
                "This fmanet-hf is installed from a wheel, so there is no source tree to build the Space's wheel from. "
                "Pass --wheel PATH (the wheel you installed, or one built with `python -m pip wheel --no-deps -w DIR .`)."
            )
    else:
        check_space_wheel(wheel, expected_wheel)

    with atomic_directory(out, overwrite=overwrite) as staging:
        for name in SPACE_FILES:
            shutil.copyfile(template / name, staging / name)
        if source is not None:
            built = build_wheel(source, staging / ".wheel-build")
            check_space_wheel(built, expected_wheel)
            os.replace(built, staging / expected_wheel)
            shutil.rmtree(staging / ".wheel-build")
        else:
            shutil.copyfile(wheel, staging / expected_wheel)
        for folder, name in zip(models, names):
            shutil.copytree(folder, staging / MODELS_DIR / name, ignore=shutil.ignore_patterns(OUTPUT_MARKER_NAME))
        mark_output_folder(staging, "space")
        files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file() and p.name != OUTPUT_MARKER_NAME)
    return SpaceInfo(out_dir=out, wheel=expected_wheel, models=names, files=files)


__all__ = ["SPACE_FILES", "SpaceInfo", "build_space", "build_wheel", "check_space_wheel", "required_wheel_name", "source_tree", "space_template_dir"]
