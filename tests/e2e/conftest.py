"""Fixtures for the end-to-end tests that drive a real ``opencode serve``.

opencode is installed once into ``<repo>/.cache/opencode`` with npm (the first
run downloads about 60 MB and takes ~10 s; later runs reuse it). Without npm
the tests are skipped rather than failed: they need Node.js, not jobgov.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jobgov.testing import ensure_opencode

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "opencode"


@pytest.fixture(scope="session")
def opencode_binary() -> Path:
    """The pinned opencode binary, installed on first use."""
    if shutil.which("npm") is None and not (CACHE / "node_modules" / ".bin" / "opencode").exists():
        pytest.skip("npm is not installed: cannot install opencode for the e2e tests")
    return ensure_opencode(CACHE)


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """An empty, git-less worktree for opencode to serve."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("jobgov e2e project\n")
    return project
