"""Web UI users: the secrets file `<auth.users_secret>`, one `name:password:role,role` per line.

Read by the master (log-in, roles) and written by `make run` (a demo releaser). Passwords never
leave this module but to Buildbot's UserPasswordAuth.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.grammar import ROLE
from conveyor.grammar import USERNAME
from conveyor.settings import Settings
from conveyor.settings import SettingsError


@dataclass(frozen=True)
class User:
    name: str
    password: str
    roles: tuple[str, ...]


def parse(text: str, where: str) -> dict[str, User]:
    users: dict[str, User] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3:
            raise SettingsError(f"{where}: line {number}: write name:password:role,role")
        name, password, roles = parts[0].strip(), parts[1], parts[2]
        role_list = tuple(r.strip() for r in roles.split(",") if r.strip())
        if not USERNAME.match(name):
            raise SettingsError(f"{where}: line {number}: {name!r} is not a valid user name")
        if len(password) < 8:
            raise SettingsError(
                f"{where}: line {number}: {name}'s password is shorter than 8 characters"
            )
        for role in role_list:
            if not ROLE.match(role):
                raise SettingsError(f"{where}: line {number}: {role!r} is not a valid role")
        if name in users:
            raise SettingsError(f"{where}: line {number}: {name} is listed twice")
        users[name] = User(name, password, role_list)
    return users


def load(settings: Settings) -> dict[str, User]:
    """The users, or {} when the file does not exist (then nobody can log in)."""
    text = settings.read_secret(settings.auth.users_secret)
    return parse(text or "", str(settings.secrets_dir / settings.auth.users_secret))


def roles_of(users: dict[str, User], name: str | None) -> tuple[str, ...]:
    user = users.get(name or "")
    return user.roles if user else ()
