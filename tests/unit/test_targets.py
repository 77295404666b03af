"""Target releases (conveyor/targets.py): the per-release versions, what each component of a
distribution publishes, and the settings that name them."""

import os
import subprocess
import time

import pytest

from conveyor import settings
from conveyor import targets
from tests.unit.test_settings import MINIMAL
from tests.unit.test_settings import write

BASE = "1.4.0+ci20261204.140521.7.g4d4a7f9"


def dpkg_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0


def test_each_release_gets_its_own_version_and_a_fleet_upgrade_upgrades_the_package():
    bookworm, trixie = targets.version(BASE, "bookworm"), targets.version(BASE, "trixie")
    assert (bookworm, trixie) == (f"{BASE}+deb12", f"{BASE}+deb13")
    assert dpkg_lt(BASE, bookworm) and dpkg_lt(bookworm, trixie)  # dpkg's order, not ours
    # the next commit's package is newer on every release than the last one's
    later = "1.4.0+ci20261204.150000.8.g5e5b8a0"
    assert dpkg_lt(trixie, targets.version(later, "bookworm"))


def test_a_version_splits_into_its_ci_version_and_its_target():
    assert targets.base_of(f"{BASE}+deb13", ("bookworm", "trixie")) == (BASE, "trixie")
    assert targets.base_of(BASE, ("bookworm", "trixie")) == (BASE, None)
    assert targets.base_of(f"{BASE}+deb13", ()) == (f"{BASE}+deb13", None)


def test_an_unknown_release_is_named_in_the_error():
    with pytest.raises(ValueError, match="'jammy' is not a Debian release"):
        targets.version(BASE, "jammy")


def test_promotion_selects_every_targets_package_of_the_version():
    assert targets.select_query("snowbird", BASE, ()) == f"snowbird (= {BASE})"
    assert targets.select_query("snowbird", BASE, ("bookworm", "trixie")) == (
        f"snowbird (= {BASE}+deb12) | snowbird (= {BASE}+deb13)"
    )


def test_the_published_state_is_read_back_from_its_components():
    state = "snowbird-staging@20261204T140521Z@publish-3"
    plain = [{"Component": "main", "Name": state}]
    assert targets.state_of(plain) == state
    both = [{"Component": t, "Name": targets.derived(state, t)} for t in ("bookworm", "trixie")]
    assert targets.state_of(both) == state
    torn = [both[0], {"Component": "trixie", "Name": targets.derived("other@1", "trixie")}]
    with pytest.raises(ValueError, match="different states"):
        targets.state_of(torn)
    with pytest.raises(ValueError, match="publishes no snapshot"):
        targets.state_of([])


def test_settings_read_targets_and_the_default_is_none(tmp_path):
    assert settings.load(write(tmp_path, MINIMAL)).projects[0].targets == ()
    s = settings.load(write(tmp_path, MINIMAL + 'targets = ["bookworm", "trixie"]\n'))
    assert s.projects[0].targets == ("bookworm", "trixie")
    assert s.targets_of("app-dev") == ("bookworm", "trixie")
    assert s.targets_of("elsewhere") == ()


def test_settings_refuse_an_unknown_release_and_a_release_named_twice(tmp_path):
    with pytest.raises(settings.SettingsError, match=r"\[projects.app.targets\] 'jammy' is not"):
        settings.load(write(tmp_path, MINIMAL + 'targets = ["bookworm", "jammy"]\n'))
    with pytest.raises(settings.SettingsError, match="names a release twice"):
        settings.load(write(tmp_path, MINIMAL + 'targets = ["trixie", "trixie"]\n'))


def test_projects_sharing_a_distribution_must_build_for_the_same_releases(tmp_path):
    other = """
[projects.other]
github = "acme/other"
clone_url = "x.git"
packages = ["other"]
path = ["app-dev", "app"]
targets = ["trixie"]
"""
    with pytest.raises(settings.SettingsError, match=r"on 'app-dev', which both publish into"):
        settings.load(write(tmp_path, MINIMAL + other))


def test_the_workers_bases_are_every_target_and_the_machines_own_for_a_project_without(tmp_path):
    from ops import chroots

    other = """
[projects.other]
github = "acme/other"
clone_url = "x.git"
packages = ["other"]
path = ["other-dev", "other"]
"""
    both = settings.load(write(tmp_path, MINIMAL + 'targets = ["trixie", "bookworm"]\n'))
    assert chroots.releases(both) == ["trixie", "bookworm"]
    mixed = settings.load(write(tmp_path, MINIMAL + 'targets = ["trixie"]\n' + other))
    assert chroots.releases(mixed) == ["trixie", chroots.machine_release()]


def test_a_distributions_index_lists_the_versions_every_target_has():
    def stanza(version, commit="c1"):
        return {"Package": "snowbird", "Version": version, "Conveyor-Commit": commit}

    old, new = "1.4.0+ci1.g1111111", BASE
    index = targets.merged(
        {
            "bookworm": [stanza(f"{old}+deb12"), stanza(f"{new}+deb12", "c2")],
            # trixie lacks the new commit, and lists a package of another release (ignored)
            "trixie": [stanza(f"{old}+deb13"), stanza(f"{new}+deb12", "c2")],
        }
    )
    assert index == [stanza(old)]
    both = targets.merged(
        {"bookworm": [stanza(f"{new}+deb12")], "trixie": [stanza(f"{new}+deb13")]}
    )
    assert [s["Version"] for s in both] == [new]


def test_retention_keeps_what_a_state_in_use_publishes_per_target():
    from conveyor import retention

    kept, old = "d@2026-12-05@publish-2", "d@2026-12-04@publish-1"
    existing = [old, targets.derived(old, "bookworm"), kept, targets.derived(kept, "trixie")]
    assert retention.snapshots_to_drop(existing, {kept}) == [old, targets.derived(old, "bookworm")]


def test_a_distribution_published_before_its_targets_changed_is_named_not_republished():
    plain = [{"Component": "main", "Name": "s@1"}]
    assert targets.layout_problem("app", plain, (), "main") is None
    both = [{"Component": r, "Name": f"s@1~{r}"} for r in ("trixie", "bookworm")]
    assert targets.layout_problem("app", both, ("bookworm", "trixie"), "main") is None
    problem = targets.layout_problem("app", plain, ("bookworm", "trixie"), "main")
    assert problem.startswith("app is published with the component(s) main, but its project's")
    assert "aptly publish drop app" in problem


def test_a_releases_system_is_unpacked_once_per_base_and_a_new_base_replaces_it(tmp_path):
    """The tree conveyor-sandbox --release shows the tests: made beside the base, with the
    mount points the sandbox binds the host's network files onto, made again for a new base
    while the old one stays for the sandboxes still running on it."""
    from ops import chroots

    made = tmp_path / "made"
    (made / "etc").mkdir(parents=True)
    (made / "etc" / "os-release").write_text("VERSION_CODENAME=trixie\n")
    (made / "dev").mkdir()
    (made / "dev" / "null").write_text("")  # a device node in a real base: never unpacked
    base = tmp_path / "trixie-amd64.tar.zst"
    subprocess.run(["tar", "--zstd", "-cf", str(base), "-C", str(made), "."], check=True)
    tree = chroots.ensure_tree(base)
    assert tree == tmp_path / "trixie-amd64.root"
    assert (tree / "etc" / "os-release").read_text() == "VERSION_CODENAME=trixie\n"
    assert not (tree / "dev" / "null").exists()
    assert "localhost" in (tree / "etc" / "hosts").read_text()  # the sandbox's loopback
    for point in ("etc/pip.conf", "etc/resolv.conf", "etc/ssl/certs", "etc/xdg/pip"):
        assert (tree / point).exists(), point
    (tree / "etc" / "marker").write_text("")
    assert chroots.ensure_tree(base) == tree and (tree / "etc" / "marker").exists()  # kept
    (made / "etc" / "os-release").write_text("VERSION_CODENAME=trixie\nrefreshed\n")
    subprocess.run(["tar", "--zstd", "-cf", str(base), "-C", str(made), "."], check=True)
    os.utime(base, (time.time() + 5, time.time() + 5))
    chroots.ensure_tree(base)
    assert (tree / "etc" / "os-release").read_text().endswith("refreshed\n")
    (old,) = tmp_path.glob("old-trixie-amd64.root-*")
    assert (old / "etc" / "marker").exists()  # a sandbox running on it keeps it
