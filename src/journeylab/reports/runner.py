"""Run parameterized notebooks into dated, reproducible, safe-to-share reports.

``run_report("monthly_report", month="2026-10")`` executes
``notebooks/monthly_report.ipynb`` with Papermill and writes, atomically::

    reports/2026-10/monthly_report/
      executed.ipynb          the run, with outputs (secrets redacted)
      report.html             for readers: no code, figures embedded, works offline
      report_with_code.html   for researchers
      metrics.json            the headline figures, machine-readable
      run.json                parameters, data fingerprint, versions, seed, duration

Papermill alone is not safe for unattended runs: it exits 0 after
``sys.exit(0)`` mid-notebook, only warns about a misspelt parameter, and
overwrites its output as soon as a run starts. So the runner

1. validates parameter names and types against the notebook before running
   (a typo is an error with a suggestion; a month is always a ``YYYY-MM``
   string of ASCII digits; numbers are finite), checks that ``--data``
   exists and the output folder can be written, and refuses notebooks that
   run shell commands (``!``, ``%system``, ``%%bash``, the other shell magics,
   and a one-line cell such as ``ls -la`` that automagic would run);
2. takes an operating-system lock, so two runs of the same report and month
   cannot overlap, and repairs what a crashed run left behind
   (:mod:`journeylab.reports.store`);
3. executes into a temporary folder beside the target; secret parameters
   reach the kernel through its environment only, and every notebook saved
   during the run is redacted before it is written (:mod:`journeylab.reports.redaction`);
4. accepts the run only if Papermill succeeded, no cell failed or stayed
   pending, no output is an error, and the notebook's final cell called
   :func:`finish` (the completion marker);
5. exports the HTML without scripts and refuses to publish it unless
   :func:`journeylab.core.safe_text.check_html` finds nothing that runs code or
   fetches from another host;
6. swaps the folder into place in one step, so readers see the old report or
   the new one, never half of one or none.

A failed run raises :class:`ReportFailed`, keeps the previous good report, and
leaves the failed notebook beside it as ``<notebook>.failed.ipynb``; so does a
run stopped by SIGTERM, and a full disk is a failed run with a clear message.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import nbformat

from journeylab.core.errors import JourneylabError, ParameterError, did_you_mean
from journeylab.core.safe_text import UnsafeHtmlError, require_safe_html
from journeylab.core.timeparse import parse_month
from journeylab.reports import store as report_store
from journeylab.reports.redaction import (
    SecretParameters,
    parameterize,
    redact_notebook,
    redact_parameters,
    redacted_output,
)
from journeylab.reports.store import StoreError, describe_os_error, write_atomic

__all__ = [
    "ReportFailed",
    "ReportRun",
    "ParameterSpec",
    "notebook_dir",
    "list_notebooks",
    "notebook_parameters",
    "validate_parameters",
    "resolve_month",
    "run_report",
    "finish",
    "previous_metrics",
    "export_html",
    "section_durations",
    "RUN_DIR_ENV",
]

#: Environment variable through which the runner tells the kernel where the
#: run's output folder is (so no file-system path is injected into the notebook).
RUN_DIR_ENV = "JOURNEYLAB_RUN_DIR"
#: Where the reports of earlier months live, for month-over-month deltas.
REPORTS_DIR_ENV = "JOURNEYLAB_REPORTS_DIR"
#: Set by the runner so progress bars stay off in scheduled runs.
UNDER_RUNNER_ENV = "JOURNEYLAB_UNDER_RUNNER"
_COMPLETE_MARKER = ".complete"
#: A month: four ASCII digits, a hyphen, 01-12 (matched in full: no trailing newline).
_MONTH_RE = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])")
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
_PACKAGES = (
    "journeylab",
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "duckdb",
    "matplotlib",
    "seaborn",
    "papermill",
    "nbconvert",
    "ipykernel",
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


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter of a notebook's ``parameters`` cell."""

    name: str
    type: str
    default: str
    help: str


@dataclass
class ReportRun:
    """What a successful run produced."""

    notebook: str
    month: str
    folder: Path
    metrics: dict[str, Any]
    parameters: dict[str, Any]
    duration_s: float
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def html(self) -> Path:
        """Path of the reader's ``report.html``."""
        return self.folder / "report.html"


# -- notebooks and parameters -------------------------------------------------
_EXTRA_NOTEBOOK_DIRS: list[Path] = []


def use_notebook_dir(folder: str | Path) -> None:
    """Look for report notebooks in ``folder`` first (the ``--notebooks`` option)."""
    path = Path(folder)
    if not path.is_dir():
        raise ParameterError(f"--notebooks {folder}: no such folder.")
    _EXTRA_NOTEBOOK_DIRS.insert(0, path)


def bundled_notebook_dir() -> Path:
    """Return the folder of the report notebooks shipped inside the package."""
    return Path(str(resources.files("journeylab.reports").joinpath("notebooks")))


def notebook_dirs() -> list[Path]:
    """Folders searched for report notebooks, first match wins.

    ``--notebooks DIR`` (or ``$JOURNEYLAB_NOTEBOOKS``), then the project's own
    ``./notebooks`` (edited copies, see :func:`copy_notebooks`), then the
    notebooks bundled with the package.
    """
    folders = list(_EXTRA_NOTEBOOK_DIRS)
    env = os.environ.get("JOURNEYLAB_NOTEBOOKS")
    if env:
        folders.append(Path(env))
    local = Path.cwd() / "notebooks"
    if local.is_dir():
        folders.append(local)
    folders.append(bundled_notebook_dir())
    unique: list[Path] = []
    for folder in folders:
        if folder.is_dir() and all(folder.resolve() != f.resolve() for f in unique):
            unique.append(folder)
    return unique


def notebook_dir() -> Path:
    """Return the first folder searched for report notebooks (see :func:`notebook_dirs`)."""
    return notebook_dirs()[0]


def copy_notebooks(folder: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Copy the bundled report notebooks into ``folder`` for editing.

    ``journeylab report`` then runs the copies when it is started in the
    folder above them (``./notebooks``) or given ``--notebooks folder``.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(bundled_notebook_dir().glob("*.ipynb")):
        dest = target / source.name
        if dest.exists() and not overwrite:
            raise ParameterError(
                f"{dest} exists; pass --force to overwrite the notebooks in {target}."
            )
        shutil.copyfile(source, dest)
        written.append(dest)
    return written


def list_notebooks(folder: Path | None = None) -> list[str]:
    """Names of the runnable notebooks (those with a ``parameters`` cell)."""
    folders = [folder] if folder is not None else notebook_dirs()
    names: list[str] = []
    for each in folders:
        for path in sorted(each.glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            if _parameters_cell_index(nb) is not None and path.stem not in names:
                names.append(path.stem)
    return sorted(names)


def _resolve_notebook(notebook: str | Path) -> Path:
    path = Path(notebook)
    if path.suffix == ".ipynb" and path.exists():
        return path
    for folder in notebook_dirs():
        candidate = folder / f"{Path(notebook).stem}.ipynb"
        if candidate.exists():
            return candidate
    names = list_notebooks()
    raise ParameterError(
        f"No report notebook {str(notebook)!r}{did_you_mean(str(notebook), names)}; available: {names}."
    )


def _project_file(config: str | Path | None) -> Path | None:
    """Find and validate the project file of a run before anything runs (ParameterError if wrong)."""
    from journeylab.core.errors import SchemaError
    from journeylab.core.project import PROJECT_FILE, load_project

    if config is None:
        local = Path.cwd() / PROJECT_FILE
        if not local.exists():
            return None
        config = local
    path = Path(config).resolve()
    try:
        load_project(path)
    except SchemaError as exc:
        raise ParameterError(f"The project file is not valid: {exc}") from exc
    return path


def _parameters_cell_index(nb: nbformat.NotebookNode) -> int | None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return i
    return None


def notebook_parameters(notebook: str | Path) -> dict[str, ParameterSpec]:
    """Return the parameters a notebook declares: name → type, default and help text.

    Examples
    --------
    >>> specs = notebook_parameters("monthly_report")
    >>> specs["month"].type
    'str'
    """
    import papermill

    path = _resolve_notebook(notebook)
    raw = papermill.inspect_notebook(str(path))
    return {
        name: ParameterSpec(
            name=name,
            type=str(info.get("inferred_type_name") or "None"),
            default=str(info.get("default")),
            help=str(info.get("help") or ""),
        )
        for name, info in raw.items()
    }


def resolve_month(month: str, today: dt.date | None = None) -> str:
    """Return ``month`` as ``YYYY-MM``; ``"previous"`` means the last full month.

    The reading is :func:`journeylab.core.timeparse.parse_month`, shared by every
    ``month=`` argument.

    Examples
    --------
    >>> resolve_month("previous", today=dt.date(2026, 11, 23))
    '2026-10'
    >>> resolve_month("2026-03")
    '2026-03'
    """
    return parse_month(month, "month", today=today)


def _coerce(name: str, value: Any, spec: ParameterSpec) -> Any:
    """Coerce a value given as text (CLI, YAML) to the declared type."""
    kind = spec.type
    if kind == "str":
        if not isinstance(value, str):
            raise ParameterError(f"{name} == {value!r}, must be a string (quote it in YAML).")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        raise ParameterError(f"{name} == {value!r}, must be true or false.")
    if kind in {"int", "float"}:
        wanted = "an integer" if kind == "int" else "a number"
        if isinstance(value, bool):
            raise ParameterError(f"{name} == {value!r}, must be {wanted}.")
        if isinstance(value, str) and not value.strip().isascii():
            raise ParameterError(
                f"{name} == {value!r}, must be {wanted} written with ASCII digits."
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"{name} == {value!r}, must be {wanted}.") from None
        if not math.isfinite(number):
            raise ParameterError(f"{name} == {value!r}, must be a finite number.")
        if kind == "float":
            return number
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if not number.is_integer():
            raise ParameterError(f"{name} == {value!r}, must be an integer.")
        return int(value) if isinstance(value, int) else int(number)
    return value


def validate_parameters(notebook: str | Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and types of ``params`` against the notebook's parameters cell.

    Raises
    ------
    ParameterError
        For an unknown name (with the closest known name) or a value of the
        wrong type; ``month`` must be a ``YYYY-MM`` string.
    """
    specs = notebook_parameters(notebook)
    clean: dict[str, Any] = {}
    for name, value in params.items():
        if name not in specs:
            raise ParameterError(
                f"Notebook {Path(notebook).stem!r} has no parameter {name!r}{did_you_mean(name, specs)}; "
                f"its parameters are {sorted(specs)}."
            )
        clean[name] = _coerce(name, value, specs[name])
    if "month" in clean:
        clean["month"] = resolve_month(clean["month"])
    return clean


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


# -- running ------------------------------------------------------------------
def _check_data(data: str | Path) -> str:
    """Return ``--data`` as an absolute path; a missing path is a usage error before anything runs."""
    path = Path(data).expanduser()
    if not path.exists():
        raise ParameterError(
            f"data == {str(data)!r}: no such file or folder (working directory: {Path.cwd()}); "
            "give a folder of tables or one events file, or leave it out to use the bundled sample."
        )
    return str(path.resolve())


def _prepare_output_folder(out_dir: str | Path, month_dir: Path) -> None:
    """Create the month's report folder, or say why it cannot be (a usage error: nothing ran)."""
    try:
        month_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in [month_dir, *month_dir.parents] if p.exists()), None)
        why = (
            f"{blocker} is a file, not a folder"
            if blocker is not None and not blocker.is_dir()
            else exc.strerror or str(exc)
        )
        raise ParameterError(
            f"--out {str(out_dir)!r}: cannot create the report folder {month_dir} ({why}); "
            "give a folder you can write to."
        ) from None
    if not os.access(month_dir, os.W_OK | os.X_OK):
        raise ParameterError(
            f"--out {str(out_dir)!r}: the report folder {month_dir} is not writable; "
            "give a folder you can write to."
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


def _sanitize_notebook(
    nb: nbformat.NotebookNode, secrets: SecretParameters
) -> nbformat.NotebookNode:
    """Drop the injected-parameters cell and Papermill metadata; redact secrets in outputs."""
    nb = nbformat.from_dict(redact_notebook(nb, secrets))
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            continue
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("journeylab", None)
    return nb


#: A static page: the lab template without require.js, MathJax, mermaid or widget scripts.
_STATIC_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
#: Outputs a static report can show; JavaScript, widget views and SVG are never chosen.
_STATIC_PRIORITY = ["text/html", "text/markdown", "image/png", "image/jpeg", "text/plain"]


def export_html(
    nb: nbformat.NotebookNode, path: Path, *, with_code: bool, title: str = "Report"
) -> Path:
    """Write ``nb`` as self-contained static HTML: figures embedded, no scripts, no network.

    Reports are read by people who never run code, often offline, so the page
    is built from a template without scripts (no MathJax, require.js or
    mermaid loaders from a CDN) and outputs are shown as HTML, Markdown, PNG or
    text, never as JavaScript or widget views. Before anything is written the
    page is checked by :func:`journeylab.core.safe_text.check_html`.

    Raises
    ------
    journeylab.core.safe_text.UnsafeHtmlError
        When the page would still run code or fetch from another host (a
        data value reached an output unescaped); nothing is written then.
    """
    import jinja2
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    exporter = HTMLExporter(
        config=Config({"NbConvertBase": {"display_data_priority": _STATIC_PRIORITY}}),
        template_name="lab",
        template_file="journeylab_static.html.j2",
        extra_loaders=[jinja2.DictLoader({"journeylab_static.html.j2": _STATIC_TEMPLATE})],
        exclude_input=not with_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    # Widget state would be written as a <script> block; a static page shows the fallbacks.
    nb.metadata.pop("widgets", None)
    if not with_code:
        # Readers get results only: warnings and logs on stderr (which can name
        # temporary paths) stay in executed.ipynb and the with-code HTML.
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if o.get("name") != "stderr"]
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    require_safe_html(body, Path(path).name)
    write_atomic(Path(path), body)
    return Path(path)


def _fingerprint(data: str | None) -> dict[str, Any]:
    if not data:
        return {"source": "bundled sample (generated, seeded)"}
    path = Path(data)
    if path.is_file():
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return {"source": path.name, "sha256": digest.hexdigest(), "bytes": path.stat().st_size}
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        digest = hashlib.sha256()
        for p in files:
            digest.update(p.name.encode())
            digest.update(hashlib.sha256(p.read_bytes()).digest())
        return {"source": path.name, "sha256": digest.hexdigest(), "files": len(files)}
    return {"source": "table or query", "sha256": hashlib.sha256(str(data).encode()).hexdigest()}


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in _PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def run_report(
    notebook: str | Path,
    *,
    month: str,
    params: Mapping[str, Any] | None = None,
    data: str | None = None,
    config: str | Path | None = None,
    out_dir: str | Path = "reports",
    kernel_name: str = "python3",
    timeout: int | None = 1800,
    log=None,
) -> ReportRun:
    """Run a report notebook for ``month`` and publish it atomically.

    Parameters
    ----------
    notebook : str or Path
        A notebook name in ``notebooks/`` (``"monthly_report"``) or a path.
    month : str
        ``YYYY-MM`` or ``"previous"``.
    params : mapping, optional
        Further notebook parameters; validated against the notebook first.
    data : str, optional
        The event data (an existing file or folder) passed to the notebook's
        ``data`` parameter as an absolute path; overrides the project file's data.
    config : str or Path, optional
        The project file passed to the notebook's ``config`` parameter;
        ``./journeylab.yaml`` when present, else the bundled sample's. It is
        validated before anything runs.
    out_dir : str or Path
        Root of the reports tree.
    kernel_name : str
        Jupyter kernel to run in.
    timeout : int, optional
        Per-cell timeout in seconds.
    log : callable, optional
        Receives one line per stage of the run (e.g. ``print``).

    Returns
    -------
    ReportRun

    Raises
    ------
    ParameterError
        Before anything runs: an unknown or mistyped parameter, a ``data``
        path that does not exist, an output folder that cannot be written.
    ReportFailed
        When the run is rejected, stopped by SIGTERM, or the disk is full;
        the previous report is left untouched.
    """
    say = log or (lambda line: None)
    started = time.perf_counter()
    path = _resolve_notebook(notebook)
    name = path.stem
    month = resolve_month(month)
    given = dict(params or {})
    given["month"] = month
    if data is not None and str(data) != "":
        given["data"] = _check_data(data)
    config = _project_file(config)
    if config is not None:
        given["config"] = str(config)
    clean = validate_parameters(path, given)
    source_nb = nbformat.read(path, as_version=4)
    _check_no_shell(source_nb, name)

    root = Path(out_dir).resolve()
    month_dir = root / month
    _prepare_output_folder(out_dir, month_dir)
    tag = f"[{name} {month}]"
    say(f"{tag} parameters validated: {sorted(clean)}")
    secrets = SecretParameters.of(clean)
    run = _Run(
        name=name,
        month=month,
        notebook=path,
        source=source_nb,
        params=clean,
        secrets=secrets,
        root=root,
        month_dir=month_dir,
        kernel_name=kernel_name,
        timeout=timeout,
        say=say,
        started=started,
    )
    try:
        with report_store.hold_lock(month_dir / f".{name}.lock"):
            recovery = report_store.recover(month_dir, name, run.failed_copy)
            for note in recovery.notes:
                say(f"{tag} recovered: {note}")
            run.kept_crash_notebook = recovery.kept_failed_notebook
            with _stop_on_signal(run):
                return run.execute_and_publish()
    except StoreError as exc:
        raise ReportFailed(name, str(exc)) from None
    except OSError as exc:  # the lock or the recovery could not touch the folder
        raise ReportFailed(name, describe_os_error(exc, f"preparing {month_dir}")) from None


def _kernel_manager_class(run: _Run) -> type:
    """Return a kernel manager class that starts kernels with the run's environment.

    The manager registers itself on the run, so a SIGTERM can kill the kernel.
    """
    from jupyter_client.manager import AsyncKernelManager

    class ReportKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw["env"] = run.kernel_environment()
            run.kernel_manager = self
            await super().start_kernel(**kw)

    return ReportKernelManager


class _Interrupted(Exception):
    """Raised by the SIGTERM handler outside kernel execution."""


@contextlib.contextmanager
def _stop_on_signal(run: _Run) -> Iterator[None]:
    """Turn SIGTERM into a failed run that keeps its notebook (main thread only).

    While the kernel runs, the handler kills the kernel (the run then fails
    like one whose kernel died); otherwise it raises :class:`_Interrupted`.
    During the final swap it only takes note: the swap is one step and the
    report it publishes is complete.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if run.stopped_by:
            return
        run.stopped_by = signal.Signals(signum).name
        if run.publishing:
            return
        if run.kill_kernel():
            return
        raise _Interrupted(run.stopped_by)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class _Run:
    """One run of a report notebook: execution in a temporary folder, then publishing."""

    name: str
    month: str
    notebook: Path
    source: nbformat.NotebookNode
    params: dict[str, Any]
    secrets: SecretParameters
    root: Path
    month_dir: Path
    kernel_name: str
    timeout: int | None
    say: Any
    started: float
    stopped_by: str | None = None
    publishing: bool = False
    kernel_manager: Any = None
    kept_crash_notebook: bool = False

    @property
    def tag(self) -> str:
        return f"[{self.name} {self.month}]"

    @property
    def final(self) -> Path:
        return self.month_dir / self.name

    @property
    def failed_copy(self) -> Path:
        return self.month_dir / f"{self.name}.failed.ipynb"

    @property
    def tmp(self) -> Path:
        return self.month_dir / f".{self.name}.tmp-{os.getpid()}"

    def kill_kernel(self) -> bool:
        """Kill the running kernel (SIGKILL); False when there is none."""
        km = self.kernel_manager
        pid = getattr(getattr(km, "provisioner", None), "pid", None) if km is not None else None
        if not pid:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return True

    # -- failure ------------------------------------------------------------------
    def fail(self, reason: str, cell_index: int | None = None) -> ReportFailed:
        """Keep the failed notebook (redacted), remove the temporary folder, build the error."""
        reason = self.secrets.scrub(reason)
        kept: Path | None = None
        executed = self.tmp / "executed.ipynb"
        try:
            text = executed.read_text(encoding="utf-8") if executed.exists() else None
        except OSError:
            text = None
        # Free the temporary folder first: on a full disk that makes room for the copy.
        shutil.rmtree(self.tmp, ignore_errors=True)
        if text is not None:
            try:
                nb = redact_notebook(json.loads(text), self.secrets)
                write_atomic(self.failed_copy, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
                kept = self.failed_copy
            except OSError as exc:
                reason += f" (the failed notebook could not be kept: {describe_os_error(exc, 'writing it')})"
            except ValueError as exc:  # a notebook cut short by the crash
                reason += f" (the failed notebook could not be kept: it is not valid JSON: {exc})"
        self.say(f"{self.tag} FAILED: {reason}")
        return ReportFailed(self.name, reason, kept, cell_index)

    def stop_reason(self, where: str) -> str:
        return (
            f"the run was stopped by {self.stopped_by} {where}; the notebook as far as it ran is "
            "kept for diagnosis"
        )

    # -- the run ------------------------------------------------------------------
    def execute_and_publish(self) -> ReportRun:
        """Execute, check, export and publish; every failure goes through :meth:`fail`."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        try:
            self.tmp.mkdir(parents=True)
            reason, cell_index, nb = self.execute()
            if reason is not None:
                raise self.fail(reason, cell_index)
            return self.publish(nb)
        except _Interrupted:
            raise self.fail(
                self.stop_reason(
                    "before the notebook ran"
                    if not (self.tmp / "executed.ipynb").exists()
                    else "after the notebook ran"
                )
            ) from None
        except UnsafeHtmlError as exc:
            raise self.fail(str(exc)) from None
        except OSError as exc:
            raise self.fail(
                describe_os_error(exc, f"writing the report in {self.month_dir}")
            ) from None
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def kernel_environment(self) -> dict[str, str]:
        """Return the kernel's environment: the run folder, runner flags and the secret parameters."""
        return {
            **os.environ,
            RUN_DIR_ENV: str(self.tmp),
            REPORTS_DIR_ENV: str(self.root),
            UNDER_RUNNER_ENV: "1",
            "TQDM_DISABLE": "1",
            **self.secrets.environment(),
        }

    def execute(self) -> tuple[str | None, int | None, nbformat.NotebookNode | None]:
        """Run the notebook with Papermill; return (reason it failed or None, cell, notebook)."""
        import papermill
        from papermill.exceptions import PapermillExecutionError

        executed = self.tmp / "executed.ipynb"
        prepared = parameterize(
            self.source, self.params, self.secrets, kernel_name=self.kernel_name
        )
        reason: str | None = None
        cell_index: int | None = None
        t0 = time.perf_counter()
        with redacted_output(executed, self.secrets) as output:
            try:
                papermill.execute_notebook(
                    prepared,
                    output,
                    kernel_name=self.kernel_name,
                    progress_bar=False,
                    cwd=str(self.notebook.parent),
                    execution_timeout=self.timeout,
                    kernel_manager_class=_kernel_manager_class(self),
                )
            except PapermillExecutionError as exc:
                reason, cell_index = (
                    f"cell {exc.cell_index} raised {exc.ename}: {exc.evalue}",
                    exc.cell_index,
                )
            except _Interrupted:
                reason = None  # stopped_by is set; the reason is written below
            except OSError as exc:
                reason = describe_os_error(exc, "saving the executed notebook")
            except Exception as exc:  # dead kernel, timeout, nbclient errors
                reason = f"execution stopped: {type(exc).__name__}: {exc}"
                if isinstance(exc.__context__, OSError):
                    reason = describe_os_error(exc.__context__, "saving the executed notebook")
            finally:
                self.kernel_manager = None
        self.say(f"{self.tag} executed in {time.perf_counter() - t0:.1f}s")
        if self.stopped_by:
            nb = nbformat.read(executed, as_version=4) if executed.exists() else None
            started = [
                i
                for i, cell in enumerate(nb.cells if nb is not None else [])
                if cell.get("metadata", {}).get("papermill", {}).get("start_time")
            ]
            running = started[-1] if started else None
            where = (
                f"while cell {running} was running" if running is not None else "during execution"
            )
            return self.stop_reason(where), running, None
        nb = nbformat.read(executed, as_version=4) if executed.exists() else None
        if nb is not None:
            for section, seconds in section_durations(nb):
                self.say(f"{self.tag}   {section}: {seconds:.1f}s")
        if reason is None and nb is None:
            reason = "no executed notebook was written"
        if reason is None:
            cell_index, reason = _first_problem(nb)
        if reason is None and not (self.tmp / _COMPLETE_MARKER).exists():
            reason = (
                "the notebook stopped before its final cell called journeylab.reports.runner.finish() "
                "(an early sys.exit, a dead kernel or a skipped cell)"
            )
        if reason is None and not (self.tmp / "metrics.json").exists():
            reason = "no metrics.json was written"
        return reason, cell_index, nb

    def publish(self, nb: nbformat.NotebookNode) -> ReportRun:
        """Export the HTML (checked), write run.json, and swap the folder into place."""
        tmp, name, month = self.tmp, self.name, self.month
        shared = _sanitize_notebook(nb, self.secrets)
        write_atomic(tmp / "executed.ipynb", nbformat.writes(shared))
        t1 = time.perf_counter()
        title = f"{name.replace('_', ' ').capitalize()} — {month}"
        export_html(shared, tmp / "report.html", with_code=False, title=title)
        export_html(shared, tmp / "report_with_code.html", with_code=True, title=title)
        self.say(f"{self.tag} HTML exported and checked in {time.perf_counter() - t1:.1f}s")
        (tmp / _COMPLETE_MARKER).unlink()
        metrics = json.loads((tmp / "metrics.json").read_text())
        run_info = (
            json.loads((tmp / "run_info.json").read_text())
            if (tmp / "run_info.json").exists()
            else {}
        )
        (tmp / "run_info.json").unlink(missing_ok=True)
        duration = time.perf_counter() - self.started
        parameters = redact_parameters(self.params)
        run = {
            "notebook": name,
            "month": month,
            "parameters": parameters,
            "data": _fingerprint(self.params.get("data")),
            "row_counts": run_info.get("row_counts", {}),
            "seed": self.params.get("seed", run_info.get("seed")),
            "packages": _versions(),
            "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "duration_s": round(duration, 2),
        }
        write_atomic(tmp / "run.json", json.dumps(run, indent=2, default=str))
        if self.stopped_by:
            raise _Interrupted(self.stopped_by)
        self.publishing = True
        try:
            report_store.swap_into_place(tmp, self.final, self.say)
        finally:
            self.publishing = False
        if not self.kept_crash_notebook:  # a killed run's notebook stays until the next success
            self.failed_copy.unlink(missing_ok=True)
        self.say(f"{self.tag} published {self.final / 'report.html'} ({duration:.1f}s)")
        if isinstance(metrics.get("findings"), list):
            # the ledger follows each finding month after month (journeylab.actions.ledger)
            from journeylab.actions.ledger import append_findings

            append_findings(
                self.root, month, metrics["findings"], project=str(metrics.get("project", name))
            )
            self.say(
                f"{self.tag} {len(metrics['findings'])} findings recorded in {self.root / 'findings.jsonl'}"
            )
        files = {p.name: p for p in self.final.iterdir()}
        return ReportRun(name, month, self.final, metrics, parameters, duration, files)


# -- called from inside report notebooks -------------------------------------
def finish(
    metrics: Mapping[str, Any],
    *,
    row_counts: Mapping[str, int] | None = None,
    seed: int | None = None,
) -> None:
    """Record the headline metrics and mark the run complete; call it in the last cell.

    Under the runner this writes ``metrics.json`` into the run folder and the
    completion marker the runner checks for. Run interactively, it only shows
    the metrics.
    """
    payload = json.loads(json.dumps(dict(metrics), default=_json_default))
    run_dir = os.environ.get(RUN_DIR_ENV)
    if run_dir:
        folder = Path(run_dir)
        write_atomic(folder / "metrics.json", json.dumps(payload, indent=2, sort_keys=True))
        info = {"row_counts": dict(row_counts or {}), "seed": seed}
        write_atomic(folder / "run_info.json", json.dumps(info, default=_json_default))
        write_atomic(folder / _COMPLETE_MARKER, "ok")
    else:
        print(json.dumps(payload, indent=2, sort_keys=True))


def previous_metrics(notebook: str, month: str) -> dict[str, Any] | None:
    """Return the metrics.json of the month before ``month``, if a report exists for it."""
    root = Path(os.environ.get(REPORTS_DIR_ENV, "reports"))
    year, mon = (int(x) for x in resolve_month(month).split("-"))
    prev = f"{year - 1:04d}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"
    path = root / prev / notebook / "metrics.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _json_default(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (pd.Timestamp, dt.date)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
