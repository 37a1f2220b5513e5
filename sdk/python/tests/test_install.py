"""`pip install sdk/python` works offline (no index at all) into a fresh
virtual environment, and the installed package imports and loads libmemos."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def test_pip_installs_it_without_the_network():
    with tempfile.TemporaryDirectory() as d:
        venv = Path(d) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-index",
                              "--no-cache-dir", str(PACKAGE)], capture_output=True, text=True)
        assert pip.returncode == 0, pip.stdout + pip.stderr
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        run = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import memos; print(memos.__file__); print(memos.format_id(1))"],
                             cwd=d, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        installed, formatted = run.stdout.split()
        assert installed.startswith(str(venv)) and formatted == "0000000000001"
