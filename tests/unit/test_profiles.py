"""svpn.access.bundles.profiles and svpn.access.bundles.guides: farm settings, PKCS#12, client profiles,
install guides, bundle files."""

from __future__ import annotations

import base64
import configparser
import html.parser
import json
import os
import plistlib
import re
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from svpn_testing.pki import PASS, make_ca

from svpn.access.bundles import bundle, guides, profiles
from svpn.access.pki.ca import CA, load_ca
from svpn.access.pki.certs import PrivateKey
from svpn.access.pki.issuing import issue_user
from svpn.access.pki.user_keys import read_user_key
from svpn.access.pki.validation import validate_email
from svpn.core.errors import SvpnError
from svpn.farm import proposals

REPO = Path(__file__).resolve().parents[2]
ALL_YML = """\
svpn_lab: true
svpn_pki_dir: "{{ playbook_dir }}/../.lab/pki"
svpn_vpn_name: vpn.svpn.test
svpn_public_address: 198.18.1.10
svpn_tunnel_mode: %(mode)s
svpn_internal_networks:
  - 198.18.2.0/24
  - 198.18.3.0/24
svpn_dns_servers:
  - 198.18.2.53
svpn_ike_proposals:
  - aes256gcm16-prfsha384-ecp384
  - aes128gcm16-prfsha256-ecp256
svpn_esp_proposals:
  - aes256gcm16-ecp384
  - aes128gcm16-ecp256
"""
OID_3DES_PBE = bytes.fromhex("060a2a864886f70d010c0103")  # pbeWithSHAAnd3-KeyTripleDES-CBC
OID_AES256_CBC = bytes.fromhex("060960864801650304012a")  # aes256-CBC, 2.16.840.1.101.3.4.1.42


def inventory(tmp_path: Path, mode: str = "split", text: str | None = None) -> Path:
    inv = tmp_path / f"inv-{mode}"
    (inv / "group_vars").mkdir(parents=True, exist_ok=True)
    (inv / "group_vars" / "all.yml").write_text(text if text is not None else ALL_YML % {"mode": mode})
    (inv / "hosts.yml").write_text("all: {}\n")  # a farm's hosts: none needed for bundles
    return inv


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    make_ca(tmp_path / "pki")
    return load_ca(tmp_path / "pki", PASS)


@pytest.fixture
def ctx(tmp_path: Path, ca: CA) -> bundle.BundleContext:
    settings = bundle.load_farm_settings(inventory(tmp_path))
    return bundle.BundleContext.create(settings, ca.cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture
def issued(tmp_path: Path, ca: CA) -> tuple[PrivateKey, x509.Certificate]:
    result = issue_user(tmp_path / "pki", ca, "jkim", email="jkim@city.example.kr", name="Kim Jiwoo")
    key = read_user_key(tmp_path / "pki", ca.user_kek(), "jkim")
    return key, x509.load_pem_x509_certificate(result.cert_path.read_bytes())


USER = bundle.UserInfo("jkim", "O'Kim & <Jiwoo>", "jkim@city.example.kr", "IT")


# --------------------------------------------------------------------------- farm settings


def test_the_lab_inventory_gives_valid_farm_settings() -> None:
    settings = bundle.load_farm_settings(REPO / "inventories" / "lab")
    assert settings.vpn_name and settings.ike_proposals and settings.esp_proposals
    proposals.for_clients(settings.ike_proposals, settings.esp_proposals)


def test_farm_settings_are_read_and_derived(tmp_path: Path) -> None:
    split = bundle.load_farm_settings(inventory(tmp_path))
    assert split.internal_networks == ("198.18.2.0/24", "198.18.3.0/24")
    assert split.remote_ts == split.internal_networks
    assert split.server_name_for_windows == "vpn.svpn.test"  # the address is an IP: dial the name
    full = bundle.load_farm_settings(inventory(tmp_path, "full"))
    assert full.remote_ts == ("0.0.0.0/0",)
    assert split.fingerprint() != full.fingerprint()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("svpn_vpn_name: vpn.svpn.test", ""), "svpn_vpn_name is missing"),
        (("svpn_public_address: 198.18.1.10", "svpn_public_address: '{{ vip }}'"), "not a Jinja template"),
        (("svpn_tunnel_mode: split", "svpn_tunnel_mode: both"), "svpn_tunnel_mode 'both' is not valid"),
        (("- 198.18.3.0/24", "- 198.18.3.1/24"), "'198.18.3.1/24' is not a network"),
        (("- 198.18.2.53", "- dns.example"), "'dns.example' is not an IP address"),
        (("svpn_dns_servers:\n  - 198.18.2.53", "svpn_dns_servers: '{{ dns }}'"), "must be a list of IP"),
        (("- aes256gcm16-ecp384", "- aes256gcm16-ecp999"), "'ecp999' is unknown"),
        (("- aes128gcm16-prfsha256-ecp256", "- aes128gcm16-prfsha256-curve25519"), None),
        (("- aes256gcm16-ecp384", "- 3des-sha1-modp1024"), "'3des-sha1-modp1024' is refused by the crypto"),
        (("- aes128gcm16-prfsha256-ecp256", "- aes128-md5-modp1024"), "md5: HMAC-MD5, MD5 is broken"),
        (("- aes128gcm16-ecp256", "- aes128gcm16"), "ESP proposal 'aes128gcm16' has no DH group"),
        (("svpn_lab: true", "svpn_esp_pfs_optional: 'yes'"), "svpn_esp_pfs_optional must be a literal true"),
    ],
)
def test_bad_farm_settings_are_one_line_errors(
    tmp_path: Path, change: tuple[str, str], needle: str | None
) -> None:
    text = (ALL_YML % {"mode": "split"}).replace(*change)
    if needle is None:  # still valid: Windows uses the first proposal
        bundle.load_farm_settings(inventory(tmp_path, text=text))
        return
    with pytest.raises(SvpnError) as err:
        bundle.load_farm_settings(inventory(tmp_path, text=text))
    assert needle in str(err.value) and "\n" not in str(err.value)


OPT_OUT = "svpn_esp_pfs_optional: true\n"


def test_a_legacy_farm_may_opt_out_of_pfs_but_not_out_of_the_allowlist(tmp_path: Path, ca: CA) -> None:
    legacy = (ALL_YML % {"mode": "split"}).replace("- aes128gcm16-ecp256", "- aes128gcm16")
    with pytest.raises(
        SvpnError, match=r"group all: svpn_esp_proposals: ESP proposal 'aes128gcm16' has no DH"
    ):
        bundle.load_farm_settings(inventory(tmp_path, text=legacy))
    settings = bundle.load_farm_settings(inventory(tmp_path, text=legacy + OPT_OUT))
    assert settings.esp_pfs_optional and settings.esp_proposals == ("aes256gcm16-ecp384", "aes128gcm16")
    ctx = bundle.BundleContext.create(settings, ca.cert.public_bytes(serialization.Encoding.PEM))
    assert "esp_proposals = aes256gcm16-ecp384, aes128gcm16" in profiles.swanctl_conf(ctx, USER).decode()
    # the opt-out changes no profile, so it does not change the fingerprint either
    strict = bundle.load_farm_settings(inventory(tmp_path))
    relaxed = bundle.load_farm_settings(inventory(tmp_path, text=ALL_YML % {"mode": "split"} + OPT_OUT))
    assert relaxed.esp_pfs_optional and not strict.esp_pfs_optional
    assert relaxed.fingerprint() == strict.fingerprint()
    weak = legacy.replace("- aes128gcm16\n", "- aes128gcm16-sha1\n") + OPT_OUT
    with pytest.raises(SvpnError, match="is refused by the crypto policy"):
        bundle.load_farm_settings(inventory(tmp_path, text=weak))


def test_farm_settings_made_any_other_way_keep_the_policy_too() -> None:
    with pytest.raises(SvpnError, match="has no DH group"):
        bundle.FarmSettings(
            "vpn.svpn.test",
            "198.18.1.10",
            "split",
            ("198.18.2.0/24",),
            (),
            ("aes256gcm16-prfsha384-ecp384",),
            ("aes256gcm16",),
        )


def test_missing_inventory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SvpnError, match=r"has no group_vars/all\.yml"):
        bundle.load_farm_settings(tmp_path / "nowhere")


# --------------------------------------------------------------------------- secrets


def test_generated_passwords_have_at_least_96_bits_and_differ() -> None:
    import math

    bits = (
        profiles.PASSWORD_GROUPS
        * profiles.PASSWORD_GROUP_LEN
        * math.log2(len(set(profiles.PASSWORD_ALPHABET)))
    )
    assert bits >= 96
    seen = {profiles.generate_password() for _ in range(2000)}
    assert len(seen) == 2000
    pattern = re.compile(rf"^[{profiles.PASSWORD_ALPHABET}]{{5}}(-[{profiles.PASSWORD_ALPHABET}]{{5}}){{3}}$")
    assert all(pattern.match(p) for p in seen)


def test_pkcs12_loads_back_with_its_password(issued, ca: CA) -> None:
    key, cert = issued
    data = profiles.build_p12("jkim", key, cert, ca.cert, "abcde-fghjk-mnpqr-stuvw")
    loaded_key, loaded_cert, extra = pkcs12.load_key_and_certificates(data, b"abcde-fghjk-mnpqr-stuvw")
    assert loaded_cert == cert and extra == [ca.cert]
    assert loaded_key is not None
    assert loaded_key.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    assert OID_AES256_CBC in data and OID_3DES_PBE not in data
    assert b"\x02\x02\x08\x00" in data  # 2,048 KDF rounds
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(data, b"wrong")


def test_legacy_pkcs12_uses_3des_and_still_loads(issued, ca: CA) -> None:
    key, cert = issued
    data = profiles.build_p12("jkim", key, cert, ca.cert, "pw-pw", legacy=True)
    assert OID_3DES_PBE in data and OID_AES256_CBC not in data
    assert pkcs12.load_key_and_certificates(data, b"pw-pw")[1] == cert


def test_encrypted_key_pem_needs_the_password(issued) -> None:
    key, _cert = issued
    pem = profiles.encrypted_key_pem(key, "pw-pw")
    # What strongSwan's pem plugin decrypts (checked by hand with strongSwan 5.9.8's pki --keyid).
    assert pem.startswith(b"-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, None)
    serialization.load_pem_private_key(pem, b"pw-pw")


# --------------------------------------------------------------------------- profiles


def test_mobileconfig_is_a_plist_with_the_mapped_proposals(ctx: bundle.BundleContext, ca: CA) -> None:
    p12 = b"\x00\x01fake-pkcs12\xff" * 40
    data = profiles.mobileconfig(ctx, USER, p12)
    profile = plistlib.loads(data)
    assert profile["PayloadType"] == "Configuration"
    assert (
        profile["PayloadDescription"] == "IKEv2 VPN vpn.svpn.test for O'Kim & <Jiwoo> <jkim@city.example.kr>"
    )
    root, cert, vpn = profile["PayloadContent"]
    assert root["PayloadType"] == "com.apple.security.root"
    assert root["PayloadContent"] == ca.cert.public_bytes(serialization.Encoding.DER)
    assert cert["PayloadType"] == "com.apple.security.pkcs12" and cert["PayloadContent"] == p12
    assert "Password" not in cert  # the password is never in the bundle
    assert vpn["PayloadType"] == "com.apple.vpn.managed" and vpn["VPNType"] == "IKEv2"
    ike = vpn["IKEv2"]
    expected = proposals.for_clients(ctx.settings.ike_proposals, ctx.settings.esp_proposals)
    assert ike["IKESecurityAssociationParameters"] == expected.apple_ike
    assert ike["IKESecurityAssociationParameters"] == {
        "EncryptionAlgorithm": "AES-256-GCM",
        "IntegrityAlgorithm": "SHA2-384",
        "DiffieHellmanGroup": 20,
    }
    assert ike["ChildSecurityAssociationParameters"] == expected.apple_child
    assert ike["EnablePFS"] == 1
    assert ike["AuthenticationMethod"] == "Certificate"
    assert ike["PayloadCertificateUUID"] == cert["PayloadUUID"]
    assert ike["LocalIdentifier"] == USER.email
    assert (ike["RemoteIdentifier"], ike["RemoteAddress"]) == ("vpn.svpn.test", "198.18.1.10")
    assert ike["ServerCertificateIssuerCommonName"] == "Test VPN CA"
    assert ike["DisableMOBIKE"] == 1
    assert vpn["DNS"]["ServerAddresses"] == ["198.18.2.53"]
    uuids = [profile["PayloadUUID"], root["PayloadUUID"], cert["PayloadUUID"], vpn["PayloadUUID"]]
    assert len(set(uuids)) == 4
    other = plistlib.loads(profiles.mobileconfig(ctx, bundle.UserInfo("mlee", "Lee", "m@x.example"), p12))
    assert other["PayloadUUID"] != profile["PayloadUUID"]
    assert profiles.mobileconfig(ctx, USER, p12) == data  # stable: a re-import replaces, not duplicates


def test_sswan_is_json_for_the_strongswan_app(ctx: bundle.BundleContext, ca: CA) -> None:
    p12 = b"fake-p12"
    profile = json.loads(profiles.sswan(ctx, USER, p12))
    assert profile["type"] == "ikev2-cert"
    assert profile["remote"] == {
        "addr": "198.18.1.10",
        "id": "vpn.svpn.test",
        "cert": base64.b64encode(ca.cert.public_bytes(serialization.Encoding.DER)).decode(),
    }
    assert profile["local"] == {"id": USER.email, "p12": base64.b64encode(p12).decode()}
    assert profile["ike-proposal"] == "aes256gcm16-prfsha384-ecp384"
    assert profile["esp-proposal"] == "aes256gcm16-ecp384"
    assert profile["split-tunneling"] == {"subnets": ["198.18.2.0/24", "198.18.3.0/24"]}
    assert re.fullmatch(r"[0-9a-f-]{36}", profile["uuid"])


def test_full_tunnel_profiles_route_everything(tmp_path: Path, ca: CA) -> None:
    settings = bundle.load_farm_settings(inventory(tmp_path, "full"))
    ctx = bundle.BundleContext.create(settings, ca.cert.public_bytes(serialization.Encoding.PEM))
    assert "split-tunneling" not in json.loads(profiles.sswan(ctx, USER, b"x"))
    ps1 = profiles.windows_ps1(ctx, USER).decode("utf-8-sig")
    assert "-SplitTunneling" not in ps1 and "Add-VpnConnectionRoute" not in ps1
    assert "remote_ts = 0.0.0.0/0" in profiles.swanctl_conf(ctx, USER).decode()
    assert "never-default" not in profiles.nmconnection(ctx, USER).decode()


def test_windows_script_sets_the_mapped_ipsec_configuration(ctx: bundle.BundleContext) -> None:
    raw = profiles.windows_ps1(ctx, USER)
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Windows PowerShell 5.1
    text = raw.decode("utf-8-sig")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    assert "Import-PfxCertificate -FilePath (Join-Path $here 'jkim.p12')" in text
    assert "Add-VpnConnection -Name $name -ServerAddress 'vpn.svpn.test' -TunnelType Ikev2" in text
    assert "-AuthenticationMethod MachineCertificate" in text and "-SplitTunneling" in text
    client = proposals.for_clients(ctx.settings.ike_proposals, ctx.settings.esp_proposals)
    for param, value in client.windows.items():
        assert re.search(rf"-{param} {value}\b", text), param
    assert "-AuthenticationTransformConstants GCMAES256" in text and "-PfsGroup ECP384" in text
    assert text.count("Add-VpnConnectionRoute") == 2


def test_networkmanager_keyfile(ctx: bundle.BundleContext) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(profiles.nmconnection(ctx, USER).decode())
    vpn = parser["vpn"]
    assert vpn["service-type"] == "org.freedesktop.NetworkManager.strongswan"
    assert (vpn["address"], vpn["remote-identity"], vpn["local-identity"]) == (
        "198.18.1.10",
        "vpn.svpn.test",
        USER.email,
    )
    assert (vpn["method"], vpn["usercert"], vpn["userkey"]) == (
        "cert",
        "/etc/svpn/jkim.crt",
        "/etc/svpn/jkim.key",
    )
    assert vpn["ike"] == "aes256gcm16-prfsha384-ecp384;aes128gcm16-prfsha256-ecp256"
    assert vpn["esp"] == "aes256gcm16-ecp384;aes128gcm16-ecp256"
    assert parser["ipv4"]["never-default"] == "true"


def test_swanctl_conf_carries_the_farm_proposals_unchanged(ctx: bundle.BundleContext) -> None:
    text = profiles.swanctl_conf(ctx, USER).decode()
    assert "proposals = aes256gcm16-prfsha384-ecp384, aes128gcm16-prfsha256-ecp256" in text
    assert "esp_proposals = aes256gcm16-ecp384, aes128gcm16-ecp256" in text
    assert "remote_ts = 198.18.2.0/24, 198.18.3.0/24" in text
    assert 'id = "jkim@city.example.kr"' in text and "certs = jkim.crt" in text
    assert text.count("{") == text.count("}")


def test_unusual_but_valid_values_survive_every_profile(ctx: bundle.BundleContext) -> None:
    email = validate_email("o'neil$x{y}#z@city.example.kr")
    user = bundle.UserInfo("o.neil", "O'Neil $HOME <&>", email, "Dept ${x}")
    apple = plistlib.loads(profiles.mobileconfig(ctx, user, b"p12"))
    assert apple["PayloadContent"][2]["IKEv2"]["LocalIdentifier"] == email
    assert apple["PayloadDescription"].endswith(f"for O'Neil $HOME <&> <{email}>")
    assert json.loads(profiles.sswan(ctx, user, b"p12"))["local"]["id"] == email
    assert f'id = "{email}"' in profiles.swanctl_conf(ctx, user).decode()  # quoted: '#' starts a comment
    assert f"local-identity={email}" in profiles.nmconnection(ctx, user).decode()
    ps1 = profiles.windows_ps1(ctx, user).decode("utf-8-sig")
    assert f"o.neil <{email}>" in ps1 and "$ErrorActionPreference = 'Stop'" in ps1


# --------------------------------------------------------------------------- guides


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.lang = ""
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.lang = dict(attrs).get("lang") or ""
        if tag not in ("meta", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_guides_exist_per_os_in_korean_and_english_html_and_markdown(
    ctx: bundle.BundleContext, issued
) -> None:
    _key, cert = issued
    files = guides.render_all(ctx, USER, cert)
    readme = files.pop("README.txt").decode()
    assert "guides/windows.html" in readme and "jkim.mobileconfig" in readme and "비밀번호" in readme
    assert set(files) == {f"guides/{o}.{fmt}" for o in guides.OSES for fmt in ("html", "md")}
    assert set(guides.OSES) == {"ios", "macos", "android", "windows", "linux"}
    hangul = re.compile("[\uac00-\ud7a3]")
    for name, data in files.items():
        text = data.decode()
        assert "${" not in text, name
        korean, english = text.split("Before you start")[0], text.split("Before you start")[1]
        assert len(hangul.findall(korean)) > 100, name  # the Korean guide comes first ...
        assert len(hangul.findall(english)) <= len("한국어"), name  # ... then the English one
        assert "시작하기 전에" in korean and "연결 확인" in korean and "연결되지 않을 때" in korean, name
        assert "Check that it works" in english and "If it does not work" in english, name
        assert text.count("jkim") >= 2 and text.count(f"{cert.serial_number:x}") >= 4, name
        if name.endswith(".html"):
            parser = _Tags()
            parser.feed(text)
            assert parser.stack == [] and parser.lang == "ko", name
            assert '<section id="ko" lang="ko">' in text and '<section id="en" lang="en">' in text
            assert "<Jiwoo>" not in text and "&lt;Jiwoo&gt;" in text  # escaped in HTML
        else:
            assert "O'Kim & <Jiwoo>" in text
            assert '<a id="ko"></a>' in text and '<a id="en"></a>' in text
    windows = files["guides/windows.md"].decode()
    assert "jkim-windows.ps1" in windows and "Test-NetConnection 198.18.2.53" in windows
    assert "$env:USERPROFILE" in windows
    assert "jkim.mobileconfig" in files["guides/ios.md"].decode()
    assert "jkim.mobileconfig" in files["guides/macos.html"].decode()
    assert "jkim.sswan" in files["guides/android.html"].decode()
    assert "jkim.nmconnection" in files["guides/linux.html"].decode()


def test_guides_name_the_helpdesk_when_the_inventory_does(tmp_path: Path, ca: CA, issued) -> None:
    text = ALL_YML % {"mode": "split"} + 'svpn_helpdesk: "helpdesk@city.example.kr, 02-120"\n'
    settings = bundle.load_farm_settings(inventory(tmp_path, text=text))
    ctx = bundle.BundleContext.create(settings, ca.cert.public_bytes(serialization.Encoding.PEM))
    files = guides.render_all(ctx, USER, issued[1])
    text = files["guides/macos.md"].decode()
    assert "헬프데스크(helpdesk@city.example.kr, 02-120)에" in text
    assert "Send the helpdesk (helpdesk@city.example.kr, 02-120) an e-mail" in text


# --------------------------------------------------------------------------- bundle files


def test_bundle_files_and_their_modes(tmp_path: Path, ctx: bundle.BundleContext, issued) -> None:
    key, cert = issued
    creds = profiles.new_credentials(ctx, "jkim", key, cert, "pw-pw")
    files = profiles.bundle_files(ctx, USER, cert, creds)
    assert {n for n in files if not n.startswith("guides/")} == {
        "README.txt",
        "jkim.p12",
        "jkim.key",
        "jkim.crt",
        "ca.crt",
        "jkim.mobileconfig",
        "jkim.sswan",
        "jkim-windows.ps1",
        "jkim.nmconnection",
        "swanctl.conf",
    }
    bundles = tmp_path / "bundles"
    folder = profiles.write_bundle(bundles, "jkim", files)
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
    assert stat.S_IMODE(bundles.stat().st_mode) == 0o700
    assert (folder / "jkim.p12").read_bytes() == creds.p12
    assert b"pw-pw" not in b"".join(files.values())


def test_rewriting_a_bundle_swaps_it_whole(tmp_path: Path) -> None:
    bundles = tmp_path / "bundles"
    profiles.write_bundle(bundles, "jkim", {"a.txt": b"old", "old-only.txt": b"x", "guides/g.md": b"g"})
    profiles.write_bundle(bundles, "jkim", {"a.txt": b"new", "guides/g.md": b"h"})
    assert sorted(p.relative_to(bundles).as_posix() for p in bundles.rglob("*")) == [
        "jkim",
        "jkim/a.txt",
        "jkim/guides",
        "jkim/guides/g.md",
    ]
    assert (bundles / "jkim" / "a.txt").read_bytes() == b"new"
    (bundles / ".mlee.new-abc").mkdir()
    profiles.clean_staging(bundles)
    assert os.listdir(bundles) == ["jkim"]
