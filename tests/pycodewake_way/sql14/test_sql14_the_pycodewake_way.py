"""Sql14Store's run of the shared suite, imported the pycodewake way."""

from code_wake.test.store import *  # noqa: F403 - the pycodewake way: the shared suite, by star import
