"""The package layout holds: each folder one kind of thing, imports running one way.

README "How the code is laid out" draws these arrows; this test keeps them true.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "jobgov"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every jobgov module a file imports, at any depth (lazy imports inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" for a in node.names}
            if node.module != "jobgov":  # ``from jobgov import names`` imports jobgov.names only
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name == "jobgov" or name.startswith("jobgov.")}


def _files(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


#: Who may import what, by folder: the arrows of the layout.
ALLOWED = {
    "domain": ("jobgov.domain",),
    "temporal/workflows": ("jobgov.domain", "jobgov.names", "jobgov.temporal.payloads", "jobgov.temporal.state",
                           "jobgov.temporal.metrics", "jobgov.temporal.workflows"),
    "opencode": ("jobgov.domain", "jobgov.opencode"),
    "policy": ("jobgov.domain", "jobgov.policy"),
    "client": ("jobgov.domain", "jobgov.names", "jobgov.configfile", "jobgov.temporal.payloads",
               "jobgov.temporal.state", "jobgov.client",
               # `job start` checks the agent answers, with the password the workers would send.
               "jobgov.opencode.credentials"),
    # Mission Control's jobs are started and ended through the client, like any caller's.
    "missioncontrol": ("jobgov.domain", "jobgov.names", "jobgov.client", "jobgov.missioncontrol"),
}


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_imports_run_one_way(folder: str) -> None:
    allowed = ALLOWED[folder]
    wrong = {
        f"{_module(path)} imports {name}"
        for path in _files(folder)
        for name in _imports(path)
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    }
    assert not wrong, sorted(wrong)


def test_every_folder_of_the_layout_exists() -> None:
    for folder in ALLOWED:
        assert _files(folder), folder


def test_workflows_load_nothing_heavy() -> None:
    """The workflow sandbox passes through only what workflows import: none of these."""
    code = (
        "import sys\n"
        "import jobgov.temporal.workflows\n"
        "heavy = ('httpx', 'httpx_sse', 'tree_sitter', 'tree_sitter_bash', 'genai_prices', 'ruamel')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.strip() == ""


@pytest.mark.parametrize(("module", "other"), [("job", "plan"), ("plan", "job")])
def test_a_workflows_sandbox_imports_only_its_own_module(module: str, other: str) -> None:
    """The sandbox of every new run re-imports the module defining its workflow, and with it the
    package's ``__init__``: that must not import the other workflow's module too (with bytecode
    cached, that second import was half of a job's sandbox CPU: 8.2 ms against 4.1)."""
    code = (
        "import sys\n"
        f"import jobgov.temporal.workflows.{module}\n"
        f"print('jobgov.temporal.workflows.{other}' in sys.modules)\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "False"


def test_the_job_workflows_module_only_declares_it() -> None:
    """The sandbox imports ``job.py`` anew for every run and keeps it while the run is cached (its
    body's bytecode was 63 KB a job): the body is ``governor.py``, passed through, and ``job.py``
    declares the workflow class, its init and its run, and nothing else."""
    tree = ast.parse((ROOT / "jobgov" / "temporal" / "workflows" / "job.py").read_text(encoding="utf-8"))
    definitions = [node for node in tree.body if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)]
    assert [node.name for node in definitions] == ["JobWorkflow"]
    assert isinstance(definitions[0], ast.ClassDef)
    assert [node.name for node in definitions[0].body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)] == [
        "__init__", "run"]
    assert [ast.unparse(base) for base in definitions[0].bases] == ["JobGovernor"]


def test_passthrough_modules_are_what_workflows_import() -> None:
    from jobgov.temporal.plugin import PASSTHROUGH_MODULES

    imported = {name for path in _files("temporal/workflows") for name in _imports(path)}
    passed = {m for m in PASSTHROUGH_MODULES if m.startswith("jobgov")}
    # Every jobgov module a workflow imports is passed through, and so is every module of the
    # workflows package that defines no workflow; the modules defining workflows are sandboxed.
    helpers = {f"jobgov.temporal.workflows.{path.stem}" for path in _files("temporal/workflows")
               if path.stem != "__init__" and "\n@workflow.defn" not in path.read_text(encoding="utf-8")}
    assert helpers == {f"jobgov.temporal.workflows.{m}" for m in ("book", "book_base", "effects", "support", "calls", "publish", "streams", "governor")}
    needed = {m for m in ALLOWED["temporal/workflows"] if m != "jobgov.temporal.workflows"}
    assert passed == needed | helpers
    assert all(any(name == m or name.startswith(m + ".") for m in (*needed, "jobgov.temporal.workflows"))
               for name in imported)


def test_public_surface() -> None:
    import jobgov
    from jobgov.client import JobGovClient
    from jobgov.temporal.plugin import JobGovPlugin

    assert (jobgov.JobGovPlugin, jobgov.JobGovClient) == (JobGovPlugin, JobGovClient)
    assert sorted(jobgov.__all__) == ["JobGovClient", "JobGovPlugin", "__version__"]
    with pytest.raises(AttributeError):
        _ = jobgov.nothing_here  # type: ignore[attr-defined]
