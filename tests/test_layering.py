"""Imports flow one way (STYLE.md habit 10): ``store`` at the bottom, ``parser`` pure, the pipeline
and servers above them, ``mailkite`` (CLI, config, process wiring) on top. Every import counts,
including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["store", "parser", "inbound", "delivery", "imapwindow", "dashboard", "mailkite"]
# package -> project packages it must never import
FORBIDDEN = {
    "store": {"parser", "inbound", "delivery", "imapwindow", "dashboard", "mailkite"},
    "parser": {"store", "inbound", "delivery", "imapwindow", "dashboard", "mailkite"},
    "delivery": {"inbound", "imapwindow", "dashboard", "mailkite"},
    "inbound": {"imapwindow", "dashboard", "mailkite"},
    "imapwindow": {"inbound", "dashboard", "mailkite"},
    "dashboard": {"inbound", "imapwindow", "mailkite"},
    "mailkite": set(),
}


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_flow_one_way(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    violations = {str(f.relative_to(REPO)): sorted(project_imports(f) & FORBIDDEN[package]) for f in files}
    assert {k: v for k, v in violations.items() if v} == {}
