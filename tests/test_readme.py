"""The README's Python example runs as written (docs that rot are worse than none)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_a_python_example_of_at_most_a_dozen_lines():
    blocks = _python_blocks()
    assert blocks, "README.md lost its Python example"
    code_lines = [line for line in blocks[0].strip().splitlines() if line.strip()]
    assert len(code_lines) <= 12


def test_readme_set_up_commands_are_the_ones_ci_runs():
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    readme_install = 'pip install torch==2.13.0 -e ".[dev]" -c constraints.txt && pip install --no-deps ultralytics==8.4.190'
    assert readme_install + " && python -m pytest" in text
    assert "\npython -m pytest\n" in ci
    assert 'pip install --quiet torch==2.13.0 -e ".[dev]" -c constraints.txt' in ci
    assert "pip install --quiet --no-deps ultralytics==8.4.190" in ci
    assert "fmanet-hf predict --example" in text


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_blocks()[0], "README.md", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out.splitlines()
    label = printed[-1].split()[0]
    assert label in {"negative", "positive", "surprise"}
    assert printed[-1].endswith("torch.Size([1, 1, 32, 32])")
