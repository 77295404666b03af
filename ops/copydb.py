"""`python -m ops.copydb postgresql://user@host:port/name` — move an installation's master
database (the embedded SQLite one, say) to a database server, with Buildbot's `buildbot copy-db`.

The password is read from the secrets directory ([conveyor] db_password_secret, default
`db-password`; or --password-secret) and reaches libpq as PGPASSWORD: never on a command line,
in a file of ours or in the output. The master must be stopped (`make stop`); the destination
database must exist and be empty (copy-db makes its tables). Afterwards, set the new db_url in
pipeline.toml and start again.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from conveyor import settings as settings_module
from ops import services
from ops import setup


def copy_db(settings: settings_module.Settings, url: str, password_secret: str) -> int:
    if re.match(r"^[^:/]+://[^/?#@]*:[^/?#]*@", url):  # user:password@host
        setup.say("the URL must not hold a password: it is read from the secrets directory")
        return 2
    if services.read_pid(settings.master_dir / "twistd.pid"):
        setup.say(
            "the master is running: stop it first (make stop), so that nothing changes "
            "its database during the copy"
        )
        return 2
    env = services.master_env(settings)
    env.pop("PGPASSWORD", None)
    password = settings.read_secret(password_secret)
    if password:
        env["PGPASSWORD"] = password
    else:
        setup.say(f"no password in {settings.secrets_dir / password_secret}: connecting without")
    proc = subprocess.run(
        [setup.venv_bin("buildbot"), "copy-db", url, str(settings.master_dir)],
        env=env,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        setup.say("copy-db failed: pipeline.toml still names the old database, which is unchanged")
        return proc.returncode
    setup.say(
        f'copied. Now set in {settings.file}, [conveyor]: db_url = "{url}"'
        + (
            f' and db_password_secret = "{password_secret}"'
            if password_secret != "db-password"
            else ""
        )
        + "; then start again (make start)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.copydb",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", help="the destination, e.g. postgresql://conveyor@db:5432/conveyor")
    setup.settings_argument(parser)
    parser.add_argument(
        "--password-secret",
        default=None,
        help="the secret file with the password (default: [conveyor] "
        "db_password_secret, else db-password)",
    )
    args = parser.parse_args(argv)
    settings = setup.load_settings(args.settings)
    if settings is None:
        return 2
    secret = args.password_secret or settings.db_password_secret or "db-password"
    return copy_db(settings, args.url, secret)


if __name__ == "__main__":
    sys.exit(main())
