"""Retention ([retention] in pipeline.toml): what keeps a busy installation's disk flat.

- Buildbot's JanitorConfigurator deletes build logs (and build data) older than `logs_days`,
  nightly, in its own `__Janitor` builder on a LocalWorker in the master's process.
- The `retention` builder, nightly too and forceable by admins (master/authz.py: every control
  action not listed there is theirs), removes old artifacts on the master, then drops the aptly
  snapshots that no distribution's last `snapshots_keep_states` history states use, followed by
  `aptly db cleanup`: on the repository's worker, under the repository lock.
- The same `retention` build runs at every start of the master (`AtStart`): after a crash (a
  kill -9 mid-publish) it drops the snapshots the interrupted build made and no distribution
  uses. Buildbot itself marks the interrupted builds finished (RETRY) and asks for them again.
"""

from datetime import timedelta

from twisted.internet import defer

from buildbot.configurators.janitor import JanitorConfigurator
from buildbot.plugins import schedulers as scheduler_plugins
from buildbot.plugins import util
from buildbot.schedulers.base import ReconfigurableBaseScheduler

from conveyor.settings import Settings
from master.builders import REPOSITORY_LOCK
from steps import retention as retention_steps

RETENTION = "retention"


def configurators(settings: Settings) -> list:
    r = settings.retention
    return [
        JanitorConfigurator(
            logHorizon=timedelta(days=r.logs_days),
            build_data_horizon=timedelta(days=r.logs_days),
            hour=r.hour,
            minute=r.minute,
        )
    ]


def factory(settings: Settings) -> util.BuildFactory:
    r, repo = settings.retention, settings.repository
    f = util.BuildFactory()
    f.addStep(
        retention_steps.PruneArtifacts(
            artifacts_dir=str(settings.artifacts_dir), days=r.artifacts_days
        )
    )
    f.addStep(
        retention_steps.PruneSnapshots(
            history_dir=str(settings.history_dir),
            distributions=settings.distributions,
            keep_states=r.snapshots_keep_states,
            aptly_config=str(repo.aptly_config),
            gnupg_home=str(repo.gnupg_home),
        )
    )
    return f


def builders(settings: Settings) -> list[util.BuilderConfig]:
    return [
        util.BuilderConfig(
            name=RETENTION,
            workernames=[settings.repository.worker],
            factory=factory(settings),
            locks=[REPOSITORY_LOCK.access("exclusive")],
            tags=["repository", "retention"],
            collapseRequests=True,  # two queued prunes are one
        )
    ]


class AtStart(ReconfigurableBaseScheduler):
    """One build of its builders each time the master starts (when Buildbot activates its
    schedulers), and when an admin turns it on again."""

    @defer.inlineCallbacks
    def activate(self):
        yield super().activate()
        if not self.enabled:
            return
        yield self.addBuildsetForSourceStampsWithDefaults(
            reason="the master started: clean up after an interrupted build", sourcestamps=[]
        )


def schedulers(settings: Settings) -> list:
    r = settings.retention
    return [
        AtStart(name=f"{RETENTION}-at-start", builderNames=[RETENTION]),
        # a few minutes after the janitor, so that the two do not run at once
        scheduler_plugins.Nightly(
            name=RETENTION, builderNames=[RETENTION], hour=r.hour, minute=(r.minute + 10) % 60
        ),
        scheduler_plugins.ForceScheduler(
            name=f"{RETENTION}-force",
            builderNames=[RETENTION],
            buttonName="prune now",
            label="Retention: prune old artifacts and unused snapshots",
            reason=util.StringParameter(name="reason", default="forced prune", size=40),
            properties=[],
        ),
    ]
