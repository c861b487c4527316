"""A vendor's virtual environment holding only the packages a document names, made once per session for
each set of packages: the standalone verifiers (codes/verifier.py, licences/verifier.py) run there,
copied alone, away from this project."""

import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def vendor_venv(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``vendor_venv("cryptography", "cbor2")`` → the python of a fresh venv holding exactly those
    (at this project's versions)."""
    made: dict[tuple[str, ...], Path] = {}

    def make(*packages: str) -> Path:
        if packages not in made:
            venv = tmp_path_factory.mktemp("vendor-venv")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
            python = venv / "bin" / "python"
            pins = [f"{name}=={version(name)}" for name in packages]
            pip = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            assert pip.returncode == 0, pip.stderr[-2000:]
            made[packages] = python
        return made[packages]

    return make
