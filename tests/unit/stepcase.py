"""The base of the step unit tests: Buildbot's TestBuildStepMixin on a fake master, no
processes; commands are expected with ExpectShell and friends."""

from unittest import mock

from twisted.internet import defer
from twisted.trial import unittest

from buildbot.test.reactor import TestReactorMixin
from buildbot.test.steps import ExpectShell as BuildbotExpectShell
from buildbot.test.steps import TestBuildStepMixin


def ExpectShell(*args, **kwargs):  # noqa: N802 (Buildbot's name)
    """Buildbot's ExpectShell for Conveyor's steps, which log no environment
    (steps/__init__.py)."""
    kwargs.setdefault("log_environ", False)
    return BuildbotExpectShell(*args, **kwargs)


class StepTestCase(TestBuildStepMixin, TestReactorMixin, unittest.TestCase):
    build_number = 12

    @defer.inlineCallbacks
    def setUp(self):
        self.setup_test_reactor()
        yield self.setup_test_build_step()

    def setup(self, step, **props):
        """Set up `step` in a fake build with these build properties."""
        step = self.setup_step(step)
        for name, value in props.items():
            self.build.setProperty(name, value, "test")
        self.build.number = self.build_number
        return step

    def answer_data(self, answers: dict) -> None:
        """The fake master's data API answers these paths ({path tuple: object}) and the rest
        as before; its `control` (cancel …) is a Mock that records the calls."""
        real = self.master.data.get
        self.master.data.get = mock.Mock(
            side_effect=lambda path, **kw: (
                defer.succeed(answers[tuple(path)]) if tuple(path) in answers else real(path, **kw)
            )
        )
        self.master.data.control = mock.Mock(return_value=defer.succeed(None))
