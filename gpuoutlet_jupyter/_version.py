"""The package version, read by hatchling and the server's status endpoint."""

__version__ = "0.1.0"
