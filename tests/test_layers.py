"""The house's layers run one way: every import of every app module (including imports inside
functions) goes to the app's own layer or one below it, never to a higher layer or a sibling."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first; apps on the same rank are siblings and must not import each other. core (the job
# kernel, the application error class, files) is the very bottom: taxonomy's errors stand on it.
LAYERS: list[set[str]] = [
    {"core"},
    {"taxonomy"},
    {"guards"},  # running guard models (issue 13's guards/ layer)
    {"annotation"},
    {"jury", "training"},
    {"evaluation"},
    {"moderation"},
    {"frontend"},
]
# config/ (settings, urls, the Celery app) sits on top of all of them.
TOP = "config"
RANK = {app: rank for rank, apps in enumerate(LAYERS) for app in apps}
RANK[TOP] = len(LAYERS)

# Imports that still run against the order, each with why; keep this set as small as possible.
ALLOWED: set[tuple[str, str]] = set()


def app_modules(root: Path = ROOT) -> list[Path]:
    return sorted(path for app in RANK for path in (root / app).rglob("*.py") if "migrations" not in path.parts)


def imported_apps(path: Path, root: Path = ROOT) -> set[tuple[str, int]]:
    """The app names this module imports (any depth of the tree, relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = path.relative_to(root).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [".".join(base + ((node.module,) if node.module else ()))]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in RANK:
                found.add((top, node.lineno))
    # import_module("app.x") and include("app.urls") name modules in strings
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("import_module", "include")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            top = node.args[0].value.split(".")[0]
            if top in RANK:
                found.add((top, node.lineno))
    return found


def violations(root: Path = ROOT) -> list[str]:
    problems = []
    for path in app_modules(root):
        app = path.relative_to(root).parts[0]
        for target, line in sorted(imported_apps(path, root)):
            if target == app or (app, target) in ALLOWED:
                continue
            if RANK[target] >= RANK[app]:
                kind = "a sibling" if RANK[target] == RANK[app] else "a higher layer"
                problems.append(f"{path.relative_to(root)}:{line} imports {target} ({kind})")
    return problems


def test_apps_import_only_lower_layers():
    assert violations() == []


def test_allowed_exceptions_are_still_needed():
    """An exception nobody uses any more is taken out of ALLOWED."""
    used = set()
    for path in app_modules():
        app = path.relative_to(ROOT).parts[0]
        used |= {(app, target) for target, _ in imported_apps(path) if (app, target) in ALLOWED}
    assert used == ALLOWED


@pytest.mark.parametrize(
    ("app", "source", "expected"),
    [
        ("annotation", "from jury.models import Juror\n", "imports jury (a higher layer)"),
        ("jury", "def f():\n    from training import services\n", "imports training (a sibling)"),
        ("core", "def f():\n    import config.celery\n", "imports config (a higher layer)"),
        ("evaluation", "import_module('moderation.tasks')\n", "imports moderation (a higher layer)"),
        ("core", "from taxonomy.models import Taxonomy\n", "imports taxonomy (a higher layer)"),
        ("moderation", "from evaluation.metrics import f1\nfrom .models import Ensemble\n", None),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path, app, source, expected):
    """The check sees imports at module level, inside functions and named in strings."""
    (tmp_path / app).mkdir()
    (tmp_path / app / "probe.py").write_text(source)
    found = violations(tmp_path)
    if expected is None:
        assert found == []
    else:
        assert found == [f"{app}/probe.py:{len(source.splitlines())} {expected}"]
