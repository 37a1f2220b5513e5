"""A real memosd for the tests: started on a temporary socket and data
folder ($MEMOS_MEMOSD, else the build tree's), stopped after them."""

from __future__ import annotations

import os
import shutil
import socket as socketlib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[3]


def _memosd() -> str:
    return os.environ.get("MEMOS_MEMOSD", str(SOURCE / "build" / "kernel" / "memosd"))


class Daemon:
    def __init__(self, folder: Path, config: str = "") -> None:
        self.folder = folder
        self.socket = str(folder / "memosd.sock")
        args = [_memosd(), "--socket", self.socket, "--data", str(folder / "data")]
        if config:
            (folder / "memosd.conf").write_text(config)
            args += ["--config", str(folder / "memosd.conf")]
        self.log = open(folder / "memosd.log", "wb")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("memosd exited:\n" + (folder / "memosd.log").read_text())
            try:
                with socketlib.socket(socketlib.AF_UNIX) as s:
                    s.connect(self.socket)
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("memosd did not start:\n" + (folder / "memosd.log").read_text())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


@pytest.fixture
def daemon():
    folder = Path(tempfile.mkdtemp(prefix="memos-py-"))
    d = Daemon(folder)
    yield d
    d.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def client(daemon):
    import memos
    with memos.Client.connect(daemon.socket, wait_searchable=True) as c:
        yield c
