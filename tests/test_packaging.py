"""What `pip install .` puts into a user's environment: one import name, `ottla`, its console
script and its pytest plugin; none of the checkout's folder names, and no test tooling."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with Ottla's wheel installed from this checkout (its dependencies are not
    needed to see what the wheel holds, so none are fetched)."""
    root = tmp_path_factory.mktemp("wheel")
    # Built from a clean copy: setuptools packs whatever an earlier build left in build/.
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".cache", "node_modules", "build", "*.egg-info", "__pycache__", "target"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(source)], check=True)
    (wheel,) = (root / "dist").glob("ottla-*.whl")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True)
    return python


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def test_only_the_ottla_import_name_arrives(installed: Path) -> None:
    site = _site_packages(installed)
    before = {"pip", "_distutils_hack", "setuptools", "pkg_resources", "distutils-precedence.pth"}
    arrived = {path.name for path in site.iterdir() if not path.name.startswith(("pip-", "setuptools-", "__pycache__"))} - before
    assert arrived == {"ottla", "ottla-0.1.0.dist-info"}
    package = site / "ottla"
    assert (package / "py.typed").exists()
    assert not (package / "compat").exists() and not (package / "tests").exists()
    for name in ("wire", "storage", "server"):
        assert (package / name / "__init__.py").exists()


def test_the_old_top_level_names_are_gone(installed: Path) -> None:
    for name in ("server", "storage", "wire", "compat"):
        result = subprocess.run([str(installed), "-c", f"import {name}"], capture_output=True, text=True, cwd="/")
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, name


def test_the_console_script_and_the_pytest_plugin_are_registered(installed: Path) -> None:
    (dist_info,) = _site_packages(installed).glob("ottla-*.dist-info")
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert "ottla = ottla.server.cli:main" in entry_points
    assert "ottla = ottla.pytest_plugin" in entry_points
    assert (installed.parent / "ottla").exists()


def test_every_subpackage_of_the_checkout_is_in_the_wheel(installed: Path) -> None:
    """The package list in pyproject.toml is written by hand: a new subpackage must join it."""
    package = _site_packages(installed) / "ottla"
    for folder in ("wire", "storage", "server"):
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.relative_to(REPO)
            assert (package / relative).exists(), f"{relative.parent} is not in pyproject.toml's packages"
