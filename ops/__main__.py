"""`python -m ops run|start|stop|push` — what the Makefile's targets call.

run    set up what is missing, start everything, deliver one push of the demo app to the
       change hook and wait for its build: result, URL and the apt sources line
start  set up and start the services only
push   deliver one more push of the demo app and wait for its build
stop   stop what `run`/`start` started
check  `buildbot checkconfig` on the settings (creates missing demo secrets first)
chroots
       make the clean builds' chroot base of this machine's release when it is missing or
       older than 7 days (--refresh: anew); as root in /var/cache/conveyor/chroots
red    (make demo-red) push a failing test to the demo app, wait for the red build and
       print the mail that names the test; then push the fix and print the "fixed" mail
repository-host, build-worker, master-host
       one host of an installation on several machines (ops/hosts.py; --help)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from conveyor import buildprops
from conveyor import hostsetup
from conveyor.results import result_name
from ops import chroots
from ops import demo
from ops import github
from ops import hosts
from ops import services
from ops import setup
from ops.progress import StepPrinter


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in hosts.COMMANDS:  # one host of several: ops/hosts.py
        return hosts.main(argv)
    parser = argparse.ArgumentParser(
        prog="python -m ops",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command", choices=["run", "start", "push", "stop", "check", "red", "chroots"]
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="chroots: make the bases anew even when they are fresh",
    )
    setup.settings_argument(parser)
    args = parser.parse_args(argv)
    settings = setup.load_settings(args.settings)
    if settings is None:
        return 2

    if args.command == "stop":
        stopped = services.stop(settings)
        setup.say("stopped " + (", ".join(stopped) if stopped else "nothing (nothing was running)"))
        return 0

    if args.command == "chroots":  # the clean builds' bases (ops/chroots.py), as root
        for release in chroots.releases(settings):
            chroots.ensure_base(
                chroots.chroots_dir(settings.state_dir), release, refresh=args.refresh
            )
        return 0

    if args.command == "check":
        setup.ensure_secrets(settings)
        proc = subprocess.run(
            [setup.venv_bin("buildbot"), "checkconfig", str(setup.ROOT / "master.cfg")],
            env=services.master_env(settings),
        )
        return proc.returncode

    started = time.monotonic()
    if args.command != "push":
        setup.prepare(settings)
        services.start(settings)
        setup.say(f"services up after {time.monotonic() - started:.0f} s")
    if args.command == "start":
        return 0
    if args.command == "red":
        if not services.wants_mail_sink(settings):
            setup.say(
                f"mail goes to {settings.mail.smtp_host}:{settings.mail.smtp_port}, not "
                "to a local sink: the mails will not be shown here"
            )
        return demo.red_green(settings, settings.projects[0], services.mail_dir(settings))

    project = settings.projects[0]
    checkout = demo.ensure_demo_repo(settings, project)
    parent = demo.new_demo_commit(settings, project, checkout)
    build = github.push_and_wait(settings, project, checkout, before=parent, progress=StepPrinter())
    result = result_name(build["results"])
    version = (build.get("properties", {}).get(buildprops.PACKAGE_VERSION) or [None])[0]
    print()
    print(
        f"  build     {project.ci_builder} #{build['number']}: {result}"
        f"  ({build['seconds']:.0f} s from webhook to result)"
    )
    print(f"  url       {build['url']}")
    if result == "SUCCESS":
        print(f"  package   {', '.join(project.packages)} {version} in {project.upload_to}")
        print(f"  key       {settings.repository.public_key_url}")
        lines = hostsetup.commands(
            settings.repository.url, project.upload_to, project.packages, project.targets
        ).splitlines()
        print(f"  install   {lines[0]}")
        for line in lines[1:]:
            print(f"            {line}")
    print(f"  apt line  {demo.sources_line(settings, project.upload_to)}")
    users_file = settings.secrets_dir / settings.auth.users_secret
    print(
        f"  log in    {settings.web_url} as releaser (may promote), developer (may build) or "
        f"admin (workers, schedulers); passwords: grep releaser {users_file}"
    )
    nxt = project.path[project.path.index(project.upload_to) + 1 :]
    if nxt:
        print(
            f"  promote   bin/conveyor promote {project.packages[0]} {project.upload_to} "
            f"{nxt[0]}   (then: bin/conveyor status, bin/conveyor history {nxt[0]})"
        )
    print(f"  total     {time.monotonic() - started:.0f} s; `make stop` stops everything")
    return 0 if result == "SUCCESS" else 1


if __name__ == "__main__":
    sys.exit(main())
