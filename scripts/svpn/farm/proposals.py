"""THE mapping of strongSwan proposal keywords to each VPN client's own vocabulary.

The farm's proposals are written once, in strongSwan syntax, in the inventory (``svpn_ike_proposals``,
``svpn_esp_proposals``); the concentrators use them verbatim. Every client profile is derived from them
through :data:`ALGORITHMS`, the only table that knows what Apple, Windows, the strongSwan Android app and
NetworkManager call an algorithm. A keyword missing from the table is an error, never a silent guess.

The same table is the farm's crypto policy (an allowlist): an algorithm is allowed unless its row says why
it is ``refused`` (3DES, DES, Blowfish, CAST, NULL encryption, SHA-1, MD5, MODP groups below 2048 bits and
the RFC 5114 groups, NIST curves below 256 bits). :func:`parse` refuses such a proposal with the reason, and
:func:`policy_problems` adds the farm rule that every ESP proposal carries a DH group, so each CHILD_SA
rekey has perfect forward secrecy, unless the farm opts out with ``svpn_esp_pfs_optional: true``. The
policy holds at every door: `svpn plan`, `svpn inventory check` and ``playbooks/check.yml`` (through
``svpn.inventory.checks.farm_problems``) and every client profile (through :func:`for_clients`).

Clients that take one proposal (Apple ``.mobileconfig``, Windows ``Set-VpnConnectionIPsecConfiguration``,
the Android app's ``.sswan``) get the *first* farm proposal their vocabulary can express; clients that take a
list (NetworkManager, swanctl) get every expressible proposal, in the farm's order. If a client can express
none, :class:`~svpn.core.errors.SvpnError` names the client and the proposals.

Sources for the client values: Apple's Device Management reference (``com.apple.vpn.managed``,
``IKEv2.IKESecurityAssociationParameters``), Microsoft's VpnClient module reference
(``Set-VpnConnectionIPsecConfiguration`` accepted values), the strongSwan Android app's profile import
(``ike-proposal``/``esp-proposal`` in strongSwan syntax) and NetworkManager-strongswan (``ike``/``esp``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from svpn.core.errors import SvpnError

Kind = Literal["enc", "aead", "integ", "prf", "dh"]
Client = Literal["apple", "windows", "android", "networkmanager", "swanctl"]
CLIENTS: tuple[Client, ...] = ("apple", "windows", "android", "networkmanager", "swanctl")


@dataclass(frozen=True)
class Algorithm:
    """One strongSwan keyword and its name in each client's vocabulary (``None``: not expressible).

    ``apple``: EncryptionAlgorithm / IntegrityAlgorithm (string) or DiffieHellmanGroup (int).
    ``win_ike``: EncryptionMethod / IntegrityCheckMethod / DHGroup (IKE SA).
    ``win_esp``: CipherTransformConstants / AuthenticationTransformConstants / PfsGroup (CHILD SA); for AEAD
    ciphers Windows wants the same GCM constant in both cipher and authentication transform.
    ``strongswan``: the strongSwan Android app and NetworkManager-strongswan (both are strongSwan, so the
    keyword is passed on unchanged when True).
    ``refused``: why the crypto policy refuses the keyword; empty means allowed. Refused algorithms are in
    the table so that a weak proposal is refused with its reason rather than as an unknown keyword; no
    client gets a value for them.
    """

    keyword: str
    kind: Kind
    apple: str | int | None
    win_ike: str | None
    win_esp: str | None
    strongswan: bool = True
    refused: str = ""


def _refused(keyword: str, kind: Kind, why: str) -> Algorithm:
    """A keyword strongSwan knows and the crypto policy refuses: no client value, only the reason."""
    return Algorithm(keyword, kind, None, None, None, strongswan=False, refused=why)


_SWEET32 = "64-bit blocks (Sweet32 birthday attacks)"
_SHA1 = "deprecated for IKE and ESP (RFC 8247, RFC 8221)"
_RFC5114 = "a small subgroup of unverifiable origin (RFC 8247: not to be used)"


ALGORITHMS: dict[str, Algorithm] = {
    a.keyword: a
    for a in (
        # Encryption (non-AEAD): needs an integrity algorithm beside it.
        Algorithm("aes128", "enc", "AES-128", "AES128", "AES128"),
        Algorithm("aes192", "enc", None, "AES192", "AES192"),
        Algorithm("aes256", "enc", "AES-256", "AES256", "AES256"),
        # AEAD: no separate integrity; the IKE PRF stands in for Apple's and Windows' "integrity".
        Algorithm("aes128gcm16", "aead", "AES-128-GCM", "GCMAES128", "GCMAES128"),
        Algorithm("aes192gcm16", "aead", None, None, "GCMAES192"),
        Algorithm("aes256gcm16", "aead", "AES-256-GCM", "GCMAES256", "GCMAES256"),
        Algorithm("chacha20poly1305", "aead", "ChaCha20Poly1305", None, None),
        # Integrity. Windows' ESP vocabulary stops at SHA256128; its IKE vocabulary at SHA384.
        Algorithm("sha256", "integ", "SHA2-256", "SHA256", "SHA256128"),
        Algorithm("sha384", "integ", "SHA2-384", "SHA384", None),
        Algorithm("sha512", "integ", "SHA2-512", None, None),
        # PRF (IKE only). Apple and Windows derive the PRF from their integrity setting.
        Algorithm("prfsha256", "prf", "SHA2-256", "SHA256", None),
        Algorithm("prfsha384", "prf", "SHA2-384", "SHA384", None),
        Algorithm("prfsha512", "prf", "SHA2-512", None, None),
        # Key exchange (IKE DH group; ESP PFS group).
        Algorithm("modp2048", "dh", 14, "Group14", "PFS2048"),
        Algorithm("modp3072", "dh", 15, None, None),
        Algorithm("modp4096", "dh", 16, None, None),
        Algorithm("modp6144", "dh", 17, None, None),
        Algorithm("modp8192", "dh", 18, None, None),
        Algorithm("ecp256", "dh", 19, "ECP256", "ECP256"),
        Algorithm("ecp384", "dh", 20, "ECP384", "ECP384"),
        Algorithm("ecp521", "dh", 21, None, None),
        Algorithm("curve25519", "dh", 31, None, None),
        Algorithm("curve448", "dh", 32, None, None),
        # Refused by the crypto policy (strongSwan knows them; the farm must not offer them).
        _refused("null", "enc", "NULL encryption, no confidentiality at all"),
        _refused("des", "enc", "DES, a 56-bit key broken by exhaustive search"),
        _refused("3des", "enc", f"3DES, {_SWEET32}"),
        _refused("cast128", "enc", f"CAST-128, {_SWEET32}"),
        _refused("blowfish128", "enc", f"Blowfish, {_SWEET32}"),
        _refused("blowfish192", "enc", f"Blowfish, {_SWEET32}"),
        _refused("blowfish256", "enc", f"Blowfish, {_SWEET32}"),
        _refused("sha1", "integ", f"HMAC-SHA-1, {_SHA1}"),
        _refused("sha1_160", "integ", f"HMAC-SHA-1, {_SHA1}"),
        _refused("md5", "integ", "HMAC-MD5, MD5 is broken"),
        _refused("md5_128", "integ", "HMAC-MD5, MD5 is broken"),
        _refused("prfsha1", "prf", f"PRF-HMAC-SHA-1, {_SHA1}"),
        _refused("prfmd5", "prf", "PRF-HMAC-MD5, MD5 is broken"),
        _refused("modp768", "dh", "MODP group 1, 768 bits: below 2048"),
        _refused("modp1024", "dh", "MODP group 2, 1024 bits: below 2048 (Logjam-style precomputation)"),
        _refused("modp1536", "dh", "MODP group 5, 1536 bits: below 2048"),
        _refused("modp1024s160", "dh", f"RFC 5114 group 22, 1024 bits: below 2048, and {_RFC5114}"),
        _refused("modp2048s224", "dh", f"RFC 5114 group 23, {_RFC5114}"),
        _refused("modp2048s256", "dh", f"RFC 5114 group 24, {_RFC5114}"),
        _refused("ecp192", "dh", "NIST P-192 (group 25), below 128-bit security"),
        _refused("ecp224", "dh", "NIST P-224 (group 26), below 128-bit security"),
    )
}

# strongSwan's own aliases for the same algorithms.
ALIASES = {
    "aes128gcm": "aes128gcm16",
    "aes192gcm": "aes192gcm16",
    "aes256gcm": "aes256gcm16",
    "sha2_256": "sha256",
    "sha2_384": "sha384",
    "sha2_512": "sha512",
    "prfsha2_256": "prfsha256",
    "prfsha2_384": "prfsha384",
    "prfsha2_512": "prfsha512",
    "x25519": "curve25519",
    "x448": "curve448",
    "blowfish": "blowfish128",
    "sha": "sha1",
}
# ESP sequence-number flags: valid in ESP proposals, meaningless to the clients here.
_ESP_FLAGS = {"esn", "noesn"}


@dataclass(frozen=True)
class Proposal:
    """One strongSwan proposal, split into its algorithms (canonical keywords, in the written order)."""

    text: str
    kind: Literal["ike", "esp"]
    encryption: tuple[str, ...]
    integrity: tuple[str, ...]
    prf: tuple[str, ...]
    dh: tuple[str, ...]

    @property
    def aead(self) -> bool:
        return ALGORITHMS[self.encryption[0]].kind == "aead"


def _valid_keywords(kind: str) -> str:
    """The keywords the table knows and the policy allows in an IKE or ESP proposal."""
    kinds = {"enc", "aead", "integ", "dh"} | ({"prf"} if kind == "ike" else set())
    return ", ".join(a.keyword for a in ALGORITHMS.values() if a.kind in kinds and not a.refused)


def parse(text: str, kind: Literal["ike", "esp"]) -> Proposal:
    """Parse one strongSwan proposal (e.g. ``aes256gcm16-prfsha384-ecp384``); unknown keywords and
    keywords the crypto policy refuses → error (every refused one, with its reason)."""
    what = f"{kind.upper()} proposal {text!r}"
    if not isinstance(text, str) or not text.strip():
        raise SvpnError(f"{what} is empty: expected strongSwan keywords joined by '-'")
    enc: list[str] = []
    integ: list[str] = []
    prf: list[str] = []
    dh: list[str] = []
    refused: list[str] = []
    for raw in text.strip().lower().split("-"):
        if kind == "esp" and raw in _ESP_FLAGS:
            continue
        keyword = ALIASES.get(raw, raw)
        algo = ALGORITHMS.get(keyword)
        if algo is None or (algo.kind == "prf" and kind == "esp"):
            raise SvpnError(
                f"{what}: keyword {raw!r} is unknown to the client mapping (svpn.farm.proposals); "
                f"allowed {kind.upper()} keywords: {_valid_keywords(kind)}"
            )
        if algo.refused:
            refused.append(f"{raw}: {algo.refused}")
            continue
        {"enc": enc, "aead": enc, "integ": integ, "prf": prf, "dh": dh}[algo.kind].append(keyword)
    if refused:
        raise SvpnError(
            f"{what} is refused by the crypto policy: {'; '.join(refused)}; "
            f"allowed {kind.upper()} keywords: {_valid_keywords(kind)}"
        )
    if not enc:
        raise SvpnError(f"{what} has no encryption algorithm (e.g. aes256gcm16)")
    kinds = {ALGORITHMS[e].kind for e in enc}
    if len(kinds) > 1:
        raise SvpnError(f"{what} mixes AEAD and non-AEAD ciphers: write them as separate proposals")
    aead = kinds == {"aead"}
    if aead and integ:
        raise SvpnError(f"{what}: an AEAD cipher takes no integrity algorithm ({', '.join(integ)})")
    if not aead and not integ:
        raise SvpnError(f"{what}: a non-AEAD cipher needs an integrity algorithm (e.g. sha256)")
    if kind == "ike" and aead and not prf:
        raise SvpnError(f"{what}: an AEAD IKE proposal needs a PRF (e.g. prfsha384)")
    if kind == "ike" and not dh:
        raise SvpnError(f"{what} has no key exchange group (e.g. ecp384)")
    return Proposal(text.strip(), kind, tuple(enc), tuple(integ), tuple(prf), tuple(dh))


def parse_all(texts: Sequence[str], kind: Literal["ike", "esp"]) -> tuple[Proposal, ...]:
    if isinstance(texts, str) or not texts:
        raise SvpnError(f"{kind.upper()} proposals must be a non-empty list of strongSwan proposals")
    return tuple(parse(t, kind) for t in texts)


# --------------------------------------------------------------------------- the farm's crypto policy

# How policy_problems names the fields and the opt-out: the inventory's variables by default.
FARM_NAMES = {
    "ike": "svpn_ike_proposals",
    "esp": "svpn_esp_proposals",
    "pfs_optional": "svpn_esp_pfs_optional: true",  # how the farm opts out of PFS
}


def policy_problems(
    ike_texts: Sequence[str] | None,
    esp_texts: Sequence[str] | None,
    allow_esp_without_pfs: bool = False,
    *,
    names: Mapping[str, str] = FARM_NAMES,
) -> list[str]:
    """Why the farm's proposals break the crypto policy: one line per proposal, naming the field, the
    proposal, the reason and what is allowed; [] if they keep it.

    The policy: every keyword is in :data:`ALGORITHMS` and not refused there, every proposal is complete
    (see :func:`parse`), and every ESP proposal carries a DH group so that each CHILD_SA rekey has PFS —
    unless *allow_esp_without_pfs* (the farm's ``svpn_esp_pfs_optional``, for legacy clients). A list
    given as None is not checked (its caller reports a missing or malformed list itself). *names* maps
    ``ike``/``esp`` to the fields' names and ``pfs_optional`` to how the opt-out is written.
    """
    out: list[str] = []
    kinds: tuple[tuple[Literal["ike", "esp"], Sequence[str] | None], ...] = (
        ("ike", ike_texts),
        ("esp", esp_texts),
    )
    for kind, texts in kinds:
        if texts is None:
            continue
        name = names[kind]
        if isinstance(texts, str) or not texts:
            out.append(f"{name}: must be a non-empty list of strongSwan proposals")
            continue
        for text in texts:
            try:
                proposal = parse(text, kind)
            except SvpnError as err:
                out.append(f"{name}: {err}")
                continue
            if kind == "esp" and not proposal.dh and not allow_esp_without_pfs:
                out.append(
                    f"{name}: ESP proposal {proposal.text!r} has no DH group, so its CHILD_SA rekeys lack "
                    f"perfect forward secrecy; add one (e.g. {proposal.text}-ecp384) or, only for legacy "
                    f"clients that cannot do PFS, opt out with {names['pfs_optional']}"
                )
    return out


# --------------------------------------------------------------------------- per-client translation


def _first(values: Sequence[Any]) -> Any:
    return next((v for v in values if v is not None), None)


def _apple_sa(p: Proposal, ike_integrity: str | None = None) -> dict[str, Any] | None:
    encryption = _first([ALGORITHMS[e].apple for e in p.encryption])
    if encryption is None:
        return None
    if p.aead:
        # Apple infers the IKE PRF from IntegrityAlgorithm; for an AEAD CHILD SA the value is unused, so
        # it mirrors the IKE SA's to keep the two dictionaries consistent.
        integrity = _first([ALGORITHMS[x].apple for x in p.prf]) if p.kind == "ike" else ike_integrity
    else:
        # Apple derives the PRF from the integrity algorithm: an explicit, different PRF is inexpressible.
        candidates = [i for i in p.integrity if not p.prf or f"prf{i}" in p.prf]
        integrity = _first([ALGORITHMS[i].apple for i in candidates])
    if integrity is None:
        return None
    params: dict[str, Any] = {"EncryptionAlgorithm": encryption, "IntegrityAlgorithm": integrity}
    group = _first([ALGORITHMS[g].apple for g in p.dh])
    if p.dh and group is None:
        return None
    if group is not None:
        params["DiffieHellmanGroup"] = group
    return params


def _windows_ike(p: Proposal) -> dict[str, str] | None:
    encryption = _first([ALGORITHMS[e].win_ike for e in p.encryption])
    source = p.prf if p.aead else [i for i in p.integrity if not p.prf or f"prf{i}" in p.prf]
    integrity = _first([ALGORITHMS[x].win_ike for x in source])
    group = _first([ALGORITHMS[g].win_ike for g in p.dh])
    if encryption is None or integrity is None or group is None:
        return None
    return {"EncryptionMethod": encryption, "IntegrityCheckMethod": integrity, "DHGroup": group}


def _windows_esp(p: Proposal) -> dict[str, str] | None:
    cipher = _first([ALGORITHMS[e].win_esp for e in p.encryption])
    if cipher is None:
        return None
    auth = cipher if p.aead else _first([ALGORITHMS[i].win_esp for i in p.integrity])
    pfs = _first([ALGORITHMS[g].win_esp for g in p.dh]) if p.dh else "None"
    if auth is None or pfs is None:
        return None
    return {"CipherTransformConstants": cipher, "AuthenticationTransformConstants": auth, "PfsGroup": pfs}


def _strongswan_ok(p: Proposal) -> bool:
    return all(ALGORITHMS[k].strongswan for k in (*p.encryption, *p.integrity, *p.prf, *p.dh))


def _pick(client: str, kind: str, proposals: Sequence[Proposal], convert: Any) -> tuple[Proposal, Any]:
    for proposal in proposals:
        value = convert(proposal)
        if value is not None:
            return proposal, value
    raise SvpnError(
        f"none of the farm's {kind} proposals can be expressed for {client}: "
        f"{', '.join(p.text for p in proposals)}; add one it supports (see svpn.farm.proposals.ALGORITHMS)"
    )


@dataclass(frozen=True)
class ClientProposals:
    """The farm's proposals translated for every client (computed once, passed to every profile)."""

    apple_ike: dict[str, Any]
    apple_child: dict[str, Any]
    apple_pfs: bool
    windows: dict[str, str]
    android_ike: str
    android_esp: str
    networkmanager_ike: str
    networkmanager_esp: str
    swanctl_ike: str
    swanctl_esp: str
    chosen: dict[str, dict[str, str]]


def for_clients(
    ike_texts: Sequence[str], esp_texts: Sequence[str], allow_esp_without_pfs: bool = False
) -> ClientProposals:
    """Translate the farm's proposals for every client; error if they break the crypto policy (see
    :func:`policy_problems`) or a client can express none of them."""
    problems = policy_problems(ike_texts, esp_texts, allow_esp_without_pfs)
    if problems:
        raise SvpnError("; ".join(problems))
    ike = parse_all(ike_texts, "ike")
    esp = parse_all(esp_texts, "esp")

    apple_ike_p, apple_ike = _pick("Apple (mobileconfig)", "IKE", ike, _apple_sa)
    apple_esp_p, apple_child = _pick(
        "Apple (mobileconfig)", "ESP", esp, lambda p: _apple_sa(p, apple_ike["IntegrityAlgorithm"])
    )
    apple_pfs = bool(apple_esp_p.dh)
    if not apple_pfs:
        # Apple still wants a group in the CHILD dictionary; with PFS off it is not used.
        apple_child = {**apple_child, "DiffieHellmanGroup": apple_ike["DiffieHellmanGroup"]}

    win_ike_p, win_ike = _pick("Windows (Set-VpnConnectionIPsecConfiguration)", "IKE", ike, _windows_ike)
    win_esp_p, win_esp = _pick("Windows (Set-VpnConnectionIPsecConfiguration)", "ESP", esp, _windows_esp)
    windows = {
        "AuthenticationTransformConstants": win_esp["AuthenticationTransformConstants"],
        "CipherTransformConstants": win_esp["CipherTransformConstants"],
        "EncryptionMethod": win_ike["EncryptionMethod"],
        "IntegrityCheckMethod": win_ike["IntegrityCheckMethod"],
        "DHGroup": win_ike["DHGroup"],
        "PfsGroup": win_esp["PfsGroup"],
    }

    strongswan_check = lambda p: p if _strongswan_ok(p) else None  # noqa: E731
    android_ike_p, _ = _pick("the strongSwan Android app", "IKE", ike, strongswan_check)
    android_esp_p, _ = _pick("the strongSwan Android app", "ESP", esp, strongswan_check)
    # NetworkManager-strongswan is strongSwan too: every proposal the Android check accepts (at least one,
    # or _pick above raised), in the farm's order.
    nm_ike = [p.text for p in ike if _strongswan_ok(p)]
    nm_esp = [p.text for p in esp if _strongswan_ok(p)]

    chosen = {
        "apple": {"ike": apple_ike_p.text, "esp": apple_esp_p.text},
        "windows": {"ike": win_ike_p.text, "esp": win_esp_p.text},
        "android": {"ike": android_ike_p.text, "esp": android_esp_p.text},
        "networkmanager": {"ike": ", ".join(nm_ike), "esp": ", ".join(nm_esp)},
        "swanctl": {"ike": ", ".join(p.text for p in ike), "esp": ", ".join(p.text for p in esp)},
    }
    return ClientProposals(
        apple_ike=apple_ike,
        apple_child=apple_child,
        apple_pfs=apple_pfs,
        windows=windows,
        android_ike=android_ike_p.text,
        android_esp=android_esp_p.text,
        networkmanager_ike=";".join(nm_ike),
        networkmanager_esp=";".join(nm_esp),
        swanctl_ike=", ".join(p.text for p in ike),
        swanctl_esp=", ".join(p.text for p in esp),
        chosen=chosen,
    )
