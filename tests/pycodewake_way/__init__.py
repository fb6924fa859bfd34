"""Store test suites written the pycodewake 0.2 way, run unchanged against code_wake."""
