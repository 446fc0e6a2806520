"""Layer 0: errors, safe file writes, where the repository is, a DER reader, ping output and the one reader
of inventories on disk (ansible_inventory: ansible-core's own). Imports nothing of svpn above it.
"""
