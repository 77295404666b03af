"""JUnit XML reports, as test runners write them (pytest's --junit-xml): their test cases."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


@dataclass(frozen=True)
class JUnitCase:
    name: str
    outcome: str  # "passed", "failed" or "skipped"
    file: str | None = None
    line: int | None = None
    duration_ns: int | None = None
    failure: str | None = None  # the <failure>/<error> message and text, for a failed case


def failure_text(element) -> str:
    """What a <failure> or <error> says: its message attribute, then its text (pytest puts the
    traceback there, which ends with the message: then the text alone)."""
    message = (element.get("message") or "").strip()
    text = (element.text or "").strip()
    if message and message.splitlines()[0] not in text:
        return f"{message}\n{text}".strip()
    return text or message or element.tag


def parse_junit(text):
    """The test cases of a JUnit XML report (root <testsuites> or <testsuite>), a failed case
    with its failure text.

    Raises xml.etree.ElementTree.ParseError when the text is not XML.
    """
    cases = []
    for case in ET.fromstring(text).iter("testcase"):
        classname, name = case.get("classname"), case.get("name", "?")
        children = {child.tag for child in case}
        failure = None
        if children & {"failure", "error"}:
            outcome = "failed"
            failure = "\n\n".join(
                failure_text(child) for child in case if child.tag in ("failure", "error")
            )
        elif "skipped" in children:
            outcome = "skipped"
        else:
            outcome = "passed"
        cases.append(
            JUnitCase(
                name=f"{classname}::{name}" if classname else name,
                outcome=outcome,
                file=case.get("file"),
                line=_to_number(int, case.get("line")),
                duration_ns=_to_number(lambda t: int(float(t) * 1e9), case.get("time")),
                failure=failure,
            )
        )
    return cases


def _to_number(convert, value):
    try:
        return convert(value) if value is not None else None
    except ValueError:
        return None
