"""Workers: one per [workers.<name>] table; passwords come from the secrets provider."""

from buildbot.plugins import util
from buildbot.plugins import worker

from conveyor.settings import Settings


def workers(settings: Settings) -> list:
    # a worker gone for worker_missing_timeout seconds is reported to the admins (reporters.py)
    return [
        worker.Worker(
            w.name,
            util.Secret(w.password_secret),
            missing_timeout=settings.worker_missing_timeout,
            notify_on_missing=list(settings.admins),
        )
        for w in settings.workers
    ]
