#!/usr/bin/env python3
"""Check one CI leg's test results (pytest's JUnit XML): print what passed, was skipped and failed,
and fail unless nothing failed, at least ``--min-passed`` tests passed, and every skipped test is
one this leg may skip, named with ``--may-skip`` (a node id such as
``tests/drills/test_infrastructure_faults.py::test_redis_restarted_mid_run``; a parametrized test
is matched with or without its ``[...]``).

    python .ci/check_results.py --leg embedded --junit results.xml --min-passed 1700 \\
        --may-skip tests/drills/test_infrastructure_faults.py::test_postgres_connections_dropped_mid_run

The XML must be written with ``-o junit_family=xunit1`` (which records each test's file).
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass
class Results:
    passed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # node id, reason
    failed: list[str] = field(default_factory=list)


def node_id(case: ET.Element) -> str:
    """``tests/x/test_y.py::TestClass::test_name[param]`` from a testcase element (xunit1)."""
    name = case.get("name", "")
    file = case.get("file")
    classname = case.get("classname", "")
    if not file:
        return f"{classname.replace('.', '/')}.py::{name}"
    module = file.removesuffix(".py").replace("/", ".")
    cls = classname.removeprefix(module).lstrip(".")
    return "::".join(part for part in (file, cls, name) if part)


def read(path: str) -> Results:
    results = Results()
    root = ET.parse(path).getroot()  # noqa: S314 - our own pytest's output
    for case in root.iter("testcase"):
        nid = node_id(case)
        if case.find("failure") is not None or case.find("error") is not None:
            results.failed.append(nid)
        elif (skip := case.find("skipped")) is not None:
            results.skipped.append((nid, skip.get("message", "")))
        else:
            results.passed.append(nid)
    return results


def check(results: Results, *, leg: str, min_passed: int, may_skip: set[str]) -> list[str]:
    problems = []
    if results.failed:
        problems.append(f"{len(results.failed)} failed: " + ", ".join(results.failed[:20]))
    if len(results.passed) < min_passed:
        problems.append(f"only {len(results.passed)} passed; this leg must pass at least {min_passed}")
    for nid, reason in results.skipped:
        if nid not in may_skip and nid.split("[", 1)[0] not in may_skip:
            problems.append(f"skipped, but the {leg} leg must run it: {nid} ({reason})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leg", required=True)
    parser.add_argument("--junit", required=True)
    parser.add_argument("--min-passed", type=int, required=True)
    parser.add_argument("--may-skip", action="append", default=[])
    args = parser.parse_args(argv)
    results = read(args.junit)
    print(
        f"{args.leg}: {len(results.passed)} passed, {len(results.skipped)} skipped, "
        f"{len(results.failed)} failed (at least {args.min_passed} must pass)"
    )
    for nid, reason in results.skipped:
        print(f"  skipped {nid}: {reason}")
    problems = check(results, leg=args.leg, min_passed=args.min_passed, may_skip=set(args.may_skip))
    for problem in problems:
        print(f"FAIL ({args.leg}): {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
