"""ops/progress.py: each step printed once, when it finishes, with its summary line and time;
a triggered build's steps below the step that triggered it; a live line only on a terminal."""

import io

from ops.progress import StepPrinter
from ops.progress import follow_with_progress


def step(stepid, name, summary, started=None, complete=None, results=None, hidden=False):
    return {
        "stepid": stepid,
        "name": name,
        "state_string": summary,
        "started_at": started,
        "complete_at": complete,
        "complete": complete is not None,
        "results": results,
        "hidden": hidden,
    }


class FakeMaster:
    """The data API paths follow_with_progress reads, from a dict."""

    def __init__(self, answers):
        self.answers = answers

    def get(self, path):
        return self.answers[path]


def triggered_one(ci_steps: list, child: dict, builder: str, child_steps: list) -> FakeMaster:
    """Build 1 with `ci_steps`, which triggered one build (id 2, #3, request 9) of `builder`."""
    return FakeMaster(
        {
            "builds/1/steps": {"steps": ci_steps},
            "buildsets?parent_buildid=1": {"buildsets": [{"bsid": 5}]},
            "buildrequests?buildsetid=5": {"buildrequests": [{"buildrequestid": 9}]},
            "builds?buildrequestid=9&order=number": {
                "builds": [
                    {"buildid": 2, "number": 3, "builderid": 4, "buildrequestid": 9, **child}
                ]
            },
            "builders/4": {"builders": [{"name": builder}]},
            "builds/2/steps": {"steps": child_steps},
        }
    )


def test_a_finished_step_is_printed_once_with_its_summary_and_time():
    out = io.StringIO()
    printer = StepPrinter(out, live=False)
    build = {"buildid": 1, "number": 7}
    steps = [
        step(1, "worker_preparation", "worker build ready", 0, 1, 0),
        step(2, "tests", "68 passed, 0 failed", 100, 102, 0),
        step(3, "coverage", "", 102),
    ]
    printer.update(build, steps)
    printer.update(build, steps)
    assert out.getvalue().splitlines() == [
        "  tests" + " " * 25 + "68 passed, 0 failed" + " " * 25 + "    2 s"
    ]


def test_a_failed_or_warned_step_names_its_result_and_a_skipped_one_is_left_out():
    out = io.StringIO()
    printer = StepPrinter(out, live=False)
    printer.update(
        {"buildid": 1, "number": 7},
        [
            step(1, "tests", "1 passed, 2 failed", 0, 5, 2),
            step(2, "deb", "skipped", 5, 5, 3),
            step(3, "hidden", "", 5, 6, 0, hidden=True),
        ],
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("5 s  [FAILURE]")


def test_in_a_pipe_the_running_step_prints_nothing_on_a_terminal_it_is_a_live_line():
    build = {"buildid": 1, "number": 7}
    steps = [step(1, "deb", "building", 0)]
    pipe, tty = io.StringIO(), io.StringIO()
    for out, live in ((pipe, False), (tty, True)):
        printer = StepPrinter(out, live=live)
        printer.show_running(printer.update(build, steps, now=4), now=4)
        printer.update(build, [step(1, "deb", "built x.deb", 0, 9, 0)], now=9)
    assert len(pipe.getvalue().splitlines()) == 1
    assert "built x.deb" in pipe.getvalue() and "building" not in pipe.getvalue()
    assert "building" in tty.getvalue() and "\r\x1b[2K" in tty.getvalue()
    assert tty.getvalue().endswith("9 s\n")


def test_a_triggered_builds_steps_come_below_and_before_the_step_that_triggered_it():
    out = io.StringIO()
    master = triggered_one(
        [step(1, "publish to staging", "1 success", 10, 20, 0)],
        {"started_at": 11},
        "publish",
        [step(1, "verify", "snowbird 1.0 in staging", 12, 13, 0)],
    )
    follow_with_progress(master, {"buildid": 1, "number": 1}, StepPrinter(out, live=False))
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["publish", "verify", "publish"]
    assert lines[0] == "    publish #3"
    assert lines[1].startswith("      verify") and lines[2].startswith("  publish to staging")


def test_a_get_cut_short_by_the_master_is_asked_again_a_post_never(monkeypatch):
    import http.client

    from ops import api

    master = api.Master("http://127.0.0.1:1/")
    calls = []

    def flaky(path, data, headers):
        calls.append((path, data))
        if len(calls) < 3:
            raise http.client.IncompleteRead(b"{", 10)
        return {"builds": []}

    monkeypatch.setattr(master, "_request", flaky)
    monkeypatch.setattr(api.time, "sleep", lambda s: None)
    assert master.get("builds") == {"builds": []} and len(calls) == 3
    calls.clear()
    try:
        master.request("api/v2/forceschedulers/x", {"method": "force"})
    except http.client.IncompleteRead:
        pass
    else:
        raise AssertionError("a POST was retried or swallowed")
    assert len(calls) == 1


def test_a_build_that_begins_in_the_second_a_step_ends_belongs_to_the_next_step():
    out = io.StringIO()
    master = triggered_one(
        [
            step(1, "install-check", "passed", 10, 20, 0),
            step(2, "publish to staging", "1 success", 20, 25, 0),
        ],
        {"started_at": 20},
        "publish",
        [step(1, "verify", "ok", 21, 22, 0)],
    )
    follow_with_progress(master, {"buildid": 1, "number": 1}, StepPrinter(out, live=False))
    assert [line.split()[0] for line in out.getvalue().splitlines()] == [
        "install-check",
        "publish",
        "verify",
        "publish",
    ]


def printed_beside(third: dict, package_build: dict, package_steps: list) -> list[str]:
    """What the printer shows of a CI build that started its package build (request 9) first,
    then ran its tests, then `third`; the package build as given."""
    out = io.StringIO()
    request = "http://127.0.0.1:8010/#/buildrequests/9"
    master = triggered_one(
        [
            dict(
                step(1, "start package", "started snowbird-package", 10, 10, 0),
                urls=[{"name": "snowbird-package #9", "url": request}],
            ),
            step(2, "tests", "12 passed", 10, 14, 0),
            third,
        ],
        package_build,
        "snowbird-package",
        package_steps,
    )
    follow_with_progress(master, {"buildid": 1, "number": 1}, StepPrinter(out, live=False))
    return [line.split()[0] for line in out.getvalue().splitlines()]


def test_a_package_build_beside_the_tests_comes_below_the_step_that_waited_for_it():
    waited = dict(
        step(3, "package", "1.0+ci1 from snowbird-package #3", 14, 20, 0),
        urls=[
            {"name": "package build request #9", "url": "http://127.0.0.1:8010/#/buildrequests/9"}
        ],
    )
    assert printed_beside(
        waited,
        {"started_at": 10, "complete": True},
        [step(1, "deb", "built snowbird_1.0+ci1_amd64.deb", 11, 19, 0)],
    ) == ["start", "tests", "snowbird-package", "deb", "package"]


def test_a_package_build_started_but_not_yet_waited_for_is_not_printed_yet():
    assert printed_beside(
        step(3, "coverage", "…", 14),
        {"started_at": 10, "complete": False},
        [step(1, "git", "update", 10, 11, 0), step(2, "deb", "building", 11)],
    ) == ["start", "tests"]


def test_a_failed_build_is_described_with_its_failing_steps_and_the_end_of_their_logs():
    from ops import api

    build = {
        "url": "http://ci/#/builders/1/builds/4",
        "results": 2,
        "steps": [
            {"name": "checkout", "state_string": "update", "results": 0},
            {
                "name": "virtualenv",
                "state_string": "virtualenv (failure)",
                "results": 2,
                "log_tail": "ouv venv --clear\neerror: No interpreter found for python3\n",
            },
            {"name": "coverage", "state_string": "skipped", "results": 3},
        ],
    }
    assert api.describe(build) == (
        "http://ci/#/builders/1/builds/4 FAILURE\n"
        "  virtualenv: virtualenv (failure) (FAILURE)\n"
        "    | ouv venv --clear\n"
        "    | eerror: No interpreter found for python3"
    )
