"""Test support shared by the unit tests and the molecule scenarios (not shipped in the svpn package)."""
