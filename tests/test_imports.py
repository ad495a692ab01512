"""The house rules of DESIGN.md: which package may import which (an AST check)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

OURS = {"pantau", "ingest", "analytics", "events", "wallboard"}
ALLOWED = {
    "events": set(),
    "ingest": {"events.model"},
    "analytics": {"ingest", "events.model"},
    "wallboard": {"events"},
    "pantau": OURS,
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def allowed(package: str, module: str) -> bool:
    top = module.split(".")[0]
    if top not in OURS or top == package:
        return True
    return any(
        module == rule or module.startswith(rule + ".") or rule == top for rule in ALLOWED[package]
    )


def test_import_rules_hold() -> None:
    violations = []
    for package in OURS:
        for path in (REPO / package).rglob("*.py"):
            for module in imported_modules(path):
                if not allowed(package, module):
                    violations.append(f"{path.relative_to(REPO)} imports {module}")
    assert violations == []


def test_checker_catches_a_violation() -> None:
    assert not allowed("events", "wallboard.hub")
    assert not allowed("ingest", "events.store")
    assert allowed("ingest", "events.model")
    assert allowed("analytics", "ingest.frame")
