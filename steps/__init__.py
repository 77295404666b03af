"""Conveyor's build steps, one module per topic (they import conveyor.*, never master.*).

Every step that runs a command sets `logEnviron = False`: Buildbot's default writes the whole
environment of the worker into the step's log, which everyone who may read logs would see (and
workers' environments are kept minimal besides: ops/services.py). A unit test
(tests/unit/test_config.py) checks every step of every factory."""
