"""What a report run is given, checked before anything runs: the notebook, its parameters, the data, the output folder.

Report notebooks are looked up in ``--notebooks DIR`` (or ``$JOURNEYLAB_NOTEBOOKS``),
then ``./notebooks``, then the notebooks shipped with the package. Parameters are
validated against the notebook's ``parameters`` cell: a typo is an error with a
suggestion, a month is always a ``YYYY-MM`` string of ASCII digits, numbers are finite.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import nbformat

from journeylab.core.errors import ParameterError, did_you_mean
from journeylab.core.timeparse import parse_month

#: A month: four ASCII digits, a hyphen, 01-12 (matched in full: no trailing newline).
_MONTH_RE = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])")


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter of a notebook's ``parameters`` cell."""

    name: str
    type: str
    default: str
    help: str


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
