"""Layer 0: errors, safe file writes, where the repository is, a DER reader and ping output. Imports nothing
of svpn.
"""
