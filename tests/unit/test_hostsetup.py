"""conveyor/hostsetup.py and `bin/conveyor host-setup`: a host follows one distribution of the
repository both ways (the pin above 1000), from files Conveyor serves."""

from __future__ import annotations

import subprocess

from debian import deb822

from conveyor import hostsetup
from ops import cli
from ops import setup
from tests.integration.helpers import write_pipeline


def test_the_source_is_deb822_signed_by_the_conveyor_keyring_only():
    text = hostsetup.sources("http://repo.example/", "snowbird", "main")
    (fields,) = list(deb822.Deb822.iter_paragraphs(text))
    assert dict(fields) == {
        "Types": "deb",
        "URIs": "http://repo.example/",
        "Suites": "snowbird",
        "Components": "main",
        "Signed-By": "/etc/apt/keyrings/conveyor.gpg",
    }


def test_the_pin_holds_this_repositorys_distribution_above_1000():
    (fields,) = list(deb822.Deb822.iter_paragraphs(hostsetup.preferences("Conveyor", "snowbird")))
    assert fields["Package"] == "*"
    assert fields["Pin"] == "release o=Conveyor,n=snowbird"
    assert int(fields["Pin-Priority"]) > 1000  # apt_preferences(5): a downgrade when it goes back


def test_the_files_are_written_for_every_distribution(tmp_path):
    settings = write_pipeline(tmp_path)
    settings.repository.www_root.mkdir(parents=True)
    setup.write_host_files(settings)
    for dist in settings.distributions:
        served = settings.repository.www_root / "hosts"
        assert (served / f"{dist}.sources").read_text() == hostsetup.sources(
            settings.repository.url, dist, settings.repository.component
        )
        assert (served / f"{dist}.pref").read_text() == hostsetup.preferences(
            settings.repository.origin, dist
        )


def test_host_setup_prints_what_a_host_runs(tmp_path, capsys):
    settings = write_pipeline(tmp_path)
    assert cli.main(["--settings", str(settings.file), "host-setup", "snowbird"]) == cli.OK
    lines = capsys.readouterr().out.splitlines()
    url = settings.repository.url
    assert f"sudo curl -fsSo /etc/apt/keyrings/conveyor.gpg {url}conveyor.gpg" in lines
    assert (
        f"sudo curl -fsSo /etc/apt/preferences.d/conveyor-snowbird.pref {url}hosts/snowbird.pref"
    ) in lines
    assert "sudo apt-get update && sudo apt-get install -y snowbird" in lines
    assert lines[-1] == "sudo apt-get update && sudo apt-get upgrade -y --allow-downgrades"


def test_host_setup_of_an_unknown_distribution_is_refused(tmp_path, capsys):
    settings = write_pipeline(tmp_path)
    assert cli.main(["--settings", str(settings.file), "host-setup", "nowhere"]) == cli.REFUSED
    assert "'nowhere' is not a distribution of this repository" in capsys.readouterr().err


def test_with_target_releases_each_release_gets_its_own_source(tmp_path):
    settings = write_pipeline(tmp_path, targets='["bookworm", "trixie"]')
    settings.repository.www_root.mkdir(parents=True)
    setup.write_host_files(settings)
    served = settings.repository.www_root / "hosts"
    for release in ("bookworm", "trixie"):
        text = (served / f"snowbird-staging.{release}.sources").read_text()
        (fields,) = list(deb822.Deb822.iter_paragraphs(text))
        assert (fields["Suites"], fields["Components"]) == ("snowbird-staging", release)
    assert not (served / "snowbird-staging.sources").exists()  # no source for no release
    assert (served / "snowbird-staging.pref").read_text() == hostsetup.preferences(
        settings.repository.origin, "snowbird-staging"
    )


def test_with_target_releases_a_host_fetches_the_source_of_its_own_release(tmp_path, capsys):
    settings = write_pipeline(tmp_path, targets='["bookworm", "trixie"]')
    assert cli.main(["--settings", str(settings.file), "host-setup", "snowbird"]) == cli.OK
    lines = capsys.readouterr().out.splitlines()
    url = settings.repository.url
    line = (
        "sudo curl -fsSo /etc/apt/sources.list.d/conveyor-snowbird.sources "
        f"{url}hosts/snowbird.{hostsetup.HOST_RELEASE}.sources"
    )
    assert line in lines
    # the shell makes it the host's release: the path of a file that write_host_files serves
    os_release = tmp_path / "os-release"
    os_release.write_text("VERSION_CODENAME=trixie\n")
    expanded = subprocess.run(
        ["sh", "-c", f"echo {line.split(' ', 4)[-1]}".replace("/etc/os-release", str(os_release))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert expanded == f"{url}hosts/snowbird.trixie.sources"
