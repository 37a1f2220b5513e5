"""A PEP 517 build backend for the memos package that needs only the
standard library: a wheel is a zip of memos/ with its dist-info (PEP 427),
an sdist a tar of the source. The package is pure Python (it loads
libmemos.so.1 at run time), so this is all a build needs."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG = "py3-none-any"


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _metadata(project: dict) -> str:
    return (f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
            f"Summary: {project['description']}\n"
            f"Requires-Python: {project['requires-python']}\n")


def _sources() -> list[Path]:
    return sorted(p for p in (ROOT / "memos").rglob("*.py"))


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings=None) -> list[str]:
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None) -> str:
    project = _project()
    name, version = project["name"], project["version"]
    dist_info = f"{name}-{version}.dist-info"
    wheel_name = f"{name}-{version}-{TAG}.whl"
    files = {str(p.relative_to(ROOT)): p.read_bytes() for p in _sources()}
    files[f"{dist_info}/METADATA"] = _metadata(project).encode()
    files[f"{dist_info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: memos_build\n"
                                   f"Root-Is-Purelib: true\nTag: {TAG}\n").encode()
    record = [_record_line(n, d) for n, d in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(Path(wheel_directory) / wheel_name, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files.items():
            z.writestr(n, d)
    return wheel_name


def build_sdist(sdist_directory, config_settings=None) -> str:
    project = _project()
    base = f"{project['name']}-{project['version']}"
    with tarfile.open(Path(sdist_directory) / f"{base}.tar.gz", "w:gz") as tar:
        for p in [ROOT / "pyproject.toml", ROOT / "build_backend" / "memos_build.py",
                  *_sources()]:
            tar.add(p, arcname=f"{base}/{p.relative_to(ROOT)}")
        info = _metadata(project).encode()
        entry = tarfile.TarInfo(f"{base}/PKG-INFO")
        entry.size = len(info)
        tar.addfile(entry, io.BytesIO(info))
    return f"{base}.tar.gz"
