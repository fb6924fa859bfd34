"""code_wake's own SQL store under the suite's pycodewake entry points."""
