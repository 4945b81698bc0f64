"""The apps' dependency picture (docs/ARCHITECTURE.md, "Layout") stays true: an import that goes
against it fails here. Imports are read from the source with ``ast`` (module level, inside
functions, and ``TYPE_CHECKING`` blocks alike), so a lazy import cannot hide an edge."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "apps"
FEATURE_APPS = ("accounts", "api_keys", "audit", "billing", "generations", "providers", "sharing", "webhooks")

# app -> the apps it must never import
FORBIDDEN = {
    "core": FEATURE_APPS,  # the foundation knows no feature
    # no Django app state
    "providers": ("accounts", "api_keys", "audit", "billing", "core", "generations", "sharing", "webhooks"),
    "accounts": ("billing", "generations", "sharing", "webhooks"),
    "api_keys": ("billing", "generations", "sharing", "webhooks"),
    "audit": ("api_keys", "billing", "generations", "providers", "sharing"),
    # generations records events through webhooks.services; webhooks gets a video as plain data
    "webhooks": ("billing", "generations", "sharing"),
    # share links read a video through generations' selectors; money is none of their business
    "sharing": ("billing", "api_keys", "webhooks", "providers"),
}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # ``from apps import billing`` imports apps.billing
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def app_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "apps" else None


def edges() -> list[tuple[str, str, str]]:
    """(importing file, its app, imported app) for every cross-app import under apps/."""
    found = set()
    for path in sorted(APPS.rglob("*.py")):
        source_app = path.relative_to(APPS).parts[0]
        for module in imported_modules(path):
            target = app_of(module)
            if target and target != source_app:
                found.add((str(path.relative_to(ROOT)), source_app, target))
    return sorted(found)


def forbidden_edges() -> list[tuple[str, str, str]]:
    return [(path, src, dst) for path, src, dst in edges() if dst in FORBIDDEN.get(src, ())]


def test_no_app_imports_against_the_layering():
    assert forbidden_edges() == []


def test_the_scan_sees_every_kind_of_import(tmp_path, monkeypatch):
    """The scanner finds module-level, lazy, relative and ``TYPE_CHECKING`` imports, so the test
    above can fail: a planted file in each guarded app is reported."""
    fake_root = tmp_path
    (fake_root / "apps" / "core").mkdir(parents=True)
    (fake_root / "apps" / "accounts").mkdir(parents=True)
    (fake_root / "apps" / "providers" / "sora").mkdir(parents=True)
    (fake_root / "apps" / "core" / "planted.py").write_text("from apps.generations import models\n")
    (fake_root / "apps" / "accounts" / "planted.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from apps.billing.models import UsageEntry\n"
    )
    (fake_root / "apps" / "providers" / "sora" / "planted.py").write_text(
        "def f():\n    from ...core import errors\n    import apps.api_keys.crypto\n"
    )
    (fake_root / "apps" / "core" / "fine.py").write_text("from apps.core import errors\nimport django\n")
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "ROOT", fake_root)
    monkeypatch.setattr(this, "APPS", fake_root / "apps")
    assert sorted(forbidden_edges()) == [
        ("apps/accounts/planted.py", "accounts", "billing"),
        ("apps/core/planted.py", "core", "generations"),
        ("apps/providers/sora/planted.py", "providers", "api_keys"),
        ("apps/providers/sora/planted.py", "providers", "core"),
    ]


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_every_guarded_app_exists(app):
    """A renamed app would make its rule silently vacuous."""
    assert (APPS / app / "__init__.py").exists()
