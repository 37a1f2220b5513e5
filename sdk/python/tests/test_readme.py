"""The README's Python example, run as a user pastes it, against a real
memosd: it prints a hit for the swim and the NotFound."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_example_runs(daemon):
    blocks = re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.S | re.M)
    assert blocks, "the README has no ```python block"
    env = dict(os.environ, MEMOS_SOCKET=daemon.socket)
    for _ in range(2):  # idempotent: a second run finds the cube
        run = subprocess.run([sys.executable, "-c", blocks[0]], env=env, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert "Maya swims on Saturdays" in run.stdout.splitlines()[0], run.stdout
        assert "not found:" in run.stdout and "final" in run.stdout
