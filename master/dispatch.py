"""Builds start as soon as they are asked for.

Buildbot hands new build requests to its distributor through a 0.1 s debounce
(`BotMaster._flush_pending_builders`): meant for bursts, it is paid by every request. A push's
way to staging asks for three builds one after another (CI, its package build, the publish), and a
promotion asks for one: each waited 0.1 s before anything looked at it. Conveyor's schedulers
(pushes, triggers, force buttons) tell the distributor themselves, through BotMaster's
`maybeStartBuildsForBuilder`, right after they added the buildset. The debounced call still
comes, and finds nothing left to start.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from buildbot.schedulers.basic import AnyBranchScheduler
from buildbot.schedulers.triggerable import Triggerable


class StartsAtOnce:
    """Scheduler mixin: every buildset it adds goes to the build request distributor at once."""

    @defer.inlineCallbacks
    def addBuildsetForSourceStamps(
        self,
        waited_for=False,
        sourcestamps=None,
        reason="",
        external_idstring=None,
        properties=None,
        builderNames=None,
        priority=None,
        **kw: Any,
    ) -> Any:
        # (Buildbot's own signature: its scheduler tests compare it)
        bsid, brids = yield super().addBuildsetForSourceStamps(  # type: ignore[misc]
            waited_for=waited_for,
            sourcestamps=sourcestamps,
            reason=reason,
            external_idstring=external_idstring,
            properties=properties,
            builderNames=builderNames,
            priority=priority,
            **kw,
        )
        botmaster = self.master.botmaster  # type: ignore[attr-defined]
        for builderid in sorted(brids):
            builder = botmaster.getBuilderById(builderid)
            if builder is not None:
                botmaster.maybeStartBuildsForBuilder(builder.name)
        return bsid, brids


class PromptTriggerable(StartsAtOnce, Triggerable):
    """The package builds' and the publish's trigger."""


class PromptAnyBranchScheduler(StartsAtOnce, AnyBranchScheduler):
    """The pull requests' scheduler."""
