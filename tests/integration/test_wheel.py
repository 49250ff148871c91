"""``pip install jobgov`` gives the plugin, the client, the worker and the CLI: the wheel, built from
this tree and installed in a fresh venv, runs ``jobgov --help``, ``jobgov policy check``, a worker's
start-up and finds the demo's plan, with nothing of the source tree on its path.

The fresh venv gets jobgov from the wheel only; its dependencies are read from this venv's
site-packages (a ``.pth`` line: that directory's own ``.pth`` files, among them this tree's
editable install, are not processed), so the test needs no download beyond the build backend.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import uuid
from pathlib import Path

import pytest

from jobgov.devserver import DevServer
from tests.integration.jobs import jobgov_worker

pytestmark = pytest.mark.temporal

REPO = Path(__file__).resolve().parents[2]
_SKIP = shutil.ignore_patterns(".venv", ".cache", ".git", ".jobgov", "build", "dist", "*.egg-info", "__pycache__",
                               ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel installed; returns its bin directory."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    shutil.copytree(REPO, source, ignore=_SKIP, symlinks=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(root / "dist"),
                    str(source)], check=True, timeout=600)
    [wheel] = (root / "dist").glob("jobgov-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, timeout=300)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv / "bin"


def run(fresh: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(fresh / args[0]), *args[1:]], capture_output=True, text=True, timeout=120,
                          check=False, cwd=fresh.parent, **kw)  # type: ignore[call-overload]


def test_the_installed_package_is_the_wheels_and_carries_its_assets(fresh: Path) -> None:
    probe = run(fresh, "python", "-c", (
        "import sys, jobgov, jobgov.cli, jobgov.run\n"
        "doubles = 'jobgov.testing' in sys.modules  # the CLI and the worker never load the test doubles\n"
        "from jobgov.demo import PLAN_FILE  # (the demo itself runs them)\n"
        "print(jobgov.__file__, jobgov.__version__, PLAN_FILE.is_file(), doubles)"))
    assert probe.returncode == 0, probe.stderr
    where, version, plan_shipped, testing_imported = probe.stdout.split()
    assert where.startswith(str(fresh.parent)) and not where.startswith(str(REPO))
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert (version, plan_shipped, testing_imported) == (project, "True", "False")


def test_the_cli_runs_help_and_policy_check(fresh: Path, tmp_path: Path) -> None:
    assert run(fresh, "jobgov", "--help").returncode == 0
    request = tmp_path / "ask.json"
    request.write_text(json.dumps({"id": "per_1", "sessionID": "ses_1", "permission": "bash", "patterns": ["ls"],
                                   "metadata": {"command": "ls"}}))
    checked = run(fresh, "jobgov", "policy", "check", "--worktree", str(tmp_path), str(request))
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["action"] == "auto-approve"


async def test_the_worker_starts_and_stops(fresh: Path) -> None:
    """It polls its task queue (the helper waits for that line); SIGTERM then stops it with status 0."""
    async with DevServer(port=0, ui_port=None, db=None) as dev:
        queue = f"wheel-{uuid.uuid4().hex[:6]}"
        async with jobgov_worker(dev.address, "--task-queue", queue, executable=str(fresh / "jobgov")) as pid:
            assert pid > 0
