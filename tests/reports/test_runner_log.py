"""The runner's log names the time of each section and the slowest cells of an executed notebook."""

from __future__ import annotations

import nbformat

from journeylab.reports.notebook_checks import cell_durations, section_durations


def _timed(source: str, seconds: float) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["papermill"] = {"duration": seconds}
    return cell


def test_sections_and_cells_carry_their_durations():
    nb = nbformat.v4.new_notebook(
        cells=[
            _timed("\n# load the data\nws = 1", 4.0),
            nbformat.v4.new_markdown_cell("## Findings"),
            _timed("found = 2", 1.5),
            _timed("plot()", 0.5),
        ]
    )
    assert section_durations(nb) == [("setup", 4.0), ("Findings", 2.0)]
    assert cell_durations(nb) == [
        (0, "# load the data", 4.0),
        (2, "found = 2", 1.5),
        (3, "plot()", 0.5),
    ]
