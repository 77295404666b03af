"""master/dispatch.py: a scheduler's new buildset goes to the build request distributor at once,
for each of its builders, instead of after Buildbot's 0.1 s debounce."""

from __future__ import annotations

import types

from twisted.internet import defer

from master import dispatch
from master import pullrequests
from master import schedulers


class FakeBotMaster:
    def __init__(self, builders: dict[int, str]):
        self.builders = builders
        self.told: list[str] = []

    def getBuilderById(self, builderid):
        name = self.builders.get(builderid)
        return types.SimpleNamespace(name=name) if name else None

    def maybeStartBuildsForBuilder(self, name):
        self.told.append(name)


class AddsBuildsets:
    """What Buildbot's addBuildsetForSourceStamps returns: (bsid, {builderid: brid})."""

    def addBuildsetForSourceStamps(self, **kwargs):
        self.added = kwargs
        return defer.succeed((5, {4: 41, 2: 40, 9: 42}))


class Scheduler(dispatch.StartsAtOnce, AddsBuildsets):
    def __init__(self, botmaster):
        self.master = types.SimpleNamespace(botmaster=botmaster)


def test_each_builder_of_a_new_buildset_is_told_at_once_and_the_ids_pass_through():
    botmaster = FakeBotMaster({2: "snowbird-ci", 4: "snowbird-package"})  # 9: gone (reconfig)
    scheduler = Scheduler(botmaster)
    got = []
    scheduler.addBuildsetForSourceStamps(sourcestamps=[1], reason="push").addCallback(got.append)
    assert got == [(5, {4: 41, 2: 40, 9: 42})]
    assert botmaster.told == ["snowbird-ci", "snowbird-package"]
    assert scheduler.added["reason"] == "push" and scheduler.added["sourcestamps"] == [1]


def test_every_conveyor_scheduler_starts_its_builds_at_once(tmp_path):
    from tests.unit.test_authz import load

    settings = load(tmp_path)
    every = schedulers.schedulers_for(settings) + pullrequests.schedulers(settings)
    assert len(every) > 4
    for scheduler in every:
        assert isinstance(scheduler, dispatch.StartsAtOnce), scheduler.name
