"""docs/meter-data.md: every example runs, in order, and prints what the page says."""

from pathlib import Path

from tests.cli.doc_walk import blocks, run_page

PAGE = Path(__file__).parents[2] / "docs" / "meter-data.md"


def test_every_example_of_the_meter_data_page_works(tmp_path: Path) -> None:
    page = PAGE.read_text()
    kinds = [kind for kind, _, _ in blocks(page)]
    assert kinds.count("file") == 4 and kinds.count("expect file") == 1
    assert run_page(page, tmp_path) == 11
