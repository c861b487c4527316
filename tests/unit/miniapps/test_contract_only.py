"""A mini-app imports nothing of the platform but ``miniapps.contract``: not ``backend``, ``auth``,
``payments``, the platform's other ``miniapps`` modules, nor another mini-app. Third-party libraries and
its own modules are fine. Every mini-app package of this repository is read (its source, not imported):
the built-in ones under ``miniapps/`` and the examples that declare a ``shengshitong.miniapps`` entry
point, so a new mini-app that breaks the rule fails here. Imports inside functions and under
``TYPE_CHECKING`` count too."""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = "miniapps.contract"
GROUP = "shengshitong.miniapps"


def platform_packages() -> set[str]:
    """The platform's top-level packages: those pyproject ships, and any other package at the root."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = {p.rstrip("*.") for p in conf["tool"]["setuptools"]["packages"]["find"]["include"]}
    at_root = {d.name for d in ROOT.iterdir() if (d / "__init__.py").is_file() and d.name != "tests"}
    return shipped | at_root


def miniapp_packages() -> dict[str, Path]:
    """Every mini-app package of the repository: dotted name -> directory."""
    found = {
        f"miniapps.{d.name}": d
        for d in sorted((ROOT / "miniapps").iterdir())
        if (d / "__init__.py").is_file()
    }
    for project in sorted((ROOT / "examples").glob("*/pyproject.toml")):
        entry_points = tomllib.loads(project.read_text()).get("project", {}).get("entry-points", {})
        for target in entry_points.get(GROUP, {}).values():
            top = target.partition(":")[0].split(".")[0]
            found[top] = project.parent / top
    return found


def _module_name(package: str, package_dir: Path, path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(package_dir).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join([package, *parts]), is_package


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def violations(package: str, package_dir: Path, platform: set[str]) -> list[str]:
    """``path:line imports name`` for each import of a platform module other than the contract."""

    def allowed(name: str) -> bool:
        return (
            name == package
            or name.startswith(package + ".")
            or name == CONTRACT
            or name.startswith(CONTRACT + ".")
        )

    def of_platform(name: str) -> bool:
        return name.split(".")[0] in platform

    found = []
    for path in sorted(package_dir.rglob("*.py")):
        module, is_package = _module_name(package, package_dir, path)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, module, is_package)
                # "from miniapps import contract" names the contract; "from miniapps.x import y" names x
                names = [base] if allowed(base) else [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            found += [
                f"{path.relative_to(package_dir.parent)}:{node.lineno} imports {name}"
                for name in names
                if of_platform(name) and not allowed(name)
            ]
    return found


def test_every_miniapp_package_is_found():
    found = miniapp_packages()
    assert {
        "miniapps.transit",
        "miniapps.parking",
        "miniapps.hospital",
        "miniapps.tourism",
        "hello_miniapp",
    } <= set(found)
    assert all(d.is_dir() for d in found.values())
    assert {"backend", "auth", "codes", "payments", "miniapps"} <= platform_packages()


def test_miniapps_import_nothing_of_the_platform_but_the_contract():
    platform = platform_packages()
    broken = [v for package, d in miniapp_packages().items() for v in violations(package, d, platform)]
    assert broken == [], "a mini-app may import only miniapps.contract of the platform:\n" + "\n".join(broken)


def test_the_check_catches_every_way_round_the_contract(tmp_path):
    app = tmp_path / "miniapps" / "ferry"
    (app / "sub").mkdir(parents=True)
    (app / "__init__.py").write_text("from miniapps.ferry.app import FerryApp\n")
    (app / "app.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import litestar\n"  # a third-party library: fine
        "from miniapps.contract import MiniApp\n"
        "from miniapps import contract\n"
        "from . import rules\n"  # its own modules: fine
        "from backend.errors import NotFound\n"
        "import auth.guards\n"
        "from miniapps import transit\n"  # another mini-app
        "if TYPE_CHECKING:\n"
        "    from payments.services import Orders\n"
        "def handlers():\n"
        "    from miniapps.deps import citizen_caller\n"
    )
    (app / "sub" / "x.py").write_text("from ... import registry\nfrom ..rules import fare\n")
    found = violations("miniapps.ferry", app, {"backend", "auth", "payments", "miniapps"})
    assert [v.split(" imports ")[1] for v in found] == [
        "backend.errors.NotFound",
        "auth.guards",
        "miniapps.transit",
        "payments.services.Orders",
        "miniapps.deps.citizen_caller",
        "miniapps.registry",
    ]
    assert found[0] == "ferry/app.py:6 imports backend.errors.NotFound"
