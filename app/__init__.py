"""diffwise: a self-hostable GitHub App that reviews pull requests."""

__version__ = "0.1.0"
