"""What a load test creates and how it is recognised afterwards: names and address ranges. Pure logic.

The connection, authority and overflow pools the run loads into the concentrators' charon, the load-test
users' names, the generator containers and the address ranges they use. The run removes all of them
afterwards and the sweep looks for exactly these names, so they live in one place. Imports nothing of svpn.
"""

from __future__ import annotations

from ipaddress import IPv4Network

# Names of everything the run loads into the concentrators' charon (memory only) and removes afterwards.
CONN_NAME = "svpn-loadtest"
AUTHORITY_NAME = "svpn-loadtest"
OVERFLOW_POOL_PREFIX = "svpn-loadtest-"
# Load-test users are "CN=g<generator>-u<n>, OU=svpn-loadtest, O=SVPN lab"; the temporary connection
# matches exactly these names (and only from the load-test CA), so real users never select it.
ID_SUFFIX = "OU=svpn-loadtest, O=SVPN lab"
ID_PATTERN = f"CN=*, {ID_SUFFIX}"
CA_DN_PREFIX = "CN=SVPN load-test CA"

GENERATOR_CONTAINER_PREFIX = "svpn-lt-"
# Per-user source addresses of the generators (RFC 2544 range, apart from the lab's own networks).
SOURCE_RANGE = IPv4Network("198.18.64.0/18")
# Virtual IPs for users beyond a node's own pool (apart from the lab pools and docker's bridge).
OVERFLOW_POOL_RANGE = IPv4Network("198.19.64.0/18")
