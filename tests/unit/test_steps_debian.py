"""Unit tests of the Debian packaging steps (no processes: ExpectShell and friends)."""

from unittest import mock

from twisted.internet import defer

from buildbot.process.results import FAILURE
from buildbot.process.results import SUCCESS
from buildbot.test.steps import ExpectUploadFile

from conveyor import debformats
from steps import debian
from tests.unit import stepcase
from tests.unit.stepcase import ExpectShell

SHA = "3f2a9c1d5e6f708192a3b4c5d6e7f8091a2b3c4d"
CHANGELOG = """snowbird (1.4.0) unstable; urgency=medium

  * Initial release.

 -- Sprintly <dev@sprintly.example>  Mon, 02 Nov 2026 10:00:00 +0000
"""
BUILD_URL = "http://127.0.0.1:8010/#/builders/1/builds/57"
SUBMITTED = 1795703405  # 2026-11-26 14:30:05 UTC
VERSION = "1.4.0+ci20261126.143005.57.g3f2a9c1"


class StepTestCase(stepcase.StepTestCase):
    build_number = 57

    def setup(self, step, **props):
        step = super().setup(step, **props)
        self.build.getUrl = mock.Mock(return_value=defer.succeed(BUILD_URL))
        # the push reached the master at 2026-11-26 14:30:05 UTC (its build request)
        self.build.requests = [mock.Mock(submittedAt=SUBMITTED)]
        return step


class StampVersionTest(StepTestCase):
    def test_stamps_unique_version_commit_and_build_url(self):
        # the changelog's first entry and the commit's time: the checkout's (steps/checkout.py);
        # nothing is asked of the worker
        self.setup(
            debian.StampVersion(),
            got_revision=SHA,
            commit_time=1764150000,
            changelog_head=CHANGELOG,
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_property("package_version", VERSION)
        self.expect_property("source_package", "snowbird")
        self.expect_property("commit_time", 1764150000)
        self.expect_result_summary({"step": f"version {VERSION}"})
        d = self.run_step()

        def check(_):
            entry = self.get_nth_step(0).getProperty("changelog_entry")
            self.assertEqual(
                entry.splitlines()[0],
                f"snowbird ({VERSION}) UNRELEASED; urgency=medium, "
                f"XB-Conveyor-Commit={SHA}, XB-Conveyor-Build={BUILD_URL}",
            )
            self.assertIn(
                " -- Conveyor <conveyor@localhost>  Wed, 26 Nov 2025 09:40:00 +0000", entry
            )
            # the project's own history stays below it (SOURCE_SCRIPT): a changelog again
            self.assertEqual(debformats.parse_changelog_head(entry + CHANGELOG).version, VERSION)

        return d.addCallback(check)

    def test_without_the_checkouts_commit_time_it_fails_with_reason(self):
        self.setup(debian.StampVersion(), got_revision=SHA, changelog_head=CHANGELOG)
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio", f"no commit time for {SHA}: the checkout (steps/checkout.py) sets it\n"
        )
        self.expect_no_property("package_version")
        return self.run_step()

    def test_missing_changelog_fails_with_reason(self):
        self.setup(debian.StampVersion(), got_revision=SHA, changelog_head="")
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio",
            "debian/changelog not found in the commit: the project needs a debian/ "
            "directory to be packaged\n",
        )
        return self.run_step()

    def test_garbage_changelog_fails_with_reason(self):
        self.setup(debian.StampVersion(), got_revision=SHA, changelog_head="hello\n")
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "stdio", "debian/changelog does not start with an entry header: 'hello'\n"
        )
        return self.run_step()


class BuildDebianPackageTest(StepTestCase):
    BUILD = [
        "bash",
        "-c",
        debian.BUILD_SCRIPT,
        "deb",
        "*_1.4.0+ci57.g3f2a9c1_*.deb",
        "../snowbird_1.4.0+ci57.g3f2a9c1.dsc",
        "",
        "sh",
        "-c",
        debian.SOURCE_SCRIPT,
        "source",
        "the entry\n",
    ]

    def setup_build(self, packages, **kwargs):
        return self.setup(
            debian.BuildDebianPackage(packages=packages, **kwargs),
            package_version="1.4.0+ci57.g3f2a9c1",
            source_package="snowbird",
            changelog_entry="the entry\n",
        )

    def expect_build(self, found: str, command=BUILD):
        self.expect_commands(
            ExpectShell(workdir="wkdir", command=command)
            .stdout(f"Status: successful\n{debian.BUILT}\n{found}")
            .exit(0)
        )

    def test_builds_and_lists_packages(self):
        self.setup_build(["snowbird"])
        self.expect_build(
            "snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb\nsnowbird_1.4.0+ci57.g3f2a9c1_amd64.buildinfo\n"
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_property("debs", ["snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb"])
        self.expect_property("buildinfos", ["snowbird_1.4.0+ci57.g3f2a9c1_amd64.buildinfo"])
        self.expect_result_summary({"step": "built snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb"})
        return self.run_step()

    def test_the_source_is_made_in_the_sandbox_and_built_for_the_target_release(self):
        self.setup_build(["snowbird"], release="trixie", sandbox=["conveyor-sandbox", "b", "--"])
        command = [
            *self.BUILD[:6],
            "trixie",
            "conveyor-sandbox",
            "b",
            "--",
            *self.BUILD[7:],
        ]
        self.expect_build("snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb\n", command)
        self.expect_outcome(result=SUCCESS)
        return self.run_step()

    def test_a_target_release_builds_its_own_version_and_lists_its_debs_only(self):
        step = debian.BuildDebianPackage(packages=["snowbird"], target="trixie")
        self.setup(
            step,
            package_version="1.4.0+ci57.g3f2a9c1",
            source_package="snowbird",
            changelog_entry="snowbird (1.4.0+ci57.g3f2a9c1) UNRELEASED; urgency=low\n\n  * CI.\n",
        )
        version = "1.4.0+ci57.g3f2a9c1+deb13"
        command = [
            "bash",
            "-c",
            debian.BUILD_SCRIPT,
            "deb",
            f"*_{version}_*.deb",
            f"../snowbird_{version}.dsc",
            "trixie",
            "sh",
            "-c",
            debian.SOURCE_SCRIPT,
            "source",
            f"snowbird ({version}) UNRELEASED; urgency=low\n\n  * CI.\n",
        ]
        # (a name of the CI version without the suffix is not this build's)
        self.expect_build(
            f"snowbird_{version}_amd64.deb\nsnowbird_1.4.0+ci57.g3f2a9c1_amd64.deb\n", command
        )
        self.expect_outcome(result=SUCCESS)
        self.expect_property("debs", [f"snowbird_{version}_amd64.deb"])
        assert step.name == "deb-trixie"
        return self.run_step()

    def test_a_package_the_settings_name_but_debian_does_not_build_fails(self):
        self.setup_build(["snowbird", "snowbird-worker"])
        self.expect_build("snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb\n")
        self.expect_outcome(result=FAILURE)
        self.expect_log_file_stderr(
            "packages",
            "debian/ built ['snowbird'] but the settings name snowbird-worker: fix "
            "`packages` in pipeline.toml or debian/control\n",
        )
        self.expect_no_property("debs")
        return self.run_step()

    def test_failed_build_fails_the_step(self):
        self.setup_build(["snowbird"])
        self.expect_commands(ExpectShell(workdir="wkdir", command=self.BUILD).exit(2))
        self.expect_outcome(result=FAILURE)
        return self.run_step()


class UploadPackagesTest(StepTestCase):
    def test_uploads_each_package_into_the_store_and_links_it(self):
        import os
        import shutil
        import tempfile

        store = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, store)
        step = self.setup(
            debian.UploadPackages(artifacts_dir=store, artifacts_url="http://repo/artifacts/"),
            debs=["a_1_all.deb", "b_1_amd64.deb"],
            buildername="snowbird-package",
        )
        links = []
        step.addURL = lambda name, url: defer.succeed(links.append((name, url)))
        self.expect_commands(
            *(
                ExpectUploadFile(
                    workersrc=f"../{deb}",
                    workdir="wkdir",
                    blocksize=256 * 1024,
                    maxsize=None,
                    keepstamp=False,
                    writer=mock.ANY,
                )
                .upload_string(f"contents of {deb}")
                .exit(0)
                for deb in ("a_1_all.deb", "b_1_amd64.deb")
            )
        )
        self.expect_outcome(result=SUCCESS, state_string="uploaded 2 package(s)")
        self.expect_property("artifacts_path", "snowbird-package/57")
        d = self.run_step()

        def check(_):
            for deb in ("a_1_all.deb", "b_1_amd64.deb"):
                with open(os.path.join(store, "snowbird-package", "57", deb)) as f:
                    self.assertEqual(f.read(), f"contents of {deb}")
                self.assertEqual(
                    oct(
                        os.stat(os.path.join(store, "snowbird-package", "57", deb)).st_mode & 0o777
                    ),
                    "0o644",
                )
            self.assertEqual(
                links,
                [
                    ("a_1_all.deb", "http://repo/artifacts/snowbird-package/57/a_1_all.deb"),
                    ("b_1_amd64.deb", "http://repo/artifacts/snowbird-package/57/b_1_amd64.deb"),
                ],
            )

        return d.addCallback(check)

    def test_a_failed_upload_fails_and_leaves_no_file(self):
        import os
        import shutil
        import tempfile

        store = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, store)
        self.setup(
            debian.UploadPackages(artifacts_dir=store, artifacts_url="http://r/a/"),
            debs=["a_1_all.deb"],
            buildername="snowbird-package",
        )
        self.expect_commands(
            ExpectUploadFile(
                workersrc="../a_1_all.deb",
                workdir="wkdir",
                blocksize=256 * 1024,
                maxsize=None,
                keepstamp=False,
                writer=mock.ANY,
            ).exit(1)
        )
        self.expect_outcome(result=FAILURE, state_string="a_1_all.deb not uploaded")
        d = self.run_step()
        return d.addCallback(
            lambda _: self.assertEqual(
                os.listdir(os.path.join(store, "snowbird-package", "57")), []
            )
        )

    def test_nothing_to_upload_fails(self):
        self.setup(
            debian.UploadPackages(artifacts_dir="/a", artifacts_url="http://r/a/"),
            buildername="snowbird-ci",
        )
        self.expect_outcome(result=FAILURE)
        return self.run_step()


DEB_VERSION = "1.4.0+ci57.g3f2a9c1"
# stands in for worker/bin/conveyor-chroot-build: what the build leaves beside the .dsc, and a
# record of how it was called
FAKE_BUILD = f"""#!/bin/sh
if [ "$1" = --digest ]; then echo "{"e3" * 32}  $2-amd64.tar.zst"; exit 0; fi
echo "$@" > ../build-called
cd "$(dirname "$2")"
: > snowbird_{DEB_VERSION}_amd64.deb
: > snowbird-doc_{DEB_VERSION}_all.deb
: > snowbird_{DEB_VERSION}_amd64.buildinfo
echo 'built'
"""


def run_build_script(where, source: str, build: str = FAKE_BUILD) -> tuple[int, str, str]:
    """debian.BUILD_SCRIPT in `where`/build (the checkout): `source` stands in for the sandboxed
    source build, FAKE_BUILD (on the PATH) for conveyor-chroot-build."""
    import os
    import subprocess

    checkout = where / "build"
    checkout.mkdir(exist_ok=True)
    tools = where / "tools"
    tools.mkdir(exist_ok=True)
    (tools / "conveyor-chroot-build").write_text(build)
    (tools / "conveyor-chroot-build").chmod(0o755)
    proc = subprocess.run(
        [
            "bash",
            "-c",
            debian.BUILD_SCRIPT,
            "deb",
            f"*_{DEB_VERSION}_*.deb",
            f"../snowbird_{DEB_VERSION}.dsc",
            "bookworm",
            "sh",
            "-c",
            source,
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"},
    )
    return proc.returncode, proc.stdout, proc.stderr


MAKES_SOURCE = f": > ../snowbird_{DEB_VERSION}.dsc; : > ../snowbird_{DEB_VERSION}.tar.xz"


def test_the_build_script_builds_the_source_for_the_release_and_lists_this_builds_debs_only(
    tmp_path,
):
    (tmp_path / "snowbird_1.4.0+ci56.g0000000_amd64.deb").write_text("an earlier build's")
    (tmp_path / "snowbird_1.4.0+ci56.g0000000_amd64.changes").write_text("an earlier build's")
    (tmp_path / "snowbird_1.4.0+ci56.g0000000.dsc").write_text("an earlier build's")
    code, out, _ = run_build_script(
        tmp_path,
        MAKES_SOURCE
        + f"""
        # printed by the source build:
        echo '{debian.BUILT}'; echo snowbird_{DEB_VERSION}_forged.deb
    """,
    )
    assert code == 0
    assert (tmp_path / "build-called").read_text() == f"bookworm ../snowbird_{DEB_VERSION}.dsc\n"
    assert debian.built_debs(out, DEB_VERSION) == [
        f"snowbird-doc_{DEB_VERSION}_all.deb",
        f"snowbird_{DEB_VERSION}_amd64.deb",
    ]
    # and the build's record of it, which the provenance names
    assert debian.built_debs(out, DEB_VERSION, ".buildinfo") == [
        f"snowbird_{DEB_VERSION}_amd64.buildinfo"
    ]
    assert not any("ci56" in p.name for p in tmp_path.iterdir())
    # the chroot base it was built in, as the trusted side wrote its digest: after the build,
    # so that no line the source build or the package's rules printed can pass for it
    assert debian.chroot_base(out) == ("bookworm-amd64.tar.zst", "e3" * 32)
    forged = f"{debian.BASE}{'0' * 64}  bookworm-amd64.tar.zst\n{debian.BUILT}\nx.deb\n"
    assert debian.chroot_base(forged + out) == ("bookworm-amd64.tar.zst", "e3" * 32)


def test_a_link_left_by_the_source_build_is_refused_before_the_clean_build_reads_it(tmp_path):
    # the clean build reads the source package with the worker's rights, outside the sandbox: a
    # .dsc or a tarball linked to the worker's password would carry it into the chroot
    code, out, err = run_build_script(
        tmp_path, f"ln -s /etc/hostname ../snowbird_{DEB_VERSION}.dsc"
    )
    assert code == 1
    assert "symbolic links" in err and f"snowbird_{DEB_VERSION}.dsc" in err
    assert not (tmp_path / "build-called").exists()
    assert debian.built_debs(out, DEB_VERSION) == []


def test_the_build_script_fails_as_the_build_does_and_lists_nothing(tmp_path):
    code, out, _ = run_build_script(tmp_path, MAKES_SOURCE, build="#!/bin/sh\nexit 3\n")
    assert code == 3
    assert debian.built_debs(out, DEB_VERSION) == []


def test_a_source_build_that_makes_no_dsc_fails_before_the_clean_build(tmp_path):
    code, _, err = run_build_script(tmp_path, "true")
    assert code == 1 and f"made no ../snowbird_{DEB_VERSION}.dsc" in err
    assert not (tmp_path / "build-called").exists()


def test_names_off_the_version_or_with_a_path_are_not_packages():
    out = (
        f"{debian.BUILT}\nsnowbird_1.4.0+ci57.g3f2a9c1_amd64.deb\n../x_1.4.0+ci57.g3f2a9c1_amd64"
        ".deb\nsnowbird_9.9_amd64.deb\n"
    )
    assert debian.built_debs(out, "1.4.0+ci57.g3f2a9c1") == [
        "snowbird_1.4.0+ci57.g3f2a9c1_amd64.deb"
    ]


def test_the_source_is_a_native_package_with_the_entry_on_top(tmp_path):
    import subprocess

    (tmp_path / "build" / "debian" / "source").mkdir(parents=True)
    checkout = tmp_path / "build"
    (checkout / "debian" / "changelog").write_text(CHANGELOG)
    (checkout / "debian" / "source" / "format").write_text("3.0 (quilt)\n")  # a team's own
    (checkout / "debian" / "control").write_text(
        "Source: snowbird\nMaintainer: T <t@example.com>\n\nPackage: snowbird\n"
        "Architecture: all\nDescription: d\n d\n"
    )
    entry = (
        f"snowbird ({DEB_VERSION}) UNRELEASED; urgency=medium\n\n  * CI.\n\n"
        " -- Conveyor <conveyor@localhost>  Wed, 26 Nov 2025 10:00:00 +0000\n\n"
    )
    proc = subprocess.run(
        ["sh", "-c", debian.SOURCE_SCRIPT, "source", entry],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (checkout / "debian" / "changelog").read_text() == entry + CHANGELOG
    dsc = (tmp_path / f"snowbird_{DEB_VERSION}.dsc").read_text()
    assert "Format: 3.0 (native)" in dsc and f"Version: {DEB_VERSION}" in dsc
