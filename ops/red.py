"""`python -m ops.red` (`make demo-red`): break the demo app's build and fix it, and show the mail.

Sets up and starts what is missing (like `make start`), then pushes a commit with a failing test
to the demo repository, waits for the red build and prints the mail that names the failing test
(from the mail sink's var/mail/), then pushes the fix and prints the "fixed" mail.
"""

from __future__ import annotations

import argparse
import os
import sys

from master import settings as settings_module
from ops import demo
from ops import services
from ops import setup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.red", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default=os.environ.get("CONVEYOR_SETTINGS",
                                                             str(setup.ROOT / "pipeline.toml")))
    args = parser.parse_args(argv)
    try:
        settings = settings_module.load(args.settings)
    except settings_module.SettingsError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return 2
    if not services.wants_mail_sink(settings):
        setup.say(f"mail goes to {settings.mail.smtp_host}:{settings.mail.smtp_port}, not to a "
                  "local sink: the mails will not be shown here")
    setup.prepare(settings)
    services.start(settings)
    return demo.red_green(settings, settings.projects[0], services.mail_dir(settings))


if __name__ == "__main__":
    sys.exit(main())
