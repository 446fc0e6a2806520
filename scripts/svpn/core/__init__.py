"""Layer 0: errors, safe file writes and where the repository is. Imports nothing of svpn."""
