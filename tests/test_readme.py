"""The README's "Three ways in" snippets run as written (a newcomer copies them first)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _three_ways_in_blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Three ways in"):]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_three_ways_in_section_has_the_fit_and_pieces_snippets():
    blocks = _three_ways_in_blocks()
    assert len(blocks) == 2
    assert "caltrain.fit(" in blocks[0] and "posthoc.CalibratedModel" in blocks[1]


def test_the_fit_and_pieces_snippets_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the snippet writes runs/my-model relative to the working directory
    namespace: dict = {}
    for block in _three_ways_in_blocks():  # the second block uses the first one's names (net, torch)
        exec(compile(block, str(README), "exec"), namespace)
    ece, ts_ece = (float(v) for v in capsys.readouterr().out.split())
    assert 0.0 <= ece <= 1.0 and 0.0 <= ts_ece <= 1.0
    assert (tmp_path / "runs" / "my-model" / "summary.json").is_file()
    assert (tmp_path / "runs" / "my-model" / "calibrators" / "ts.json").is_file()
    assert float(namespace["loss"]) > 0 and 0.0 <= float(namespace["ece"]) <= 1.0
