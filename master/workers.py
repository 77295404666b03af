"""Workers: one per [workers.<name>] table; passwords come from the secrets provider."""

from buildbot.plugins import util
from buildbot.plugins import worker

from master.settings import Settings


def workers(settings: Settings) -> list:
    return [worker.Worker(w.name, util.Secret(w.password_secret)) for w in settings.workers]
