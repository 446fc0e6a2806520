"""svpn.proposals: the one table from strongSwan proposal keywords to each client's vocabulary."""

from __future__ import annotations

import pytest

from svpn import proposals
from svpn.errors import SvpnError

LAB_IKE = ["aes256gcm16-prfsha384-ecp384", "aes256gcm16-prfsha256-curve25519", "aes128gcm16-prfsha256-ecp256"]
LAB_ESP = ["aes256gcm16-ecp384", "aes256gcm16-curve25519", "aes128gcm16-ecp256", "aes256gcm16", "aes128gcm16"]

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
        proposals.for_clients(["aes256gcm16-prfsha384-curve25519"], ["aes256gcm16"])
    with pytest.raises(SvpnError, match=r"ESP proposals can be expressed for Windows"):
        proposals.for_clients(["aes256gcm16-prfsha384-ecp384"], ["chacha20poly1305"])
    with pytest.raises(SvpnError, match=r"Apple"):
        proposals.for_clients(["aes192gcm16-prfsha384-ecp384"], ["aes256gcm16"])


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
    client = proposals.for_clients(ike, ["aes256gcm16"])
    assert client.chosen["apple"]["ike"] == ike[1] and client.chosen["windows"]["ike"] == ike[1]
    assert client.apple_ike["IntegrityAlgorithm"] == "SHA2-384"


def test_esp_without_a_group_means_no_pfs() -> None:
    client = proposals.for_clients(LAB_IKE, ["aes256gcm16"])
    assert client.windows["PfsGroup"] == "None"
    assert not client.apple_pfs
    assert client.apple_child["DiffieHellmanGroup"] == client.apple_ike["DiffieHellmanGroup"]


@pytest.mark.parametrize(
    ("text", "kind", "needle"),
    [
        ("aes256gcm16-prfsha384-ecp999", "ike", "'ecp999' is unknown"),
        ("blowfish-sha256-modp2048", "ike", "'blowfish' is unknown"),
        ("aes256gcm16-prfsha384-ecp384", "esp", "'prfsha384' is unknown"),
        ("3des-sha1-modp1024", "ike", "'3des' is unknown"),
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
