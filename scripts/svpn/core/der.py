"""Reading DER, the little the package needs of it: elements, tags, object identifiers.

Two readers use it: :mod:`svpn.access.pki.keystore` (the parameters of an encrypted PKCS#8 key, read back
without decrypting) and :mod:`svpn.farm.identities` (a subject DN printed the way strongSwan prints it).
Malformed input raises ValueError saying what is wrong.
"""

from __future__ import annotations


def elements(data: bytes) -> list[tuple[int, bytes]]:
    """The DER elements in *data*, in order: (tag, content)."""
    items, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise ValueError("truncated DER")
        tag, size = data[pos], data[pos + 1]
        pos += 2
        if size & 0x80:
            count = size & 0x7F
            if not 1 <= count <= 4 or pos + count > len(data):
                raise ValueError("bad DER length")
            size = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        if pos + size > len(data):
            raise ValueError("truncated DER")
        items.append((tag, data[pos : pos + size]))
        pos += size
    return items


def expect(item: tuple[int, bytes], tag: int) -> bytes:
    """The content of *item*, which must have *tag*."""
    if item[0] != tag:
        raise ValueError(f"DER tag {item[0]:#x} where {tag:#x} was expected")
    return item[1]


def oid_text(content: bytes) -> str:
    """The dotted form of a DER object identifier (its content octets), every arc in full."""
    arcs, value = [], 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise ValueError("empty OID")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])
