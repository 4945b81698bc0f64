"""CI's gate on a leg's results (.ci/check_results.py), on a JUnit report written by a real pytest:
green only with no failure, enough passes, and no skip but the ones the leg names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.utils import ROOT

SAMPLE = """
import pytest

def test_one():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_two(n):
    pass

class TestGroup:
    def test_three(self):
        pass

def test_drill():
    pytest.skip("Redis leg only")

@pytest.mark.parametrize("n", [1])
def test_browser(n):
    pytest.skip("chromium is missing")
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The JUnit XML of a small suite: 4 passed, 2 skipped."""
    folder = tmp_path_factory.mktemp("ci")
    (folder / "test_sample.py").write_text(SAMPLE)
    (folder / "pytest.ini").write_text("[pytest]\n")
    xml = folder / "results.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:django", "-p", "no:cacheprovider", "-c", "pytest.ini",
         "--rootdir", ".", f"--junitxml={xml}", "-o", "junit_family=xunit1", "test_sample.py"],
        cwd=folder, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return xml


def _gate(report, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "check_results.py"), "--leg", "sqlite", "--junit", str(report), *args],
        capture_output=True,
        text=True,
    )


def test_the_gate_prints_the_counts_and_passes_when_only_named_skips_remain(report):
    result = _gate(
        report,
        "--min-passed",
        "4",
        "--may-skip",
        "test_sample.py::test_drill",
        "--may-skip",
        "test_sample.py::test_browser",
    )
    assert result.returncode == 0, result.stderr
    assert "sqlite: 4 passed, 2 skipped, 0 failed (at least 4 must pass)" in result.stdout
    assert "skipped test_sample.py::test_drill: Redis leg only" in result.stdout


def test_the_gate_fails_on_a_skip_the_leg_must_run(report):
    result = _gate(report, "--min-passed", "4", "--may-skip", "test_sample.py::test_drill")
    assert result.returncode == 1
    assert "must run it: test_sample.py::test_browser[1] (chromium is missing)" in result.stderr
    assert "test_drill" not in result.stderr


def test_the_gate_fails_below_the_floor(report):
    result = _gate(
        report,
        "--min-passed",
        "5",
        "--may-skip",
        "test_sample.py::test_drill",
        "--may-skip",
        "test_sample.py::test_browser",
    )
    assert result.returncode == 1 and "only 4 passed; this leg must pass at least 5" in result.stderr


def test_the_gate_fails_on_a_failure(tmp_path):
    xml = tmp_path / "results.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_x" name="test_ok" file="tests/test_x.py"/>'
        '<testcase classname="tests.test_x.TestY" name="test_bad" file="tests/test_x.py">'
        '<failure message="boom"/></testcase>'
        "</testsuite></testsuites>"
    )
    result = _gate(xml, "--min-passed", "1")
    assert result.returncode == 1 and "1 failed: tests/test_x.py::TestY::test_bad" in result.stderr
