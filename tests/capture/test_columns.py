"""The C column names are flows/schema.py FLOW_COLUMNS, and the cic2017 header is the original one.

A tiny C program linked against ``capture/columns.c`` prints what the engine will write, so this
holds without the rest of the meter (no libpcap, no capture file).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from flows.schema import FLOW_COLUMNS
from tests.capture.conftest import CAPTURE_DIR

_PRINTER = r"""
#include <stdio.h>
#include "meter.h"
int main(void)
{
    static char buf[8192];
    printf("%d\n", NS_NUM_COLUMNS);
    for (int i = 0; i < NS_NUM_COLUMNS; i++)
        printf("%s\n", ns_column_names[i]);
    const char *styles[] = {"canonical", "cic2017"};
    for (int i = 0; i < 2; i++) {
        if (ns_header_line(styles[i], buf, sizeof buf) < 0)
            return 1;
        printf("%s\n", buf);
    }
    /* unknown style and a too-small buffer are refused */
    printf("%d %d\n", ns_header_line("nope", buf, sizeof buf), ns_header_line("canonical", buf, 10));
    for (int p = 0; p < 3; p++)
        printf("%s %d\n", ns_profile_name(p), ns_profile_from_name(ns_profile_name(p)));
    printf("%d\n", ns_profile_from_name("CIC2017"));
    return 0;
}
"""


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Output lines of the column printer compiled against capture/columns.c."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler")
    work = tmp_path_factory.mktemp("columns")
    (work / "printer.c").write_text(_PRINTER)
    binary = work / "printer"
    build = subprocess.run(
        [compiler, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(CAPTURE_DIR), "-o", str(binary),
         str(work / "printer.c"), str(CAPTURE_DIR / "columns.c")],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    return run.stdout.split("\n")


def test_column_names_are_the_schema(printed: list[str]) -> None:
    assert int(printed[0]) == len(FLOW_COLUMNS) == 83
    assert printed[1 : 1 + 83] == list(FLOW_COLUMNS)
    assert printed[84].split(",") == list(FLOW_COLUMNS)


def test_cic2017_header_is_the_original_trafficlabelling_header(
    printed: list[str], cicids_fixtures: Path
) -> None:
    original = (cicids_fixtures / "trafficlabelling-friday-ddos-head.csv").read_text().split("\n")[0]
    names = original.rstrip("\r").split(",")
    assert names[-1].strip() == "Label"
    header = printed[85].split(",")
    assert header == names[:-1] and len(header) == 84
    # the original spells " Fwd Header Length" twice; stripped of spaces it is the canonical list
    assert [n for n in dict.fromkeys(h.strip() for h in header)] == list(FLOW_COLUMNS)


def test_header_refusals_and_profile_names(printed: list[str]) -> None:
    assert printed[86] == "-1 -1"
    assert printed[87:90] == ["cic2017 0", "engelen 1", "clean 2"]
    assert printed[90] == "-1"
