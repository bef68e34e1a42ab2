"""The built wheel carries what an installed journeylab needs to run its reports outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("journeylab-*.whl")
    return path


def test_wheel_ships_notebooks_lexicons_and_sample_project_files(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    notebooks = {
        Path(n).stem
        for n in names
        if n.startswith("journeylab/reports/notebooks/") and n.endswith(".ipynb")
    }
    shipped = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert notebooks == shipped and "monthly_report" in notebooks
    assert "journeylab/voice/lexicons/ko_sentiment.tsv" in names
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)


@pytest.mark.slow
def test_installed_wheel_runs_the_monthly_report_in_an_empty_folder(wheel, tmp_path):
    """Install the wheel alone into a fresh environment and run the report where no checkout is."""
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    # the dependencies come from the test environment (a path entry, whose .pth files are not
    # processed, so the checkout's editable journeylab stays invisible); journeylab comes from the wheel
    purelib = Path(sysconfig.get_paths()["purelib"])
    fresh_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (fresh_site / "_dependencies.pth").write_text(str(purelib) + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JOURNEYLAB_NOTEBOOKS")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}"
    # nbconvert's templates are data files of the dependencies' environment
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    where = subprocess.run(
        [str(python), "-c", "import journeylab; print(journeylab.__file__)"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert str(env_dir) in where, where
    listed = subprocess.run(
        [str(env_dir / "bin" / "journeylab"), "report", "--list"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    assert "monthly_report" in listed.stdout.split()
    copied = subprocess.run(
        [str(env_dir / "bin" / "journeylab"), "notebooks", "copy", "mine"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert copied.returncode == 0, copied.stderr
    assert (work / "mine" / "monthly_report.ipynb").exists()
    run = subprocess.run(
        [
            str(env_dir / "bin" / "journeylab"),
            "report",
            "monthly_report",
            "--month",
            "2026-10",
            "--quiet",
            "--params",
            str(_small_params(work)),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (work / "reports" / "2026-10" / "monthly_report" / "report.html").exists()


def _small_params(folder: Path) -> Path:
    path = folder / "params.yaml"
    path.write_text("n_users: 3000\n")
    return path
