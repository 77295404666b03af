"""Reporters: who hears about builds (mail, GitHub commit statuses)."""

from master.settings import Settings


def reporters(settings: Settings) -> list:
    return []
