"""memos/_c.py mirrors memos.h: every struct's size and every field's offset,
as a C compiler lays them out, must be what ctypes computes. Compiled with
the system's cc against the source tree's header."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from memos import _c

HEADER_DIR = Path(__file__).resolve().parents[2] / "include"


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_every_struct_matches_the_header():
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "memos/memos.h"',
             "int main(void) {"]
    for name, struct in _c.STRUCTS.items():
        lines.append(f'  printf("{name} %zu\\n", sizeof({name}));')
        for field, _ in struct._fields_:
            c_field = field.rstrip("_")  # from_, lambda_: Python keywords
            lines.append(f'  printf("{name}.{field} %zu\\n", offsetof({name}, {c_field}));')
    lines += ["  return 0;", "}"]
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "layout.c"), os.path.join(d, "layout")
        Path(src).write_text("\n".join(lines))
        subprocess.run(["cc", "-std=c99", "-I", str(HEADER_DIR), src, "-o", exe], check=True)
        printed = dict(line.rsplit(" ", 1) for line in
                       subprocess.run([exe], check=True, capture_output=True,
                                      text=True).stdout.splitlines())
    wrong = []
    for name, struct in _c.STRUCTS.items():
        if int(printed[name]) != ctypes.sizeof(struct):
            wrong.append(f"sizeof({name}): C {printed[name]}, ctypes {ctypes.sizeof(struct)}")
        for field, _ in struct._fields_:
            offset = getattr(struct, field).offset
            if int(printed[f"{name}.{field}"]) != offset:
                wrong.append(f"{name}.{field}: C {printed[name + '.' + field]}, ctypes {offset}")
    assert not wrong, "\n".join(wrong)
