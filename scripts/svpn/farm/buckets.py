"""The LB's bucket table: which concentrator owns each source-address hash bucket.

One stateless function shared by the LB role (through a filter plugin), the health checker and the load
test's placement prediction, so they cannot disagree. It is rendezvous (highest-random-weight) hashing
with a balance cap:

* every (bucket, node) pair gets a score, ``sha256(f"{node}/{bucket}")``;
* pairs are taken by descending score, and a bucket goes to the node if the bucket is still free and
  the node is below its cap.

The cap is ``ceil(buckets / nodes)``, and only ``buckets mod nodes`` nodes may reach it (the others
stop one below), so owned counts differ by at most one. Plain rendezvous hashing would leave the
table unbalanced by a few percent; plain ``hash mod n`` would move most buckets when a node is
added. With the cap, adding or removing a node moves about ``buckets / nodes`` buckets plus a few
that the changed caps shift (the property tests measure how many).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

from svpn.core.errors import SvpnError

DEFAULT_BUCKETS = 256


class BucketRow(NamedTuple):
    """One line of the table for auditors: the owner and how far down its score list the owner was."""

    bucket: int
    owner: str
    rank: int  # 1: the bucket's highest-scoring node owns it; 2: the next one (the first was full)...


def score(node: str, bucket: int) -> bytes:
    """The rendezvous score of *node* for *bucket* (compared as bytes: higher wins)."""
    return hashlib.sha256(f"{node}/{bucket}".encode()).digest()


def _validate(nodes: Sequence[str], buckets: int) -> None:
    if isinstance(nodes, str):
        raise SvpnError(f"nodes: expected a list of node names, got the string {nodes!r}")
    if not nodes:
        raise SvpnError("nodes: the bucket table needs at least one node, got none")
    for node in nodes:
        if not isinstance(node, str) or not node:
            raise SvpnError(f"nodes: {node!r} is not a node name (a non-empty string)")
    seen: set[str] = set()
    duplicates = sorted({node for node in nodes if node in seen or seen.add(node)})
    if duplicates:
        raise SvpnError(f"nodes: duplicate node names {', '.join(duplicates)}; each node must be named once")
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < len(nodes):
        raise SvpnError(
            f"buckets: {buckets!r} is too few for {len(nodes)} nodes; give a whole number >= {len(nodes)}"
        )


def _ranked_pairs(nodes: Sequence[str], buckets: int) -> list[tuple[bytes, str, int]]:
    """All (score, node, bucket) triples, best first.

    The order is total (a score tie, never seen with sha256, falls back to the names), so the result
    does not depend on the order the nodes were given in.
    """
    pairs = [(score(node, bucket), node, bucket) for node in nodes for bucket in range(buckets)]
    pairs.sort(reverse=True)
    return pairs


def bucket_owners(nodes: Sequence[str], buckets: int = DEFAULT_BUCKETS) -> list[str]:
    """The owner of each bucket, ``owners[bucket]``; deterministic and independent of the input order."""
    _validate(nodes, buckets)
    floor, extra = divmod(buckets, len(nodes))
    owners: list[str | None] = [None] * buckets
    owned = dict.fromkeys(nodes, 0)
    at_ceiling = 0  # nodes holding floor + 1 buckets; only `extra` of them may
    for _score, node, bucket in _ranked_pairs(nodes, buckets):
        if owners[bucket] is not None:
            continue
        count = owned[node]
        if count < floor or (count == floor and at_ceiling < extra):
            owners[bucket] = node
            owned[node] = count + 1
            if count == floor:
                at_ceiling += 1
    # Every bucket is taken: a free bucket would mean every node is full, i.e. all buckets are owned.
    return [owner for owner in owners if owner is not None]


def buckets_per_node(nodes: Sequence[str], buckets: int = DEFAULT_BUCKETS) -> dict[str, int]:
    """How many buckets each node owns, in the order the nodes were given."""
    counts = dict.fromkeys(nodes, 0)
    for owner in bucket_owners(nodes, buckets):
        counts[owner] += 1
    return counts


def explain(nodes: Sequence[str], buckets: int = DEFAULT_BUCKETS) -> list[BucketRow]:
    """Per-bucket rows (bucket, owner, rank of the owner among that bucket's scores) for auditors."""
    owners = bucket_owners(nodes, buckets)
    rows = []
    for bucket, owner in enumerate(owners):
        ranking = sorted(((score(node, bucket), node) for node in nodes), reverse=True)
        rank = [node for _score, node in ranking].index(owner) + 1
        rows.append(BucketRow(bucket, owner, rank))
    return rows
