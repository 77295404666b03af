"""Push to staging, end to end: a real master, worker, aptly repository and HTTP server on free
loopback ports; a signed GitHub push of the demo app; apt-get installs the result from staging.

Needs root (apt-get install into this machine, then purge) and the system packages of
`make system`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conveyor.results import result_name
from ops import api
from ops import demo
from ops import github
from ops import setup
from ops.progress import triggered_builds
from tests.integration.helpers import AptClient
from tests.integration.helpers import installed_version
from tests.integration.helpers import purge
from tests.integration.helpers import running_installation
from tests.integration.helpers import version_gt

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="installs the built package: needs root"),
]

PACKAGE = "snowbird"


# a secret in the shell that starts the installation (`make start`), as an operator's token
CANARY = "conveyor-canary-4f1c9e07d2"


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    # the install check on, as shipped: the happy path of tests/integration/test_install_check
    os.environ["CONVEYOR_TEST_OPERATOR_TOKEN"] = CANARY
    try:
        with running_installation(
            "staging",
            PACKAGE,
            project={
                "install_check": "true",
                "smoke": '["/opt/venvs/snowbird/bin/snowbird", "--version"]',
            },
        ) as settings:
            yield settings
    finally:
        del os.environ["CONVEYOR_TEST_OPERATOR_TOKEN"]


@pytest.fixture(scope="module")
def checkout(installation):
    return demo.ensure_demo_repo(installation, installation.projects[0])


def changes_count(settings) -> int:
    return len(api.api(settings, "changes")["changes"])


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def staging_index(settings) -> str:
    return http_get(f"{settings.repository.url}dists/snowbird-staging/main/binary-amd64/Packages")


def test_forged_and_unsigned_pushes_are_refused_and_build_nothing(installation, checkout):
    project = installation.projects[0]
    head = github.git(checkout, "rev-parse", "HEAD")
    payload = github.push_payload(checkout, project, github.ZERO, head)

    status, body = github.deliver(installation, "push", payload, secret="not-the-secret")
    assert status == 400
    assert "X-Hub-Signature-256 does not match the payload" in body

    status, body = github.deliver(
        installation, "push", payload, headers={"X-Hub-Signature-256": "", "X-Hub-Signature": ""}
    )
    assert status == 400
    assert "missing X-Hub-Signature-256" in body

    # a correctly signed push for a branch no project builds is accepted but records nothing
    other = dict(payload, ref="refs/heads/feature-x")
    status, body = github.deliver(installation, "push", other)
    assert status in (200, 202) and "no change" in body

    status, _ = github.deliver(
        installation, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1}
    )
    assert status in (200, 202)

    time.sleep(2)
    assert changes_count(installation) == 0
    assert api.last_build_number(installation, project.ci_builder) == 0


def test_push_is_built_tested_packaged_published_and_installable(installation, checkout):
    project = installation.projects[0]
    build = github.push_and_wait(installation, project, checkout)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)

    props = {name: value for name, (value, _source) in build["properties"].items()}
    version = props["package_version"]
    revision = build["revision"]
    # +ci<date>.<time>.<build>.g<sha> (conveyor/debformats.py ci_version), UTC, when pushed
    assert re.fullmatch(
        rf"1\.4\.0\+ci20\d{{6}}\.\d{{6}}\.{build['number']}\.g{revision[:7]}", version
    ), version
    assert props["coverage_percent"] >= 80
    assert props["tests_passed"] > 0 and props["tests_failed"] == 0

    # every test's result is in Buildbot's test result sets
    sets = api.api(installation, f"builds/{build['buildid']}/test_result_sets")
    (result_set,) = sets["test_result_sets"]
    assert result_set["tests_passed"] == props["tests_passed"]
    assert result_set["tests_failed"] == 0
    results = api.api(installation, f"test_result_sets/{result_set['test_result_setid']}/results")
    assert len(results["test_results"]) == props["tests_passed"]

    # the coverage report and the package are linked from the build, served by the master
    # behind log-in: anonymous gets 401, a logged-in user the file
    steps = api.api(installation, f"builds/{build['buildid']}/steps")["steps"]
    # the install check ran in the package build, before the publish, and passed
    # (tests/integration/test_install_check)
    (package,) = [
        b
        for b in triggered_builds(api.reader(installation), build["buildid"])
        if b["builderid"] != api.builder_id(installation, "publish")
    ]
    package_steps = api.api(installation, f"builds/{package['buildid']}/steps")["steps"]
    assert [s["results"] for s in package_steps if s["name"] == "install-check"] == [0], (
        package_steps
    )
    urls = [u["url"] for step in steps for u in step["urls"]]
    report = next(u for u in urls if u.endswith("coverage/index.html"))
    deb = next(u for u in urls if u.endswith(f"{PACKAGE}_{version}_amd64.deb"))
    for url in (report, deb, installation.artifacts_url):
        assert url.startswith(installation.artifacts_url)
        with pytest.raises(urllib.error.HTTPError) as refused:
            http_get(url)
        assert refused.value.code == 401, url
    developer = api.Master(installation.web_url)
    user, password = next(
        line.split(":")[:2]
        for line in installation.read_secret(installation.auth.users_secret).splitlines()
        if line.startswith("developer:")
    )
    developer.login(user, password)
    assert "Coverage report" in developer.request(report.removeprefix(installation.web_url))
    with developer.opener.open(deb, timeout=30) as response:
        assert response.read(4) == b"!<ar"  # a Debian package (an ar archive)
    # the repository's own web server serves the apt repository only
    with pytest.raises(urllib.error.HTTPError) as gone:
        http_get(installation.repository.url + "artifacts/")
    assert gone.value.code == 404

    # the version is in staging's index, served over HTTP, in a signed distribution
    assert f"Version: {version}\n" in staging_index(installation)
    in_release = http_get(f"{installation.repository.url}dists/snowbird-staging/InRelease")
    assert in_release.startswith("-----BEGIN PGP SIGNED MESSAGE-----")

    # a machine that trusts only the repository's key installs it with apt-get
    apt = AptClient(
        installation.state_dir / "apt-client", installation.repository.url, "snowbird-staging"
    )
    apt.update()
    assert apt.candidate(PACKAGE) == version
    apt.install(PACKAGE, version)
    try:
        assert installed_version(PACKAGE) == version
        # the postinst ran: system user, built assets
        assert subprocess.run(["getent", "passwd", "snowbird"]).returncode == 0
        manifest = json.loads(open("/var/lib/snowbird/static/manifest.json").read())
        assert "app.css" in manifest
        # the package says where it came from
        fields = subprocess.run(
            ["dpkg-query", "-W", "-f=${Conveyor-Commit} ${Conveyor-Build}", PACKAGE],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert fields == [revision, build["url"]]
    finally:
        purge(PACKAGE)
    assert installed_version(PACKAGE) is None


def test_second_push_yields_a_higher_version_and_history_keeps_both(installation, checkout):
    project = installation.projects[0]
    first = api.last_build_number(installation, project.ci_builder)
    if first == 0:
        first_build = github.push_and_wait(installation, project, checkout)
        assert result_name(first_build["results"]) == "SUCCESS"
    first_version = _version_of(
        installation, project, api.last_build_number(installation, project.ci_builder)
    )

    before = github.git(checkout, "rev-parse", "HEAD")
    (checkout / "NOTES.md").write_text("A second push.\n")
    github.git(checkout, "add", "NOTES.md")
    github.git(checkout, "commit", "-qm", "Add release notes")
    github.git(checkout, "push", "-q", "origin", "HEAD:refs/heads/main")
    build = github.push_and_wait(installation, project, checkout, before=before)
    assert result_name(build["results"]) == "SUCCESS", api.describe(build)
    second_version = build["properties"]["package_version"][0]
    assert version_gt(second_version, first_version)

    index = staging_index(installation)
    assert f"Version: {first_version}\n" in index
    assert f"Version: {second_version}\n" in index

    # history, served beside the repository: one state per publication, each an immutable
    # snapshot holding what staging served then
    history = [
        json.loads(line)
        for line in http_get(
            f"{installation.repository.url}history/snowbird-staging.jsonl"
        ).splitlines()
    ]
    assert [e["action"] for e in history][0] == "create"
    publications = [e for e in history if e["action"] == "publish"]
    assert [e["version"] for e in publications][-2:] == [first_version, second_version]
    assert all(e["build"].startswith(installation.web_url) for e in publications)
    assert "Ada Sprintly" in publications[-1]["who"]
    previous, latest = publications[-2]["snapshot"], publications[-1]["snapshot"]
    # only states are kept: the scratch snapshots of each publication are gone
    snapshots = setup.aptly(installation, "snapshot", "list", "-raw").stdout.split()
    assert not [s for s in snapshots if "+new@" in s]
    for snapshot, version, present in (
        (previous, second_version, False),
        (latest, second_version, True),
        (latest, first_version, True),
    ):
        found = (
            setup.aptly(
                installation,
                "snapshot",
                "search",
                snapshot,
                f"{PACKAGE} (= {version})",
                check=False,
            ).returncode
            == 0
        )
        assert found == present, (snapshot, version)


def _version_of(settings, project, number: int) -> str:
    bid = api.builder_id(settings, project.ci_builder)
    build = api.api(settings, f"builders/{bid}/builds/{number}?property=package_version")
    return build["builds"][0]["properties"]["package_version"][0]


def test_the_operators_environment_is_in_no_log_and_no_api_document(installation, checkout):
    # after the builds above (CI, package, publish): every log of every step, and what the API
    # tells of builds, workers and changes
    project = installation.projects[0]
    if api.last_build_number(installation, project.ci_builder) == 0:
        github.push_and_wait(installation, project, checkout)
    builds = api.api(installation, "builds?property=*")["builds"]
    assert {"snowbird-ci", "snowbird-package", "publish"} <= {
        api.api(installation, f"builders/{b['builderid']}")["builders"][0]["name"] for b in builds
    }
    documents = [
        json.dumps(builds),
        json.dumps(api.api(installation, "workers")),
        json.dumps(api.api(installation, "changes")),
    ]
    logs = 0
    for build in builds:
        for step in api.api(installation, f"builds/{build['buildid']}/steps")["steps"]:
            for log in api.api(installation, f"steps/{step['stepid']}/logs")["logs"]:
                chunks = api.api(installation, f"logs/{log['logid']}/contents")["logchunks"]
                documents.append("".join(chunk["content"] for chunk in chunks))
                logs += 1
    assert logs > 20
    leaked = [
        text[max(0, text.find(CANARY) - 300) : text.find(CANARY) + 50]
        for text in documents
        if CANARY in text
    ]
    assert not leaked, leaked[0]
    # nor the variable's name: the workers started with a clean environment
    assert not [text for text in documents if "CONVEYOR_TEST_OPERATOR_TOKEN" in text]
