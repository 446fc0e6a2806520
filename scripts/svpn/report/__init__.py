"""`svpn report`: what runs on the farm, for an auditor - topology, the crypto policy each node has loaded,
who holds access, the PKI's audit trail, capacity against the plan and drift from the inventory - as one
self-contained HTML page and its Markdown twin. Read-only on every host."""
