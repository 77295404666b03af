"""Pull requests: tested like pushes, never packaged or published."""

from master.settings import Settings


def schedulers(settings: Settings) -> list:
    return []


def builders(settings: Settings) -> list:
    return []
