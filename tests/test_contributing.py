"""CONTRIBUTING's "Where things live" table has one row per module of src/, and modules over
600 lines are named there with the one concept they hold."""

from __future__ import annotations

import re
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = REPOSITORY / "src" / "fmanet_hf"
MAX_LINES = 600


def table_rows() -> dict[str, str]:
    text = (REPOSITORY / "CONTRIBUTING.md").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"^\| `(src/fmanet_hf/[^`]+\.py)` \| (.+) \|$", text, re.M)}


def package_modules() -> set[str]:
    return {
        path.relative_to(REPOSITORY).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "checkpoints" not in path.relative_to(PACKAGE).parts  # copies of the remote-code files
    }


def test_every_module_has_exactly_one_row_and_every_row_a_module():
    rows = table_rows()
    modules = package_modules()
    assert sorted(modules - set(rows)) == [], "modules missing from CONTRIBUTING's table"
    assert sorted(set(rows) - modules) == [], "rows naming modules that do not exist"


def test_long_modules_are_named_with_their_one_concept():
    rows = table_rows()
    for module in sorted(package_modules()):
        lines = len((REPOSITORY / module).read_text().splitlines())
        if lines > MAX_LINES:
            assert "one concept over 600 lines" in rows[module], f"{module} has {lines} lines"


def test_the_table_names_where_the_asked_for_behaviours_live():
    rows = table_rows()
    assert "training loop" in rows["src/fmanet_hf/training/engine.py"]
    assert "resume check" in rows["src/fmanet_hf/training/run_folder.py"]
    assert "class sets" in rows["src/fmanet_hf/data/casme2.py"]
    assert "--flow-params" in rows["src/fmanet_hf/commands/common_flags.py"]
    assert "SynthME renderer" in rows["src/fmanet_hf/data/synthetic/renderer.py"]
