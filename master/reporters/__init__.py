"""Reporters: who hears about builds. `mail` (failure, fix, lost worker, release) and `github`
(commit statuses); `facts` reads what they tell from the master's data API."""

from conveyor.settings import Settings
from master.reporters.github import github_status_pushers
from master.reporters.mail import mail_notifiers


def reporters(settings: Settings) -> list:
    return mail_notifiers(settings) + github_status_pushers(settings)
