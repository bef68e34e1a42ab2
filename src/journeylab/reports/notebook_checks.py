"""Checks of a report notebook before and after its run, and what a run that fails them raises.

Before: a report notebook may not run shell commands (``!``, ``%system``,
``%%bash``, the other shell magics, and a one-line cell such as ``ls -la``
that automagic would run), because a failing shell line does not fail the run.
After: every cell completed and none holds an error output; the time spent per
section is read from the timings Papermill records.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

from journeylab.core.errors import JourneylabError

#: Line magics that run shell commands (``%ls`` and friends are shell aliases).
_SHELL_LINE_MAGICS = frozenset(
    {
        "system",
        "sx",
        "sc",
        "alias",
        "unalias",
        "rehashx",
        "pip",
        "conda",
        "mamba",
        "micromamba",
        "uv",
    }
    | {"mkdir", "rmdir", "mv", "rm", "cp", "cat", "ls", "ll", "lf", "lk", "ldir", "lx"}
)


#: Cell magics that run their body in a shell or another program.
_SHELL_CELL_MAGICS = frozenset(
    {
        "bash",
        "sh",
        "zsh",
        "script",
        "system",
        "sx",
        "!",
        "perl",
        "ruby",
        "python",
        "python2",
        "python3",
        "pypy",
    }
)


class ReportFailed(JourneylabError, RuntimeError):
    """A report run did not produce an acceptable notebook.

    Attributes
    ----------
    notebook : str
        The notebook's name.
    reason : str
        Why the run was rejected.
    failed_path : pathlib.Path or None
        Where the failed notebook was kept for diagnosis.
    cell_index : int or None
        The first failing cell, when one is known.
    """

    def __init__(
        self,
        notebook: str,
        reason: str,
        failed_path: Path | None = None,
        cell_index: int | None = None,
    ) -> None:
        self.notebook = notebook
        self.reason = reason
        self.failed_path = failed_path
        self.cell_index = cell_index
        where = f"\n  the failed notebook is kept at {failed_path}" if failed_path else ""
        super().__init__(
            f"Report {notebook!r} failed: {reason}{where}\n  the previous report, if any, is unchanged."
        )


def _shell_calls(source: str) -> list[str]:
    """Name the shell commands a cell runs, as IPython would transform it (``!ls``, ``%system``)."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        code = TransformerManager().transform_cell(source)
        tree = ast.parse(code)
    except SyntaxError:
        # Not Python even after IPython's transformations: scan the lines.
        found = []
        for line in source.splitlines():
            stripped = line.lstrip()
            word = re.match(r"%%?(\S+)", stripped)
            if stripped.startswith("!") or (
                word and word.group(1) in _SHELL_LINE_MAGICS | _SHELL_CELL_MAGICS
            ):
                found.append(stripped[:40])
        return found
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        first = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        if method in ("system", "getoutput") and _calls_get_ipython(node.func.value):
            found.append(f"!{first}" if isinstance(first, str) else method)
        elif method == "run_line_magic" and first in _SHELL_LINE_MAGICS:
            found.append(f"%{first}")
        elif method == "run_cell_magic" and first in _SHELL_CELL_MAGICS:
            found.append(f"%%{first}")
    return found


def _calls_get_ipython(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "get_ipython"


def _bound_names(nb: nbformat.NotebookNode) -> set[str]:
    """Names the notebook's code assigns, imports or defines (they shadow magics of that name)."""
    from IPython.core.inputtransformer2 import TransformerManager

    names: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(TransformerManager().transform_cell(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names


def _automagic_call(source: str, bound: set[str]) -> str | None:
    """Return a one-line cell such as ``ls -la`` that automagic would run as ``%ls -la``, or None."""
    lines = [ln for ln in source.strip().splitlines() if ln.strip()]
    if len(lines) != 1:
        return None  # IPython applies automagic to single-line cells only
    match = re.match(r"\s*([A-Za-z_]\w*)(.*)$", lines[0])
    if not match or match.group(1) not in _SHELL_LINE_MAGICS or match.group(1) in bound:
        return None
    if match.group(2).lstrip()[:1] in ("=", ","):
        return None  # an assignment, not a magic
    return lines[0].strip()


def _check_no_shell(nb: nbformat.NotebookNode, name: str) -> None:
    bound = _bound_names(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        calls = _shell_calls(cell.source)
        automagic = _automagic_call(cell.source, bound)
        if automagic:
            calls.append(automagic)
        if calls:
            raise ReportFailed(
                name,
                f"cell {i} runs a shell command ({calls[0][:40]!r}); report notebooks may not, "
                "because a failing shell line does not fail the run. Use Python instead.",
                cell_index=i,
            )


def _first_problem(nb: nbformat.NotebookNode) -> tuple[int | None, str | None]:
    """Find the first failed, pending or erroring cell of an executed notebook."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return i, f"cell {i} raised {out.get('ename')}: {out.get('evalue')}"
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        if status in {"failed", "pending", "running"}:
            return i, (
                f"cell {i} did not complete (status {status!r}): the notebook stopped early, "
                "e.g. through sys.exit() or a dead kernel"
            )
    return None, None


def section_durations(nb: nbformat.NotebookNode) -> list[tuple[str, float]]:
    """Return the execution time per section of an executed notebook, in order.

    A section starts at each markdown heading; cells before the first heading
    count as "setup". Durations come from the timings Papermill records.
    """
    out: list[tuple[str, float]] = []
    current = "setup"
    total = 0.0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = next(
                (ln.lstrip("#").strip() for ln in cell.source.splitlines() if ln.startswith("#")),
                None,
            )
            if heading:
                if total:
                    out.append((current, total))
                current, total = heading, 0.0
            continue
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if duration:
            total += float(duration)
    if total:
        out.append((current, total))
    return out


def cell_durations(nb: nbformat.NotebookNode) -> list[tuple[int, str, float]]:
    """Return ``(cell index, first code line, seconds)`` for every timed code cell, in order.

    The first line that is not blank names the cell in the runner's log (the
    notebook's own code, never its outputs).
    """
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if duration:
            first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
            out.append((i, first[:60], float(duration)))
    return out
