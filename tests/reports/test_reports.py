"""The report runner: validation, atomic publishing, failure handling, safe output.

Each failure mode below is one Papermill lets through on its own (see the
"Papermill runs" notes in REFERENCES.md): it exits 0 after ``sys.exit(0)``
mid-notebook, only warns about a misspelt parameter, and overwrites its
output as soon as a run starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from journeylab.core.errors import ParameterError
from journeylab.reports import runner as reports
from journeylab.reports.cli import main as cli_main

SECRET = "sk-SENTINEL-7f3a9c"


def _notebook(path: Path, body: str, params: str | None = None) -> Path:
    params = params or (
        'month: str = "2026-01"  # YYYY-MM\n'
        'api_token: str = ""  # a secret: must never reach the outputs\n'
        "n: int = 3  # how many"
    )
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Test report"),
        cell,
        nbformat.v4.new_code_cell(body),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


GOOD = (
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots(); ax.plot([1, 2, 3]); plt.show()\n"
    "print('month is', month, 'n is', n)\n"
    "from journeylab.reports.runner import finish\n"
    "finish({'month': month, 'n': n, 'value': 1.5}, row_counts={'events': 10}, seed=1)"
)


@pytest.fixture()
def good_nb(tmp_path):
    return _notebook(tmp_path / "good.ipynb", GOOD)


def _publish(nb, out, **kw):
    return reports.run_report(nb, month="2026-01", out_dir=out, **kw)


def test_successful_run_writes_every_output(good_nb, tmp_path):
    out = tmp_path / "reports"
    run = _publish(good_nb, out, params={"n": "5", "api_token": SECRET})
    folder = out / "2026-01" / "good"
    assert run.folder == folder
    assert {p.name for p in folder.iterdir()} == {
        "executed.ipynb",
        "report.html",
        "report_with_code.html",
        "metrics.json",
        "run.json",
    }
    assert json.loads((folder / "metrics.json").read_text()) == {
        "month": "2026-01",
        "n": 5,
        "value": 1.5,
    }
    run_info = json.loads((folder / "run.json").read_text())
    assert run_info["parameters"]["n"] == 5  # coerced from the string "5"
    assert run_info["parameters"]["api_token"] == "<redacted>"
    assert run_info["row_counts"] == {"events": 10}
    assert run_info["packages"]["papermill"]
    html = (folder / "report.html").read_text()
    assert "month is 2026-01 n is 5" in html
    assert "data:image/png;base64" in html  # figure embedded
    assert "from journeylab.reports.runner import finish" not in html  # no code for readers
    with_code = (folder / "report_with_code.html").read_text()
    assert 'class="highlight' in with_code and "finish" in with_code  # code shown (highlighted)
    assert 'class="highlight' not in html
    # works offline: nothing is fetched from the network
    assert "<script" not in html and "https://cdn" not in html


def test_secret_parameter_never_reaches_published_files(good_nb, tmp_path):
    out = tmp_path / "reports"
    _publish(good_nb, out, params={"api_token": SECRET})
    for path in (out / "2026-01" / "good").iterdir():
        text = path.read_text(errors="replace")
        assert SECRET not in text, path.name
        assert str(tmp_path) not in text or path.name == "run.json", path.name
    executed = nbformat.read(out / "2026-01" / "good" / "executed.ipynb", as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert "papermill" not in executed.metadata


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("raise ValueError('boom in the data')", "ValueError: boom in the data"),
        (
            "import sys\nsys.exit(0)\nfrom journeylab.reports.runner import finish\nfinish({})",
            "SystemExit|did not complete|final cell",
        ),
        ("import os\nos._exit(1)", "execution stopped|did not complete|final cell"),
    ],
    ids=["raises", "sys-exit-0", "kernel-dies"],
)
def test_failed_run_keeps_previous_report(good_nb, tmp_path, body, reason):
    out = tmp_path / "reports"
    _publish(good_nb, out)
    before = (out / "2026-01" / "good" / "report.html").read_text()
    bad = (
        _notebook(tmp_path / "bad" / "good.ipynb", body)
        if (tmp_path / "bad").mkdir() is None
        else None
    )
    with pytest.raises(reports.ReportFailed, match=reason) as info:
        _publish(bad, out)
    assert (out / "2026-01" / "good" / "report.html").read_text() == before
    assert info.value.failed_path == out / "2026-01" / "good.failed.ipynb"
    assert info.value.failed_path.exists()
    # no temporary folders or locks left behind
    assert sorted(p.name for p in (out / "2026-01").iterdir()) == ["good", "good.failed.ipynb"]


def test_misspelt_parameter_is_an_error_with_a_suggestion(good_nb, tmp_path):
    with pytest.raises(
        ParameterError, match=r"no parameter 'api_tokn' \(did you mean 'api_token'\?\)"
    ):
        _publish(good_nb, tmp_path / "reports", params={"api_tokn": "x"})
    assert not (tmp_path / "reports").exists()  # nothing ran, nothing written


def test_parameter_types_are_checked(good_nb, tmp_path):
    with pytest.raises(ParameterError, match="n == 'three', must be an integer"):
        _publish(good_nb, tmp_path / "r", params={"n": "three"})
    with pytest.raises(
        ParameterError, match="month == '2026-13': not a calendar month; write 'YYYY-MM'"
    ):
        reports.run_report(good_nb, month="2026-13", out_dir=tmp_path / "r")


def test_shell_lines_are_refused(tmp_path):
    nb = _notebook(tmp_path / "shell.ipynb", "!ls /\n" + GOOD)
    with pytest.raises(reports.ReportFailed, match="shell command"):
        _publish(nb, tmp_path / "r")


def test_a_second_concurrent_run_is_refused(good_nb, tmp_path):
    month_dir = tmp_path / "r" / "2026-01"
    month_dir.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from journeylab.reports.store import hold_lock\n"
            "with hold_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(30)",
            str(month_dir / ".good.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(reports.ReportFailed, match=rf"in progress \(pid {holder.pid}"):
            _publish(good_nb, tmp_path / "r")
    finally:
        holder.kill()
    # the lock dies with its process: a lock file left by a killed run is no obstacle
    holder.wait()
    assert (month_dir / ".good.lock").exists()
    run = _publish(good_nb, tmp_path / "r")
    assert run.html.exists()


def test_previous_month_resolution():
    import datetime as dt

    assert reports.resolve_month("previous", today=dt.date(2026, 1, 5)) == "2025-12"
    assert reports.resolve_month("previous", today=dt.date(2026, 11, 23)) == "2026-10"


def test_cli_exit_codes(good_nb, tmp_path, capsys):
    out = tmp_path / "reports"
    assert (
        cli_main(["report", str(good_nb), "--month", "2026-01", "--out", str(out), "--quiet"]) == 0
    )
    assert capsys.readouterr().out.strip().endswith("report.html")
    bad_params = tmp_path / "p.yaml"
    bad_params.write_text("nn: 3\n")
    assert (
        cli_main(
            [
                "report",
                str(good_nb),
                "--month",
                "2026-01",
                "--out",
                str(out),
                "--params",
                str(bad_params),
            ]
        )
        == 2
    )
    assert "did you mean 'n'" in capsys.readouterr().err
    failing = (
        _notebook(tmp_path / "f" / "good.ipynb", "1/0")
        if (tmp_path / "f").mkdir() is None
        else None
    )
    assert (
        cli_main(["report", str(failing), "--month", "2026-01", "--out", str(out), "--quiet"]) == 1
    )
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert cli_main(["params", str(good_nb)]) == 0
    listing = capsys.readouterr().out
    assert "month" in listing and "int" in listing


def test_run_logs_one_line_per_section_with_its_duration(tmp_path):
    nb = _notebook(tmp_path / "timed.ipynb", GOOD)
    cells = nbformat.read(nb, as_version=4)
    cells.cells.insert(2, nbformat.v4.new_markdown_cell("## Slow part"))
    cells.cells.insert(3, nbformat.v4.new_code_cell("import time\ntime.sleep(0.3)"))
    cells.cells.insert(4, nbformat.v4.new_markdown_cell("## Wrap-up"))
    nbformat.write(cells, nb)
    lines: list[str] = []
    reports.run_report(nb, month="2026-01", out_dir=tmp_path / "r", log=lines.append)
    sections = [ln for ln in lines if ln.startswith("[timed 2026-01]   ")]
    names = [ln.split("   ", 1)[1].rsplit(":", 1)[0] for ln in sections]
    assert names == ["Test report", "Slow part", "Wrap-up"]
    slow = float(sections[1].rsplit(": ", 1)[1].rstrip("s"))
    assert slow >= 0.3


def test_progress_bars_follow_the_argument_and_stay_off_under_the_runner(monkeypatch):
    from journeylab.core.progress import bars_enabled, track

    seen: list[tuple[int, str]] = []

    def factory(iterable, total=None, desc=""):
        seen.append((total, desc))
        return iterable

    assert list(track(range(3), total=3, desc="work", progress=factory)) == [0, 1, 2]
    assert seen == [(3, "work")]
    monkeypatch.setenv("JOURNEYLAB_UNDER_RUNNER", "1")
    assert not bars_enabled()
    assert list(track(range(2))) == [0, 1]  # silently, no tqdm bar
