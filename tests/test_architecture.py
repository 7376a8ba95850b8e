"""The core imports no platform SDK, no HTTP stack and no concrete store (design §3)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted(p for p in (ROOT / "bot").rglob("*.py") if p.stem not in ("app", "cli", "__main__"))
FORBIDDEN = (
    "adapters",
    "storage.sqlite",
    "storage.sqlite_transaction",
    "storage.migrate",
    "slack_bolt",
    "slack_sdk",
    "discord",
    "aiosqlite",
    "aiohttp",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_module_imports_no_platform_code(path: Path):
    """Each core module stays free of SDKs, adapters and the SQLite store."""
    bad = {
        name
        for name in _imports(path)
        for forbidden in FORBIDDEN
        if name == forbidden or name.startswith(forbidden + ".")
    }
    assert bad == set()
