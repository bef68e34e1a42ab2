"""The report runner under hostile data, secrets, crashes and bad input.

Each test is one of the probes a review found failing: data values that
scripted the HTML, secrets left in failed notebooks, a report lost by a crash
between the two renames of the swap, a lock taken twice, and runner inputs
that slipped through or ended in a traceback. Crash tests kill a real
``journeylab report`` process (SIGKILL or SIGTERM) at the moment named.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from journeylab.core.safe_text import check_html
from journeylab.reports import runner as reports
from journeylab.reports.cli import main as cli_main

SECRET = "sk-SENTINEL-2b8e41"
MONTH = "2026-01"
PARAMS_CELL = (
    'month: str = "2026-01"  # YYYY-MM\n'
    'pseudonym_key: str = ""  # a secret: must never reach a file\n'
    "n: int = 3  # how many"
)
GOOD = (
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots(); ax.plot([1, 2, 3]); plt.show()\n"
    "print('n is', n)\n"
    "from journeylab.reports.runner import finish\n"
    "finish({'month': month, 'n': n})"
)


def _notebook(path: Path, *bodies: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(PARAMS_CELL)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Test report"), cell]
    nb.cells += [nbformat.v4.new_code_cell(body) for body in bodies]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- 1. data values cannot script the report --------------------------------------------

HOSTILE_DEVICES = {
    "mobile": '<img src="http://127.0.0.1:9/d.png" onerror="document.title=1">',
    "desktop": "![x](http://127.0.0.1:9/x.png) [y](javascript:alert(1))",
    "tablet": r"$\undefinedmacro{x}$ <script>window.__pwned=1</script>",
}
HOSTILE_CHANNELS = {
    "paid_search": "[ps](javascript:alert(2))",
    "display": '<a href="http://127.0.0.1:9/">display</a>',
    "email": r"$\alsoundefined$",
}


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    from journeylab.datasets.sample import make_sample, write_sample

    root = tmp_path_factory.mktemp("hostile")
    sample = make_sample(seed=5, n_users=3000)
    sample.events["device"] = sample.events["device"].replace(HOSTILE_DEVICES)
    sample.events["channel"] = sample.events["channel"].replace(HOSTILE_CHANNELS)
    for column, mapping in (("device", HOSTILE_DEVICES), ("acquisition_channel", HOSTILE_CHANNELS)):
        if column in sample.users:
            sample.users[column] = sample.users[column].replace(mapping)
    write_sample(sample, root / "data")
    out = root / "reports"
    code = cli_main(
        [
            "report",
            "monthly_report",
            "--month",
            "2026-10",
            "--data",
            str(root / "data"),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    return code, out / "2026-10" / "monthly_report"


def test_hostile_values_publish_as_text(hostile_report):
    code, folder = hostile_report
    assert code == 0  # the LaTeX values no longer crash the figures
    for name in ("report.html", "report_with_code.html"):
        page = (folder / name).read_text()
        assert check_html(page) == [], name
        assert (
            "&lt;img src=&quot;http://127.0.0.1:9/d.png&quot;" in page
            or '&lt;img src="http://127.0.0.1:9/d.png"' in page
        )
        assert "<script>window.__pwned" not in page
        assert not re.search(r"<img[^>]+127\.0\.0\.1", page)
        assert not re.search(r"<a[^>]+href=\"(javascript|http)", page)
    executed = nbformat.read(folder / "executed.ipynb", as_version=4)
    summary = next(
        "".join(o["data"]["text/markdown"])
        for c in executed.cells
        for o in c.get("outputs", [])
        if "text/markdown" in o.get("data", {})
    )
    assert "&lt;img" in summary or "&lt;script&gt;" in summary or "\\[x\\]" in summary
    assert "<img" not in summary and "](http" not in summary


def test_hostile_values_render_without_requests_or_scripts(hostile_report):
    from test_report_browser import CHROMIUM, FLAGS

    if CHROMIUM is None:
        pytest.skip("headless Chromium not found: install Debian's 'chromium' package")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package drives Chromium"
    )
    _, folder = hostile_report
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        requests: list[str] = []
        dialogs: list[str] = []
        page.on(
            "request",
            lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None,
        )
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto((folder / "report.html").as_uri(), wait_until="load")
        title = page.title()
        state = page.evaluate(
            "({scripts: document.scripts.length, pwned: typeof window.__pwned,"
            " handlers: [...document.querySelectorAll('*')]"
            ".filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,"
            " text: document.body.innerText})"
        )
        browser.close()
    assert requests == [] and dialogs == []
    assert title == "Monthly report — 2026-10"
    assert state["scripts"] == 0 and state["pwned"] == "undefined" and state["handlers"] == 0
    assert 'onerror="document.title=1"' in state["text"]  # the value reads as text


def test_unsafe_html_in_an_output_fails_the_publish(tmp_path):
    out = tmp_path / "reports"
    good = _notebook(tmp_path / "a" / "page.ipynb", GOOD)
    reports.run_report(good, month=MONTH, out_dir=out)
    before = (out / MONTH / "page" / "report.html").read_text()
    leaky = _notebook(
        tmp_path / "b" / "page.ipynb",
        "from IPython.display import HTML, display\n"
        'display(HTML(\'<img src="http://127.0.0.1:9/pixel.png" alt="tracker">\'))',
        GOOD,
    )
    assert cli_main(["report", str(leaky), "--month", MONTH, "--out", str(out), "--quiet"]) == 1
    assert (out / MONTH / "page" / "report.html").read_text() == before
    assert (out / MONTH / "page.failed.ipynb").exists()
    with pytest.raises(
        reports.ReportFailed, match=r"(?s)report.html is not safe to share.*src= is a URL outside"
    ):
        reports.run_report(leaky, month=MONTH, out_dir=out)
    assert _files(out / MONTH) == ["page", "page.failed.ipynb"]


# -- 2. secrets never reach a file --------------------------------------------------------


def _injected(nb: nbformat.NotebookNode) -> str:
    return next(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))


def test_secret_never_reaches_the_failed_notebook(tmp_path):
    out = tmp_path / "reports"
    nb = _notebook(
        tmp_path / "leak.ipynb", "print('the key is', pseudonym_key)", "raise ValueError('boom')"
    )
    with pytest.raises(reports.ReportFailed, match="ValueError: boom") as info:
        reports.run_report(nb, month=MONTH, params={"pseudonym_key": SECRET}, out_dir=out)
    failed = info.value.failed_path
    text = failed.read_text()
    assert SECRET not in text
    kept = nbformat.read(failed, as_version=4)
    nbformat.validate(kept)
    assert "pseudonym_key = " in _injected(kept) and SECRET not in _injected(kept)
    assert kept.metadata.papermill.parameters["pseudonym_key"] == "<redacted>"
    printed = "".join(o.get("text", "") for c in kept.cells for o in c.get("outputs", []))
    assert "the key is <redacted>" in printed  # the notebook did receive the key
    assert _files(out / MONTH) == ["leak.failed.ipynb"]


@pytest.mark.parametrize("secret", ["e", "source", '"quoted" \\ value'])
def test_any_secret_value_keeps_the_notebooks_valid(tmp_path, secret):
    out = tmp_path / "reports"
    failing = _notebook(
        tmp_path / "f" / "short.ipynb", "assert pseudonym_key == " + repr(secret), "1 / 0"
    )
    with pytest.raises(reports.ReportFailed, match="ZeroDivisionError") as info:
        reports.run_report(failing, month=MONTH, params={"pseudonym_key": secret}, out_dir=out)
    kept = nbformat.read(info.value.failed_path, as_version=4)  # valid JSON and a valid notebook
    nbformat.validate(kept)
    assert f"pseudonym_key = {json.dumps(secret)}" not in _injected(kept)
    good = _notebook(
        tmp_path / "g" / "short.ipynb", "assert pseudonym_key == " + repr(secret), GOOD
    )
    run = reports.run_report(good, month=MONTH, params={"pseudonym_key": secret}, out_dir=out)
    nbformat.validate(nbformat.read(run.folder / "executed.ipynb", as_version=4))
    assert (
        json.loads((run.folder / "run.json").read_text())["parameters"]["pseudonym_key"]
        == "<redacted>"
    )


# -- 4. a crash never loses a report ---------------------------------------------------------


class _Runner:
    """A ``journeylab report`` subprocess whose standard error is read line by line."""

    def __init__(self, notebook: Path, out: Path, params: Path | None = None, **env: str) -> None:
        args = [
            sys.executable,
            "-m",
            "journeylab.reports.cli",
            "report",
            str(notebook),
            "--month",
            MONTH,
            "--out",
            str(out),
        ]
        if params is not None:
            args += ["--params", str(params)]
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            args,
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, needle: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"the run never printed {needle!r}: {''.join(self.lines)[-2000:]}")

    def kernels(self) -> list[int]:
        """Child processes of the run (its kernel), found by parent pid in /proc."""
        children: list[int] = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                children.append(int(stat.parent.name))
        return children

    def kill(self, sig: int = signal.SIGKILL) -> int:
        kernels = self.kernels()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        for pid in kernels:  # a kernel outlives a SIGKILLed runner for up to a second
            deadline = time.monotonic() + 10
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        self._reader.join(timeout=10)
        return code


def _published(out: Path, tmp_path: Path, body: str = GOOD) -> str:
    nb = _notebook(tmp_path / "first" / "swap.ipynb", body)
    reports.run_report(nb, month=MONTH, out_dir=out)
    return (out / MONTH / "swap" / "report.html").read_text()


def _second_version(tmp_path: Path) -> Path:
    return _notebook(
        tmp_path / "second" / "swap.ipynb",
        GOOD.replace("print('n is', n)", "print('second version', n)"),
    )


def test_sigkill_between_the_two_renames_never_loses_the_report(tmp_path):
    out = tmp_path / "reports"
    first = _published(out, tmp_path)
    run = _Runner(
        _second_version(tmp_path),
        out,
        JOURNEYLAB_TEST_SWAP="renames",
        JOURNEYLAB_TEST_PAUSE_AT="between-renames",
    )
    run.wait_for("paused at between-renames")
    run.kill(signal.SIGKILL)
    month = out / MONTH
    aside = [p for p in month.iterdir() if p.name.startswith(".swap.previous-")]
    assert not (month / "swap").exists() and len(aside) == 1  # the crash moment
    # the next run restores the report before doing anything else, then publishes
    lines: list[str] = []
    reports.run_report(
        _notebook(tmp_path / "third" / "swap.ipynb", GOOD),
        month=MONTH,
        out_dir=out,
        log=lines.append,
    )
    assert any("restored the report" in line for line in lines)
    assert _files(month) == ["swap"]
    assert "n is 3" in (month / "swap" / "report.html").read_text() and first


def test_a_report_set_aside_by_a_crash_is_restored(tmp_path):
    out = tmp_path / "reports"
    first = _published(out, tmp_path)
    month = out / MONTH
    (month / "swap").rename(month / ".swap.previous-999999")  # as left by a SIGKILL in the swap
    nb = _notebook(tmp_path / "bad" / "swap.ipynb", "raise RuntimeError('this run fails')")
    with pytest.raises(reports.ReportFailed, match="this run fails"):
        reports.run_report(nb, month=MONTH, out_dir=out)
    assert (month / "swap" / "report.html").read_text() == first  # restored, and kept
    assert _files(month) == ["swap", "swap.failed.ipynb"]


def test_sigkill_right_after_the_exchange_leaves_the_new_report(tmp_path):
    out = tmp_path / "reports"
    _published(out, tmp_path)
    run = _Runner(_second_version(tmp_path), out, JOURNEYLAB_TEST_PAUSE_AT="after-exchange")
    run.wait_for("paused at after-exchange")
    run.kill(signal.SIGKILL)
    month = out / MONTH
    assert "second version 3" in (month / "swap" / "report.html").read_text()
    leftovers = [p.name for p in month.iterdir() if p.name.startswith(".swap.tmp-")]
    assert len(leftovers) == 1
    reports.run_report(_second_version(tmp_path), month=MONTH, out_dir=out)
    assert _files(month) == ["swap"]


def _sleeper(tmp_path: Path) -> Path:
    return _notebook(
        tmp_path / "slow" / "swap.ipynb",
        "print('the key is', pseudonym_key)\nprint('started', n)",
        "import time\ntime.sleep(300)",
        GOOD,
    )


def _wait_for_saved_output(month: Path, text: str, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tmp in month.glob(".swap.tmp-*"):
            executed = tmp / "executed.ipynb"
            if executed.exists() and text in executed.read_text(errors="replace"):
                return executed
        time.sleep(0.1)
    pytest.fail(f"no running notebook printed {text!r}")


def test_sigterm_mid_run_keeps_the_failed_notebook_and_cleans_up(tmp_path):
    out = tmp_path / "reports"
    first = _published(out, tmp_path)
    params = tmp_path / "p.yaml"
    params.write_text(f"pseudonym_key: {SECRET}\n")
    run = _Runner(_sleeper(tmp_path), out, params)
    executed = _wait_for_saved_output(out / MONTH, "started 3")
    assert SECRET not in executed.read_text()  # even the notebook of a running run
    kernels = run.kernels()
    assert kernels
    code = run.kill(signal.SIGTERM)
    assert code == 1
    assert "stopped by SIGTERM while cell 4 was running" in "".join(run.lines)
    month = out / MONTH
    assert _files(month) == ["swap", "swap.failed.ipynb"]
    assert (month / "swap" / "report.html").read_text() == first
    kept = (month / "swap.failed.ipynb").read_text()
    assert "started 3" in kept and SECRET not in kept and "the key is <redacted>" in kept
    assert not any(Path(f"/proc/{pid}").exists() for pid in kernels)  # the kernel was stopped


def test_sigkill_mid_run_is_cleaned_up_by_the_next_run(tmp_path):
    out = tmp_path / "reports"
    first = _published(out, tmp_path)
    params = tmp_path / "p.yaml"
    params.write_text(f"pseudonym_key: {SECRET}\n")
    run = _Runner(_sleeper(tmp_path), out, params)
    _wait_for_saved_output(out / MONTH, "started 3")
    run.kill(signal.SIGKILL)
    month = out / MONTH
    assert (month / "swap" / "report.html").read_text() == first
    assert any(p.name.startswith(".swap.tmp-") for p in month.iterdir())  # what the crash left
    lines: list[str] = []
    reports.run_report(_second_version(tmp_path), month=MONTH, out_dir=out, log=lines.append)
    assert any(
        "died before finishing: its notebook is kept as swap.failed.ipynb" in line for line in lines
    )
    assert _files(month) == ["swap", "swap.failed.ipynb"]
    kept = (month / "swap.failed.ipynb").read_text()
    assert "started 3" in kept and SECRET not in kept
    reports.run_report(_second_version(tmp_path), month=MONTH, out_dir=out)
    assert _files(month) == ["swap"]  # a later clean run removes it


def test_full_disk_is_a_failed_run_with_a_message_and_no_leftovers(tmp_path, monkeypatch, capsys):
    out = tmp_path / "reports"
    first = _published(out, tmp_path)
    from journeylab.reports import export as report_export

    real = report_export.write_atomic

    def full(path, data):
        if Path(path).name == "report.html":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(report_export, "write_atomic", full)
    code = cli_main(
        ["report", str(_second_version(tmp_path)), "--month", MONTH, "--out", str(out), "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "no space left on the device while writing the report" in err
    month = out / MONTH
    assert (month / "swap" / "report.html").read_text() == first
    assert _files(month) == ["swap", "swap.failed.ipynb"]


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt && true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


FULL_DISK_SCRIPT = """
import json, os, subprocess, sys
from pathlib import Path
mnt, notebook = Path(sys.argv[1]), sys.argv[2]
cli = [sys.executable, "-m", "journeylab.reports.cli", "report", notebook, "--month", "2026-01",
       "--out", str(mnt / "reports"), "--quiet"]
first = subprocess.run(cli, capture_output=True, text=True)
before = (mnt / "reports/2026-01/swap/report.html").read_text()
ballast = mnt / "ballast"
with open(ballast, "wb") as fh:
    try:
        while True:
            fh.write(b"x" * 65536)
            fh.flush()
    except OSError:
        pass
os.truncate(ballast, max(0, ballast.stat().st_size - 400_000))  # room to start, not to finish
second = subprocess.run(cli, capture_output=True, text=True)
month = mnt / "reports/2026-01"
print(json.dumps({
    "first": first.returncode, "code": second.returncode, "err": second.stderr,
    "kept": (month / "swap/report.html").read_text() == before,
    "files": sorted(p.name for p in month.iterdir()),
}))
"""


def test_full_disk_on_a_real_5mb_tmpfs(tmp_path):
    if not _can_mount_tmpfs():
        pytest.skip("cannot mount a tmpfs here (needs `unshare -rm`: user and mount namespaces)")
    nb = _notebook(tmp_path / "nb" / "swap.ipynb", GOOD)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(FULL_DISK_SCRIPT)
    done = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            f'mount -t tmpfs -o size=5m tmpfs "{mnt}" && "{sys.executable}" "{script}" "{mnt}" "{nb}"',
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["first"] == 0
    assert result["code"] == 1 and "Traceback" not in result["err"]
    assert "no space left on the device" in result["err"]
    assert result["kept"]
    assert [f for f in result["files"] if f.startswith(".")] == []  # no temporary folder, no lock


# -- 5. one run at a time ----------------------------------------------------------------------

HOLDER = """
import sys, time
from pathlib import Path
from journeylab.reports.store import hold_lock
path = Path(sys.argv[1])
with hold_lock(path):
    path.write_text("")  # the moment before the pid is written: the lock file holds no pid
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_lock_file_without_a_pid_is_held_not_stale(tmp_path):
    nb = _notebook(tmp_path / "locked.ipynb", GOOD)
    month = tmp_path / "reports" / MONTH
    month.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(month / ".locked.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert (month / ".locked.lock").read_text() == ""
        with pytest.raises(reports.ReportFailed, match="in progress"):
            reports.run_report(nb, month=MONTH, out_dir=tmp_path / "reports")
    finally:
        holder.kill()
        holder.wait()
    run = reports.run_report(nb, month=MONTH, out_dir=tmp_path / "reports")  # the holder died: free
    assert run.html.exists()


def test_a_run_holding_the_lock_refuses_a_second_run(tmp_path):
    out = tmp_path / "reports"
    run = _Runner(_sleeper(tmp_path), out)
    _wait_for_saved_output(out / MONTH, "started 3")
    try:
        (out / MONTH / ".swap.lock").write_text("")  # an empty lock file is not a stale one
        with pytest.raises(reports.ReportFailed, match="in progress"):
            reports.run_report(_second_version(tmp_path), month=MONTH, out_dir=out)
    finally:
        run.kill(signal.SIGKILL)


RACER = """
import os, sys, time
from pathlib import Path
from journeylab.reports.store import StoreError, hold_lock
lock, inside, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
held = overlaps = 0
for _ in range(rounds):
    try:
        with hold_lock(lock):
            try:
                fd = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                overlaps += 1
                continue
            held += 1
            time.sleep(0.002)
            os.close(fd)
            os.unlink(inside)
    except StoreError:
        pass
print(held, overlaps)
"""


def test_two_processes_never_hold_the_lock_together(tmp_path):
    lock, inside = tmp_path / ".race.lock", tmp_path / "inside"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(lock), str(inside), "400"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [tuple(map(int, p.communicate(timeout=120)[0].split())) for p in procs]
    assert all(overlaps == 0 for _, overlaps in results), results
    assert sum(held for held, _ in results) > 0
    assert not lock.exists() and not inside.exists()


# -- 8. runner input edges ------------------------------------------------------------------------


@pytest.mark.parametrize("month", ["2026-10\n", "２０２６-10", "2026-1０", " 2026-10", "2026-10 "])
def test_month_must_be_ascii_yyyy_mm_exactly(tmp_path, capsys, month):
    code = cli_main(["report", "monthly_report", "--month", month, "--out", str(tmp_path)])
    assert code == 2
    assert "not a calendar month; write 'YYYY-MM'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("min_users: .inf", "must be a finite number"),
        ("min_users: .nan", "must be a finite number"),
        ("n_users: 1e400", "must be a finite number"),
        ("min_users: '３０'", "ASCII digits"),
    ],
)
def test_non_finite_numbers_are_usage_errors(tmp_path, capsys, text, message):
    params = tmp_path / "p.yaml"
    params.write_text(text + "\n")
    code = cli_main(
        [
            "report",
            "monthly_report",
            "--month",
            "2026-10",
            "--params",
            str(params),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_out_must_be_a_writable_folder(tmp_path, capsys):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    for out, why in (
        (afile, "is a file, not a folder"),
        (Path("/proc/journeylab-x"), "cannot create the report folder"),
    ):
        code = cli_main(["report", "monthly_report", "--month", "2026-10", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert why in err and "Traceback" not in err


def test_missing_data_is_a_usage_error_before_anything_runs(tmp_path, capsys, monkeypatch):
    import papermill

    executed = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: executed.append(a))
    code = cli_main(
        [
            "report",
            "monthly_report",
            "--month",
            "2026-10",
            "--data",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no such file or folder" in err and "nope" in err
    assert not (tmp_path / "r").exists()  # nothing ran, nothing written
    assert executed == []  # no notebook was executed, so no kernel was started


@pytest.mark.parametrize(
    "line",
    [
        "%system ls /",
        "%sx ls",
        "files = %sx ls",
        "x = !ls",
        "!!ls",
        "%%bash\nls",
        "%%sh\nls",
        "%%script bash\nls",
        "%%!\nls",
        "%ls",
        "ls -la",
        "%pip install requests",
        "get_ipython().system('ls')",
    ],
)
def test_shell_magics_are_refused(tmp_path, line):
    nb = _notebook(tmp_path / "shell.ipynb", line, GOOD)
    with pytest.raises(reports.ReportFailed, match="runs a shell command"):
        reports.run_report(nb, month=MONTH, out_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_python_that_looks_like_a_magic_is_not_refused(tmp_path):
    nb = _notebook(tmp_path / "ok.ipynb", "ls = [1, 2]\nls", "cat = 3", GOOD)
    assert reports.run_report(nb, month=MONTH, out_dir=tmp_path / "r").html.exists()
