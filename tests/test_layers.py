"""The import contracts in pyproject.toml (import-linter, run by `make lint`) keep the layering
of docs/architecture.md: here they pass on a copy of the tree, and fail on the same copy once a
module imports against them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "grants", "leads", "alerts", "operations", "sandbox", "portal", "partner_portal")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    shutil.copy(REPO / "pyproject.toml", root)
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.html"))
    return root


def _lint(root: Path, probe: str = "", code: str = "") -> subprocess.CompletedProcess[str]:
    probe_path = root / probe if probe else None
    if probe_path is not None:
        probe_path.write_text(code)
    try:
        return subprocess.run(
            [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
            cwd=root,
            env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        if probe_path is not None:
            probe_path.unlink()


def test_the_tree_keeps_its_contracts(tree):
    done = _lint(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("probe", "code", "verdict"),
    [
        ("core/_probe.py", "from grants.models import Partner\n", "core is not allowed to import grants"),
        ("grants/_probe.py", "import leads.models\n", "grants is not allowed to import leads"),
        ("leads/_probe.py", "from sandbox import views\n", "leads is not allowed to import sandbox"),
        ("alerts/_probe.py", "from operations import metrics\n", "alerts is not allowed to import operations"),
        ("grants/_probe.py", "from portal.views import leads\n", "grants is not allowed to import portal"),
        ("partner_portal/_probe.py", "import portal.urls\n", "partner_portal is not allowed to import portal"),
    ],
)
def test_an_import_against_the_layering_breaks_a_contract(tree, probe, code, verdict):
    done = _lint(tree, probe, code)
    assert done.returncode != 0
    assert "1 broken" in done.stdout or "2 broken" in done.stdout
    assert f"{verdict}:" in done.stdout, done.stdout
