"""The package version: always the version of the cardbridge crate it bundles."""

__version__ = "0.1.0"
