"""An adapter written for pycodewake 0.2, on SQLAlchemy 2, and its own test suite."""
