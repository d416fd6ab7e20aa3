"""The code's shape, measured: no import circle anywhere in the package, no module of ``service/``
or ``notebook/`` over 450 lines, every setting defined once, and tests that are tests."""

from __future__ import annotations

import ast
import textwrap
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pytest
from helpers.imports import a_path, cycles, edges, modules

import gpuoutlet_jupyter
from gpuoutlet_jupyter.notebook.follow import FollowOptions
from gpuoutlet_jupyter.notebook.session import NotebookSession
from gpuoutlet_jupyter.server.app import GpuOutletApp
from gpuoutlet_jupyter.server.manager import ManagerConfig
from gpuoutlet_jupyter.service.options import ServiceConfig, ServiceOptions

PACKAGE = Path(gpuoutlet_jupyter.__file__).parent
TESTS = Path(__file__).parent
#: The most lines a module of these layers may have: past it, it does more than one thing.
MAX_LINES = 450
SIZED = ("service", "notebook")


# --- imports ------------------------------------------------------------------------------


def test_no_import_circle_in_the_package() -> None:
    graph = edges(PACKAGE)
    found = cycles(graph)
    shown = [" → ".join(a_path(graph, members[0], set(members))) for members in found]
    assert not found, "import circles (imports inside functions count):\n" + "\n".join(shown)


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


def test_the_circle_check_sees_imports_inside_functions_and_skips_type_checking(
    tmp_path: Path,
) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from . import b\n",
            "b.py": "def later():\n    from .c import thing\n",
            "c.py": "from .a import x\n",
            "d.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from .e import E
                """,
            "e.py": "from .d import D\n",
            "sub/__init__.py": "",
            "sub/f.py": "import pkg.sub.g\n",
            "sub/g.py": "from ..sub import f\n",
        },
    )
    graph = edges(package)
    assert graph["pkg.d"] == set() and graph["pkg.e"] == {"pkg.d"}
    assert sorted(cycles(graph)) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.sub.f", "pkg.sub.g"]]
    assert a_path(graph, "pkg.a", {"pkg.a", "pkg.b", "pkg.c"}) == [
        "pkg.a",
        "pkg.b",
        "pkg.c",
        "pkg.a",
    ]


def test_only_upstream_holds_the_client_in_the_service() -> None:
    """Every request of RentalService goes through ``Upstream`` (where the request budget goes):
    no other part of the service keeps the API client, and only its builders name it."""
    for name, path in modules(PACKAGE).items():
        if not name.startswith("gpuoutlet_jupyter.service.") or name.endswith(".upstream"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        kept = [
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in ("client", "_client")
        ]
        assert not kept, f"{name} keeps the API client: call it through Upstream"
        named = any(
            isinstance(node, ast.Name) and node.id == "AsyncRentalsClient"
            for node in ast.walk(tree)
        )
        assert not named or name.rsplit(".", 1)[1] in ("service", "build"), name


# --- sizes --------------------------------------------------------------------------------


def test_no_module_of_the_service_or_notebook_layer_is_over_450_lines() -> None:
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in modules(PACKAGE).items()
        if name.split(".")[1:2] and name.split(".")[1] in SIZED
    }
    assert len(sizes) > 20  # the layers were found
    over = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


# --- settings, defined once ---------------------------------------------------------------


def _default(kind: type[Any], name: str) -> Any:
    (item,) = (f for f in fields(kind) if f.name == name)
    if item.default is not MISSING:
        return item.default
    assert item.default_factory is not MISSING, f"{kind.__name__}.{name} has no default"
    return item.default_factory()


@pytest.mark.parametrize("host", [GpuOutletApp, NotebookSession])
def test_a_trait_has_the_default_of_the_field_it_fills(host: type[Any]) -> None:
    """One source of defaults: each trait that fills a field starts from that field's default."""
    traits = host.class_traits(config=True)
    checked = 0
    for kind in (ServiceOptions, ServiceConfig, ManagerConfig, FollowOptions):
        for item in fields(kind):
            if item.name not in traits or item.name == "state_dir":
                continue
            default = _default(kind, item.name)
            trait_default = traits[item.name].default()
            if default is None:  # a path that is unset: an empty text in a trait
                assert trait_default == "", (host.__name__, item.name)
            else:
                assert trait_default == default, (host.__name__, kind.__name__, item.name)
            checked += 1
    assert checked >= 10


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    return value + 1 if isinstance(value, (int, float)) else value


def test_every_option_trait_reaches_the_service_in_one_step(tmp_path: Path) -> None:
    """No list of traits kept by hand: each one the host has reaches the options it fills."""
    options = {item.name for item in fields(ServiceOptions)}
    app_traits = {
        name: _changed(trait.default())
        for name, trait in GpuOutletApp.class_traits(config=True).items()
        if name in options
    }
    session_traits = {
        name: _changed(trait.default())
        for name, trait in NotebookSession.class_traits(config=True).items()
        if name in options
    }
    # The server has the idle auto-stop's three settings; a kernel renting by itself has none.
    assert {"idle_stop_minutes", "idle_check_interval"} <= set(app_traits) - set(session_traits)
    assert {"poll_interval", "max_hourly_spend_cents"} <= set(session_traits)
    from_app = GpuOutletApp(state_dir=str(tmp_path), **app_traits).manager_config()
    from_session = NotebookSession(**session_traits).backend_config()
    for name, value in app_traits.items():
        assert getattr(from_app.service.options, name) == value, name
    for name, value in session_traits.items():
        assert getattr(from_session.service.options, name) == value, name
    assert from_app.service.request_timeout == GpuOutletApp().request_timeout
    assert from_app.max_wait == GpuOutletApp().max_wait


# --- the tests themselves -----------------------------------------------------------------


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_test_modules_hold_tests_and_import_no_other_test_module() -> None:
    test_modules = sorted(TESTS.glob("test_*.py"))
    names = {path.stem for path in test_modules}
    for path in test_modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        tests = [
            node
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test_")
        ]
        assert tests, f"{path.name} holds no test: its helpers belong in tests/helpers/"
        assert not (_imported(path) & names), f"{path.name} imports a test module"
    for path in (TESTS / "helpers").glob("*.py"):
        assert not (_imported(path) & names), f"helpers/{path.name} imports a test module"
