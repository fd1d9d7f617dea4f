"""Side effects run after the commit, and a failing one never fails the request whose write has
committed: every ``transaction.on_commit`` of the market is ``robust=True`` (the error is logged;
the sweeps and the idempotent retries make good what it missed). Seen for real: with Redis down, a
queued e-mail raised inside the bid's commit and turned a stored bid into a 500."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("market", "listings", "pricing", "frontend")


def _on_commit_calls():
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts or "node_modules" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    if name == "on_commit":
                        yield path.relative_to(ROOT), node


def test_every_after_commit_side_effect_is_robust():
    calls = list(_on_commit_calls())
    assert len(calls) >= 15  # the market's hooks were found
    fragile = [
        f"{path}:{node.lineno}"
        for path, node in calls
        if not any(k.arg == "robust" and getattr(k.value, "value", None) is True for k in node.keywords)
    ]
    assert not fragile, "on_commit without robust=True: " + ", ".join(fragile)
