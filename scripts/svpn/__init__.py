"""SVPN farm: the Python side of the toolkit (the `svpn` CLI)."""

__version__ = "0.1.0"
