"""The adapter's own test module, as pycodewake 0.2's adapters wrote it: one star import."""

from code_wake.test.store import *  # noqa: F403 - the pycodewake way: the shared suite, by star import
