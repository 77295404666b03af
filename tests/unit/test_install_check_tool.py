"""Unit tests of worker/bin/conveyor-install-check's pure parts: the machine's archives, what
failed in piuparts' log, and the scripts piuparts runs in the root (no namespace, no piuparts)."""

import importlib.machinery
import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "worker" / "bin" / "conveyor-install-check"


def load_tool():
    loader = importlib.machinery.SourceFileLoader("conveyor_install_check", str(TOOL))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


tool = load_tool()


def test_archives_of_the_worker_release_from_one_line_and_deb822_files(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# a comment\n"
        "deb [arch=amd64] http://mirror.example/debian bookworm-updates main contrib\n"
        "deb-src http://mirror.example/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\n"
        "Enabled: no\n"
    )
    (tmp_path / "sources.list.d" / "other.list").write_text(
        "deb https://packages.example/apt cloud-sdk-bookworm main\n"
    )
    assert tool.archive_lines("bookworm", tmp_path) == [
        # the release itself first (piuparts' mirror), then its -updates, -security …
        ("http://deb.debian.org/debian", "bookworm", ["main"]),
        ("http://mirror.example/debian", "bookworm-updates", ["main", "contrib"]),
        ("http://deb.debian.org/debian", "bookworm-updates", ["main"]),
    ]


def test_a_target_release_is_checked_from_the_same_mirrors():
    machine = [
        ("http://deb.debian.org/debian", "bookworm", ["main"]),
        ("http://deb.debian.org/debian", "bookworm-updates", ["main"]),
        ("http://deb.debian.org/debian-security", "bookworm-security", ["main"]),
    ]
    assert tool.for_release(machine, "bookworm", "trixie") == [
        ("http://deb.debian.org/debian", "trixie", ["main"]),
        ("http://deb.debian.org/debian", "trixie-updates", ["main"]),
        ("http://deb.debian.org/debian-security", "trixie-security", ["main"]),
    ]


def read(text):
    finding = tool.Finding()
    for line in text.splitlines(keepends=True):
        finding.read(line)
    return finding


def test_a_failing_postinst_is_named_with_its_output():
    finding = read(
        "0m9.0s INFO: PASS: nothing yet\n"
        "0m9.1s ERROR: WARN: Broken symlinks:\n"
        "  /usr/share/doc/x -> y\n"
        "0m9.2s ERROR: Command failed (status=100): ['chroot', '/r', 'apt-get', 'install']\n"
        "  (Reading database ... 5%\n"
        "  Setting up app (1.0) ...\n"
        "  app: cannot configure\n"
        "  dpkg: error processing package app (--configure):\n"
        "   installed app package post-installation script subprocess returned error exit "
        "status 1\n"
        "0m9.9s ERROR: piuparts run ends.\n"
    )
    assert finding.reason() == "the postinst of app failed (exit status 1)"
    assert finding.excerpt[0].endswith("'apt-get', 'install']")
    assert "  app: cannot configure" in finding.excerpt
    assert finding.passed == []


def test_a_failing_smoke_command_and_files_left_after_the_purge():
    smoke = read(
        "  smoke: /opt/app/bin/app --version\n"
        "  smoke command failed (exit status 2): /opt/app/bin/app --version\n"
    )
    assert smoke.reason() == (
        "the smoke command failed (exit status 2): /opt/app/bin/app --version"
    )
    purge = read(
        "0m12.2s ERROR: FAIL: After purging files have disappeared:\n  /opt/\t owned by: app\n\n"
    )
    assert purge.reason() == "After purging files have disappeared: /opt/ owned by: app"


def test_what_passed_is_what_piuparts_said_passed():
    finding = read(
        "0m8.0s INFO: PASS: Installation and purging test.\n"
        "  smoke: /opt/app/bin/app --version\n"
        "0m9.0s INFO: Can't test upgrade: packages not known by apt-get.\n"
    )
    assert finding.passed == ["install, purge"]
    assert finding.smoked
    assert finding.no_upgrade == "Can't test upgrade: packages not known by apt-get."


def test_scripts_install_the_key_pin_the_next_distribution_and_quote_the_smoke(tmp_path):
    pins = "Package: app\nPin: release n=app\nPin-Priority: 990\n\n"
    tool.write_scripts(tmp_path / "s", b"KEY", pins, ["/opt/app/bin/app", "it's"], ["app"])
    unpack = (tmp_path / "s" / "post_chroot_unpack_conveyor").read_text()
    assert "Package: app\nPin: release n=app\nPin-Priority: 990" in unpack
    assert tool.KEYRING in unpack
    smoke = tmp_path / "s" / "post_install_conveyor_smoke"
    assert smoke.stat().st_mode & 0o111
    # the smoke command runs with its arguments as given (no shell splitting of them)
    out = subprocess.run(
        ["sh", "-c", smoke.read_text().replace("/opt/app/bin/app", "printf '<%s>'")],
        capture_output=True,
        text=True,
    )
    assert "<it's>" in out.stdout
    assert (
        (tmp_path / "s" / "post_setup_conveyor_policy")
        .read_text()
        .endswith("apt-cache policy app\n")
    )


def test_a_release_removes_only_its_own_older_trees_never_another_releases(tmp_path):
    # a project with targets checks bookworm and trixie side by side: each release's check
    # reads its own tree as the overlay's lower layer, which the other must never remove
    import os
    import time

    (tmp_path / "root").mkdir()
    base = tmp_path / "base-bookworm-aaaaaaaaaaaa.tar.gz"
    subprocess.run(["tar", "-C", str(tmp_path / "root"), "-czf", str(base), "."], check=True)
    two_hours_ago = time.time() - 7200
    trees = {}
    for name in ("base-trixie-bbbbbbbbbbbb-1.root", "base-bookworm-cccccccccccc-1.root"):
        trees[name] = tmp_path / name
        trees[name].mkdir()
        os.utime(trees[name], (two_hours_ago, two_hours_ago))
    tree = tool.ensure_tree(tmp_path, base, [])
    assert tree.is_dir()
    assert trees["base-trixie-bbbbbbbbbbbb-1.root"].is_dir()  # trixie's, in use by its checks
    assert not trees["base-bookworm-cccccccccccc-1.root"].exists()  # an older bookworm base's
