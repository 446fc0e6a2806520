"""svpn.farm.proposals: the one table from strongSwan proposal keywords to each client's vocabulary."""

from __future__ import annotations

import pytest

from svpn.core.errors import SvpnError
from svpn.farm import proposals

LAB_IKE = ["aes256gcm16-prfsha384-ecp384", "aes256gcm16-prfsha256-curve25519", "aes128gcm16-prfsha256-ecp256"]
LAB_ESP = ["aes256gcm16-ecp384", "aes256gcm16-curve25519", "aes128gcm16-ecp256"]

# Accepted values, as documented by Microsoft (VpnClient module) and Apple (com.apple.vpn.managed).
WIN_ENCRYPTION = {"DES", "DES3", "AES128", "AES192", "AES256", "GCMAES128", "GCMAES256"}
WIN_INTEGRITY = {"MD5", "SHA1", "SHA256", "SHA384"}
WIN_DH = {"None", "Group1", "Group2", "Group14", "ECP256", "ECP384", "Group24"}
WIN_CIPHER = {"DES", "DES3", "AES128", "AES192", "AES256", "GCMAES128", "GCMAES192", "GCMAES256", "None"}
WIN_AUTH = {"MD596", "SHA196", "SHA256128", "GCMAES128", "GCMAES192", "GCMAES256", "None"}
WIN_PFS = {"None", "PFS1", "PFS2", "PFS2048", "ECP256", "ECP384", "PFSMM", "PFS24"}
APPLE_ENCRYPTION = {"DES", "3DES", "AES-128", "AES-256", "AES-128-GCM", "AES-256-GCM", "ChaCha20Poly1305"}
APPLE_INTEGRITY = {"SHA1-96", "SHA1-160", "SHA2-256", "SHA2-384", "SHA2-512"}
APPLE_DH = {1, 2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 31, 32}


def test_lab_proposals_give_the_documented_windows_and_apple_values() -> None:
    client = proposals.for_clients(LAB_IKE, LAB_ESP)
    assert client.windows == {
        "AuthenticationTransformConstants": "GCMAES256",
        "CipherTransformConstants": "GCMAES256",
        "EncryptionMethod": "GCMAES256",
        "IntegrityCheckMethod": "SHA384",
        "DHGroup": "ECP384",
        "PfsGroup": "ECP384",
    }
    assert client.apple_ike == {
        "EncryptionAlgorithm": "AES-256-GCM",
        "IntegrityAlgorithm": "SHA2-384",
        "DiffieHellmanGroup": 20,
    }
    assert client.apple_child["EncryptionAlgorithm"] == "AES-256-GCM"
    assert client.apple_child["DiffieHellmanGroup"] == 20 and client.apple_pfs
    assert (client.android_ike, client.android_esp) == (LAB_IKE[0], LAB_ESP[0])
    assert client.networkmanager_ike == ";".join(LAB_IKE)
    assert client.networkmanager_esp == ";".join(LAB_ESP)
    assert client.swanctl_ike == ", ".join(LAB_IKE)
    assert client.chosen["windows"] == {"ike": LAB_IKE[0], "esp": LAB_ESP[0]}


def test_each_client_gets_the_first_proposal_it_can_express() -> None:
    ike = ["aes256gcm16-prfsha384-curve25519", "aes128gcm16-prfsha256-ecp256"]
    esp = ["chacha20poly1305-curve25519", "aes128gcm16-ecp256"]
    client = proposals.for_clients(ike, esp)
    # Apple knows curve25519 (group 31) and ChaCha20-Poly1305; Windows knows neither.
    assert client.apple_ike["DiffieHellmanGroup"] == 31
    assert client.apple_child["EncryptionAlgorithm"] == "ChaCha20Poly1305"
    assert client.windows["DHGroup"] == "ECP256" and client.windows["EncryptionMethod"] == "GCMAES128"
    assert client.windows["CipherTransformConstants"] == "GCMAES128"
    assert client.chosen["windows"] == {"ike": ike[1], "esp": esp[1]}
    assert client.chosen["apple"] == {"ike": ike[0], "esp": esp[0]}


def test_a_client_that_can_express_no_proposal_is_an_error() -> None:
    with pytest.raises(SvpnError, match=r"IKE proposals can be expressed for Windows.*curve25519"):
        proposals.for_clients(["aes256gcm16-prfsha384-curve25519"], ["aes256gcm16-ecp384"])
    with pytest.raises(SvpnError, match=r"ESP proposals can be expressed for Windows"):
        proposals.for_clients(["aes256gcm16-prfsha384-ecp384"], ["chacha20poly1305-ecp384"])
    with pytest.raises(SvpnError, match=r"Apple"):
        proposals.for_clients(["aes192gcm16-prfsha384-ecp384"], ["aes256gcm16-ecp384"])


def test_non_aead_proposals_map_integrity_and_modp_groups() -> None:
    client = proposals.for_clients(["aes256-sha256-modp2048"], ["aes256-sha256-modp2048"])
    assert client.apple_ike == {
        "EncryptionAlgorithm": "AES-256",
        "IntegrityAlgorithm": "SHA2-256",
        "DiffieHellmanGroup": 14,
    }
    assert client.windows == {
        "AuthenticationTransformConstants": "SHA256128",
        "CipherTransformConstants": "AES256",
        "EncryptionMethod": "AES256",
        "IntegrityCheckMethod": "SHA256",
        "DHGroup": "Group14",
        "PfsGroup": "PFS2048",
    }


def test_a_prf_that_differs_from_the_integrity_cannot_be_expressed_by_apple_or_windows() -> None:
    ike = ["aes256-sha256-prfsha384-ecp384", "aes256-sha384-ecp384"]
    client = proposals.for_clients(ike, ["aes256gcm16-ecp384"])
    assert client.chosen["apple"]["ike"] == ike[1] and client.chosen["windows"]["ike"] == ike[1]
    assert client.apple_ike["IntegrityAlgorithm"] == "SHA2-384"


def test_esp_without_a_group_means_no_pfs_when_the_farm_opts_out() -> None:
    client = proposals.for_clients(LAB_IKE, ["aes256gcm16"], allow_esp_without_pfs=True)
    assert client.windows["PfsGroup"] == "None"
    assert not client.apple_pfs
    assert client.apple_child["DiffieHellmanGroup"] == client.apple_ike["DiffieHellmanGroup"]


@pytest.mark.parametrize(
    ("text", "kind", "needle"),
    [
        ("aes256gcm16-prfsha384-ecp999", "ike", "'ecp999' is unknown"),
        ("camellia256-sha256-modp2048", "ike", "'camellia256' is unknown"),
        # strongSwan 6 (Debian 13) parses ML-KEM and additional key exchanges, but Debian ships no ML-KEM
        # provider and strongSwan 5.9 (Debian 12) refuses the keywords: no farm, mixed or not, may use them.
        ("aes256gcm16-prfsha384-mlkem768", "ike", "'mlkem768' is unknown"),
        ("aes256gcm16-prfsha384-ecp384-ke1_mlkem768", "ike", "'ke1_mlkem768' is unknown"),
        ("aes256gcm16-prfsha384-ecp384", "esp", "'prfsha384' is unknown"),
        ("3des-sha1-modp1024", "ike", "refused by the crypto policy: 3des: 3DES"),
        ("aes256gcm16-sha256-prfsha256-ecp384", "ike", "AEAD cipher takes no integrity"),
        ("aes256-prfsha256-ecp384", "ike", "needs an integrity algorithm"),
        ("aes256gcm16-ecp384", "ike", "needs a PRF"),
        ("aes256gcm16-prfsha384", "ike", "no key exchange group"),
        ("sha256-ecp384", "esp", "no encryption algorithm"),
        ("aes256gcm16-aes256-sha256", "esp", "mixes AEAD and non-AEAD"),
        ("", "ike", "is empty"),
    ],
)
def test_bad_proposals_are_rejected_with_the_keyword(text: str, kind: str, needle: str) -> None:
    with pytest.raises(SvpnError) as err:
        proposals.parse(text, kind)  # type: ignore[arg-type]
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_keyword_in_the_farm_list_is_an_error_for_every_client() -> None:
    with pytest.raises(SvpnError, match="'ecp9000' is unknown"):
        proposals.for_clients([*LAB_IKE, "aes256gcm16-prfsha384-ecp9000"], LAB_ESP)
    with pytest.raises(SvpnError, match="non-empty list"):
        proposals.for_clients([], LAB_ESP)


def test_aliases_and_esp_flags_are_understood() -> None:
    p = proposals.parse("AES256GCM-prfsha2_384-x25519", "ike")
    assert (p.encryption, p.prf, p.dh) == (("aes256gcm16",), ("prfsha384",), ("curve25519",))
    assert proposals.parse("aes128gcm16-ecp256-esn", "esp").dh == ("ecp256",)


def test_every_table_value_is_in_the_clients_documented_vocabulary() -> None:
    for algo in proposals.ALGORITHMS.values():
        if algo.kind in ("enc", "aead"):
            assert algo.apple is None or algo.apple in APPLE_ENCRYPTION, algo
            assert algo.win_ike is None or algo.win_ike in WIN_ENCRYPTION, algo
            assert algo.win_esp is None or algo.win_esp in WIN_CIPHER, algo
            if algo.kind == "aead" and algo.win_esp is not None:
                assert algo.win_esp in WIN_AUTH, algo  # GCM goes in both transforms
        elif algo.kind in ("integ", "prf"):
            assert algo.apple is None or algo.apple in APPLE_INTEGRITY, algo
            assert algo.win_ike is None or algo.win_ike in WIN_INTEGRITY, algo
            assert algo.win_esp is None or algo.win_esp in WIN_AUTH, algo
        else:
            assert algo.apple is None or algo.apple in APPLE_DH, algo
            assert algo.win_ike is None or algo.win_ike in WIN_DH, algo
            assert algo.win_esp is None or algo.win_esp in WIN_PFS, algo


# --------------------------------------------------------------------------- the crypto policy

# What the policy allows, written out: a row added to ALGORITHMS without a `refused` reason shows up here.
ALLOWED = {
    "enc": {"aes128", "aes192", "aes256"},
    "aead": {"aes128gcm16", "aes192gcm16", "aes256gcm16", "chacha20poly1305"},
    "integ": {"sha256", "sha384", "sha512"},
    "prf": {"prfsha256", "prfsha384", "prfsha512"},
    "dh": {"modp2048", "modp3072", "modp4096", "modp6144", "modp8192"}
    | {"ecp256", "ecp384", "ecp521", "curve25519", "curve448"},
}


def test_the_allowlist_is_the_table_minus_its_refused_rows() -> None:
    allowed: dict[str, set[str]] = {}
    for algo in proposals.ALGORITHMS.values():
        if not algo.refused:
            allowed.setdefault(algo.kind, set()).add(algo.keyword)
        else:  # a refused row gives no client anything to offer
            assert (algo.apple, algo.win_ike, algo.win_esp, algo.strongswan) == (None, None, None, False), (
                algo
            )
    assert allowed == ALLOWED


@pytest.mark.parametrize(
    ("text", "kind", "reason"),
    [
        ("3des-sha256-modp2048", "ike", "3des: 3DES, 64-bit blocks"),
        ("des-sha256-ecp256", "esp", "des: DES, a 56-bit key"),
        ("blowfish-sha256-ecp256", "esp", "blowfish: Blowfish, 64-bit blocks"),
        ("blowfish256-sha256-ecp256", "esp", "blowfish256: Blowfish, 64-bit blocks"),
        ("cast128-sha256-ecp256", "esp", "cast128: CAST-128, 64-bit blocks"),
        ("null-sha256-ecp256", "esp", "null: NULL encryption, no confidentiality"),
        ("aes256-sha1-ecp256", "esp", "sha1: HMAC-SHA-1, deprecated"),
        ("aes256-sha-modp2048", "ike", "sha: HMAC-SHA-1, deprecated"),
        ("aes256-sha1_160-ecp256", "esp", "sha1_160: HMAC-SHA-1"),
        ("aes256gcm16-prfsha1-ecp384", "ike", "prfsha1: PRF-HMAC-SHA-1"),
        ("aes256-md5-ecp384", "esp", "md5: HMAC-MD5, MD5 is broken"),
        ("aes256gcm16-prfmd5-ecp384", "ike", "prfmd5: PRF-HMAC-MD5"),
        ("aes256gcm16-prfsha256-modp768", "ike", "modp768: MODP group 1, 768 bits: below 2048"),
        ("aes256gcm16-prfsha256-modp1024", "ike", "modp1024: MODP group 2, 1024 bits: below 2048"),
        ("aes256gcm16-modp1536", "esp", "modp1536: MODP group 5, 1536 bits: below 2048"),
        ("aes256gcm16-prfsha256-modp1024s160", "ike", "modp1024s160: RFC 5114 group 22"),
        ("aes256gcm16-modp2048s224", "esp", "modp2048s224: RFC 5114 group 23"),
        ("aes256gcm16-prfsha256-modp2048s256", "ike", "modp2048s256: RFC 5114 group 24"),
        ("aes256gcm16-ecp192", "esp", "ecp192: NIST P-192 (group 25), below 128-bit"),
        ("aes256gcm16-prfsha256-ecp224", "ike", "ecp224: NIST P-224 (group 26), below 128-bit"),
    ],
)
def test_each_weak_class_is_refused_with_its_reason(text: str, kind: str, reason: str) -> None:
    ike, esp = ([text], None) if kind == "ike" else (None, [text])
    field = f"svpn_{kind}_proposals"
    problems = proposals.policy_problems(ike, esp, allow_esp_without_pfs=True)  # the opt-out does not help
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{field}: {kind.upper()} proposal {text!r} is refused by the crypto policy: "
    )
    assert reason in problems[0]
    allowed = problems[0].split(f"allowed {kind.upper()} keywords: ")[1].split(", ")
    assert set(allowed) == set().union(*(v for k, v in ALLOWED.items() if kind == "ike" or k != "prf"))
    with pytest.raises(SvpnError, match="refused by the crypto policy"):
        proposals.parse(text, kind)  # type: ignore[arg-type]


def test_every_refused_row_is_refused_and_every_weak_keyword_is_named() -> None:
    for algo in proposals.ALGORITHMS.values():
        if not algo.refused:
            continue
        text = {
            "enc": f"{algo.keyword}-sha256-ecp384",
            "integ": f"aes256-{algo.keyword}-ecp384",
            "prf": f"aes256gcm16-{algo.keyword}-ecp384",
            "dh": f"aes256gcm16-prfsha384-{algo.keyword}",
        }[algo.kind]
        (problem,) = proposals.policy_problems([text], None)
        assert f"{algo.keyword}: {algo.refused}" in problem, problem
    # every refused keyword of a proposal is named, not just the first
    (problem,) = proposals.policy_problems(["3des-md5-modp1024"], None)
    assert all(f"{keyword}: " in problem for keyword in ("3des", "md5", "modp1024")), problem


def test_non_aead_esp_needs_a_sha2_integrity() -> None:
    assert proposals.policy_problems(None, ["aes256-sha256-ecp384", "aes128-sha512-modp3072"]) == []
    (no_integrity,) = proposals.policy_problems(None, ["aes256-ecp384"])
    assert "'aes256-ecp384': a non-AEAD cipher needs an integrity algorithm" in no_integrity
    (sha1,) = proposals.policy_problems(None, ["aes256-sha1-ecp384"])
    assert "sha1: HMAC-SHA-1" in sha1


@pytest.mark.parametrize(
    ("ike", "esp"),
    [
        (LAB_IKE, LAB_ESP),
        (
            ["aes256-sha384-ecp384", "aes128-sha256-modp2048"],
            ["aes256-sha256-modp2048", "aes128-sha512-ecp521"],
        ),
        (
            ["chacha20poly1305-prfsha512-curve448"],
            ["chacha20poly1305-curve25519", "aes192gcm16-modp8192-esn"],
        ),
        (["AES256GCM-prfsha2_384-x25519"], ["aes256gcm-x448-noesn"]),
    ],
)
def test_good_proposals_keep_the_policy(ike: list[str], esp: list[str]) -> None:
    assert proposals.policy_problems(ike, esp) == []


def test_esp_without_pfs_is_refused_unless_the_farm_opts_out() -> None:
    problems = proposals.policy_problems(LAB_IKE, [*LAB_ESP, "aes256gcm16", "aes128gcm16-esn"])
    assert problems == [
        "svpn_esp_proposals: ESP proposal 'aes256gcm16' has no DH group, so its CHILD_SA rekeys lack perfect "
        "forward secrecy; add one (e.g. aes256gcm16-ecp384) or, only for legacy clients that cannot do PFS, "
        "opt out with svpn_esp_pfs_optional: true",
        "svpn_esp_proposals: ESP proposal 'aes128gcm16-esn' has no DH group, so its CHILD_SA rekeys lack "
        "perfect forward secrecy; add one (e.g. aes128gcm16-esn-ecp384) or, only for legacy clients that "
        "cannot do PFS, opt out with svpn_esp_pfs_optional: true",
    ]
    assert proposals.policy_problems(LAB_IKE, [*LAB_ESP, "aes256gcm16"], allow_esp_without_pfs=True) == []
    with pytest.raises(SvpnError, match="'aes256gcm16' has no DH group"):
        proposals.for_clients(LAB_IKE, ["aes256gcm16"])
    # IKE always has a group; the opt-out is about ESP only
    assert proposals.policy_problems(["aes256gcm16-prfsha384"], None, allow_esp_without_pfs=True) != []


def test_every_problem_is_one_line_naming_the_field_and_the_proposal() -> None:
    problems = proposals.policy_problems(
        ["aes256gcm16-prfsha384-ecp384", "3des-sha1-modp1024", "aes256gcm16-prfsha384-ecp9000"],
        ["aes256gcm16-ecp384", "null", "aes256gcm16"],
        names={"ike": "IKE-FIELD", "esp": "ESP-FIELD", "pfs_optional": "--opt-out"},
    )
    assert [p.split(": ")[0] for p in problems] == ["IKE-FIELD", "IKE-FIELD", "ESP-FIELD", "ESP-FIELD"]
    assert ["3des-sha1-modp1024" in problems[0], "ecp9000" in problems[1]] == [True, True]
    assert "'null' is refused by the crypto policy: null: NULL encryption" in problems[2]
    assert problems[3].endswith("opt out with --opt-out")
    assert all("\n" not in p for p in problems)
    assert proposals.policy_problems([], "aes256gcm16-ecp384") == [  # type: ignore[arg-type]
        "svpn_ike_proposals: must be a non-empty list of strongSwan proposals",
        "svpn_esp_proposals: must be a non-empty list of strongSwan proposals",
    ]


def test_for_clients_refuses_a_weak_farm_whatever_a_client_could_express() -> None:
    with pytest.raises(SvpnError) as err:
        proposals.for_clients([*LAB_IKE, "aes256-sha1-modp1024"], [*LAB_ESP, "3des-sha1"])
    message = str(err.value)
    assert "svpn_ike_proposals: IKE proposal 'aes256-sha1-modp1024' is refused" in message
    assert "svpn_esp_proposals: ESP proposal '3des-sha1' is refused" in message


def test_the_planners_defaults_carry_pfs_for_every_client() -> None:
    from svpn.planning.defaults import DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS

    ike, esp = list(DEFAULT_IKE_PROPOSALS), list(DEFAULT_ESP_PROPOSALS)
    assert proposals.policy_problems(ike, esp) == []
    assert all(proposals.parse(text, "esp").dh for text in esp)
    client = proposals.for_clients(ike, esp)
    assert client.apple_pfs and client.apple_child["DiffieHellmanGroup"] == 20
    assert client.windows["PfsGroup"] == "ECP384"
    for name, chosen in client.chosen.items():
        for text in chosen["esp"].split(", "):
            assert proposals.parse(text, "esp").dh, (name, text)
