"""The README's metering walk, from an empty folder, in the order the README gives."""

import re
from pathlib import Path

import pytest

from tests.cli.doc_walk import blocks, commands, run_page

README = (Path(__file__).parents[2] / "README.md").read_text()


def _walk() -> str:
    found = re.search(r"<!-- walk: begin -->\n(.*?)<!-- walk: end -->", README, re.S)
    assert found, "the README has lost its walk markers"
    return found.group(1)


def test_every_dated_command_of_the_readme_is_a_step_of_the_walk() -> None:
    listed = blocks(README.split("## Commands", 1)[1].split("\n## ", 1)[0])[0][2]
    dated = [c for c in commands(listed) if any(re.search(r"\b20\d\d-\d\d", a) for a in c)]
    assert len(dated) == 9
    steps = [c for kind, _, body in blocks(_walk()) if kind == "sh" for c in commands(body)]
    order = [steps.index(c) for c in dated]  # ValueError: a dated command the walk lacks
    assert order == sorted(order)  # and in the README's order


@pytest.mark.slow
def test_the_readme_metering_walk_runs_in_order(tmp_path: Path) -> None:
    assert run_page(_walk(), tmp_path) == 11
    assert (tmp_path / "out" / "october" / "meters.parquet").exists()
    assert (tmp_path / "out" / "h01-october.csv").read_text().count("\n") == 5952 + 1
