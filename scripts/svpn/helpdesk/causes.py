"""Why an attempt failed, in plain words, Korean and English: each attempt of the attempt log gets one cause,
the log lines that show it, and what the agent tells the caller. Pure.

The causes and the charon messages that show them (strongSwan 5.9 and 6.0 write the same ones, at level 1 of
the IKE and configuration subsystems; checked against both on the lab farm):

=====================  ============================================================================
cause                  charon says
=====================  ============================================================================
connected              ``IKE_SA svpn[N] established between`` and no DELETE after it
ended_by_client        ``received DELETE for IKE_SA`` (the device hung up)
ended_by_farm          ``deleting IKE_SA`` after ``established`` (revocation, an operator, a drain)
node_draining          the same, on a node that is being drained now
revoked                ``certificate was revoked on``
expired                ``subject certificate invalid (valid from A to B)``, B before the attempt
not_yet_valid          the same, A after the attempt
unknown_ca             ``no issuer certificate found for``
server_cert_as_user    ``constraint requires cert policy`` (a server's certificate lacks the users')
crl_unavailable        ``certificate status is not available`` (strict revocation, the node's CRL
                       missing or out of date: everybody is refused)
proposal_mismatch      ``received proposals unacceptable`` / ``no acceptable proposal found``
pool_exhausted         ``no virtual IP found for`` / ``is full, unable to assign address``
auth_never_arrived     the first exchange done (NAT found) and nothing after: UDP 4500 blocked or
                       fragments lost on the way
authentication_failed  ``no trusted ... public key found`` without one of the causes above
never_seen             no line on any node names the user or comes from the caller's address
=====================  ============================================================================
"""

from __future__ import annotations

import datetime as dt
import re

from svpn.helpdesk.answers import Finding, Words
from svpn.helpdesk.attempts import Attempt

VALIDITY = re.compile(r"^subject certificate invalid \(valid from (?P<start>.+?) to (?P<end>.+?)\)$")
RECEIVED = re.compile(r"^received proposals: (?P<proposals>.*)$")
CONFIGURED = re.compile(r"^configured proposals: (?P<proposals>.*)$")
ISSUER = re.compile(r'^issuer is "(?P<dn>.*)"$')
POLICY = re.compile(r"^constraint requires cert policy (?P<oid>\S+)$")

W = Words
CAUSES: dict[str, tuple[Words, Words]] = {
    # cause: (what happened, for the agent; what the agent tells the caller)
    "connected": (
        W("연결되어 있습니다.", "Connected."),
        W(
            "VPN이 연결되어 있습니다. 문제가 계속되면 VPN을 껐다가 다시 켜 주세요.",
            "The VPN is connected. If something still fails, switch the VPN off and on again.",
        ),
    ),
    "ended_by_client": (
        W("기기가 연결을 끊었습니다.", "The device closed the connection."),
        W("VPN을 다시 켜 주세요.", "Please switch the VPN on again."),
    ),
    "ended_by_farm": (
        W(
            "서버가 연결을 끊었습니다 (인증서 폐기, 관리자 조치 또는 점검).",
            "The farm ended the session (a revocation, an operator, or maintenance).",
        ),
        W(
            "VPN을 다시 켜 주세요. 다시 연결되지 않으면 상담원이 원인을 확인합니다.",
            "Please switch the VPN on again; if it does not connect, we will check why.",
        ),
    ),
    "node_draining": (
        W(
            "사용자가 있던 서버가 점검 중이라 연결이 끊겼습니다. 다시 연결하면 다른 서버로 연결됩니다.",
            "The user's server is being drained for maintenance; a reconnect lands on another server.",
        ),
        W(
            "VPN을 다시 켜 주세요. 다른 서버로 자동 연결됩니다.",
            "Please switch the VPN on again: it connects to another server by itself.",
        ),
    ),
    "revoked": (
        W("사용자의 인증서가 폐기되었습니다.", "The user's certificate is revoked."),
        W(
            "이 기기의 VPN 인증서는 더 이상 사용할 수 없습니다. "
            "새 인증서가 필요하면 담당 부서의 승인을 받아야 합니다.",
            "This device's VPN certificate can no longer be used; "
            "a new one needs your department's approval.",
        ),
    ),
    "expired": (
        W("사용자의 인증서가 만료되었습니다.", "The user's certificate has expired."),
        W(
            "새 VPN 설치 파일을 보내 드립니다. 받은 파일로 VPN을 다시 설치해 주세요.",
            "We will send you a new VPN installation file; please install the VPN again with it.",
        ),
    ),
    "not_yet_valid": (
        W(
            "인증서가 아직 유효하지 않습니다 (기기의 날짜 또는 시간이 틀렸을 수 있습니다).",
            "The certificate is not valid yet (the device's date or time may be wrong).",
        ),
        W(
            "기기의 날짜와 시간을 자동으로 설정한 뒤 다시 연결해 주세요.",
            "Please set the device's date and time to automatic, then connect again.",
        ),
    ),
    "unknown_ca": (
        W("시청이 발급하지 않은 인증서입니다.", "The certificate was not issued by the farm's CA."),
        W(
            "시청에서 받은 VPN 설치 파일만 사용해 주세요. 새 설치 파일을 보내 드립니다.",
            "Please use only the VPN file from city hall; we will send you a new one.",
        ),
    ),
    "server_cert_as_user": (
        W("사용자 인증서 대신 서버 인증서가 사용되었습니다.", "A server's certificate was used as a user's."),
        W(
            "잘못된 파일이 설치되었습니다. 받은 개인 설치 파일로 다시 설치해 주세요.",
            "The wrong file was installed; please install the VPN again with your personal file.",
        ),
    ),
    "crl_unavailable": (
        W(
            "서버가 인증서 폐기 목록을 확인할 수 없어 모든 사용자를 거부하고 있습니다 (운영팀 조치 필요).",
            "The server cannot check revocations (its CRL is missing or out of date) and refuses everyone: "
            "call the operators.",
        ),
        W(
            "서버 문제입니다. 해결되면 연락드리겠습니다.",
            "This is a problem on our side; we will call you back.",
        ),
    ),
    "proposal_mismatch": (
        W(
            "기기가 서버가 허용하지 않는 암호화 방식만 제안했습니다.",
            "The device offered only encryption the farm refuses.",
        ),
        W(
            "VPN 설정을 직접 만들지 말고 받은 설치 파일로 다시 설치해 주세요.",
            "Please do not set the VPN up by hand; install it again with the file you received.",
        ),
    ),
    "pool_exhausted": (
        W(
            "서버의 주소가 모두 사용 중입니다 (운영팀 조치 필요).",
            "The server has no free virtual address (call the operators).",
        ),
        W(
            "잠시 후 다시 연결해 주세요. 운영팀이 조치하고 있습니다.",
            "Please try again in a few minutes; the operators are on it.",
        ),
    ),
    "auth_never_arrived": (
        W(
            "첫 단계 후 기기의 메시지가 도착하지 않았습니다 (UDP 4500 차단 또는 패킷 손실).",
            "After the first exchange nothing more arrived (UDP 4500 blocked, or fragments lost).",
        ),
        W(
            "다른 네트워크(휴대폰 핫스팟 등)에서 연결해 보세요. "
            "회사나 호텔 네트워크는 VPN을 막을 수 있습니다.",
            "Please try another network (e.g. your phone's hotspot); "
            "some office or hotel networks block VPNs.",
        ),
    ),
    "authentication_failed": (
        W("인증에 실패했습니다.", "The authentication failed."),
        W(
            "받은 설치 파일로 VPN을 다시 설치해 주세요.",
            "Please install the VPN again with the file you received.",
        ),
    ),
    "never_seen": (
        W(
            "어느 서버에도 이 사용자의 연결 시도가 도착하지 않았습니다 (주소 오류, UDP 500/4500 차단, NAT).",
            "No attempt of this user reached any server (wrong address, UDP 500/4500 blocked, or NAT).",
        ),
        W(
            "인터넷 연결을 확인하고, 다른 네트워크(휴대폰 핫스팟 등)에서 다시 연결해 보세요.",
            "Please check your internet connection and try again from another network "
            "(e.g. a phone hotspot).",
        ),
    ),
}
FAILURES = frozenset(CAUSES) - {"connected", "ended_by_client", "ended_by_farm", "node_draining"}


def _validity_cause(text: str, at: dt.datetime) -> str | None:
    found = VALIDITY.match(text)
    if not found:
        return None
    try:
        start = dt.datetime.strptime(found["start"], "%b %d %H:%M:%S %Y").replace(tzinfo=at.tzinfo)
        end = dt.datetime.strptime(found["end"], "%b %d %H:%M:%S %Y").replace(tzinfo=at.tzinfo)
    except ValueError:
        return "authentication_failed"
    return "not_yet_valid" if at < start else "expired" if at > end else None


def _certificate_cause(attempt: Attempt) -> str | None:
    """The first certificate check that failed: the certificate the client sent is checked first; charon
    then also tries certificates it cached from earlier attempts of the same subject."""
    for line in attempt.lines:
        text = line.text
        if text.startswith("certificate was revoked on"):
            return "revoked"
        if cause := _validity_cause(text, line.time):
            return cause
        if text.startswith("no issuer certificate found for"):
            return "unknown_ca"
        if POLICY.match(text):
            return "server_cert_as_user"
        if text.startswith("certificate status is not available"):
            return "crl_unavailable"
    return None


def cause_of(attempt: Attempt, draining: bool = False) -> str:
    """The one cause of *attempt* (see the table above); *draining*: its node is being drained now."""
    texts = attempt.texts()
    joined = "\n".join(texts)
    if any(t.startswith("IKE_SA ") and " established between " in t for t in texts):
        if "received DELETE for IKE_SA" in joined:
            return "ended_by_client"
        if any(t.startswith("deleting IKE_SA") for t in texts):
            return "node_draining" if draining else "ended_by_farm"
        if "no virtual IP found for" in joined or "unable to assign address" in joined:
            return "pool_exhausted"
        return "connected"
    if "received proposals unacceptable" in joined or "no acceptable proposal found" in joined:
        return "proposal_mismatch"
    if cause := _certificate_cause(attempt):
        return cause
    if "no virtual IP found for" in joined or "unable to assign address" in joined:
        return "pool_exhausted"
    if re.search(
        r"no trusted \S+ public key found|signature validation failed|non-matching authentication", joined
    ):
        return "authentication_failed"
    if not attempt.identity:
        return (
            "auth_never_arrived" if "behind NAT" in joined or "selected proposal:" in joined else "never_seen"
        )
    return "authentication_failed"


def proposals_of(attempt: Attempt) -> tuple[str, str]:
    """(the client's proposals, the farm's) from a proposal mismatch's lines."""
    client = farm = ""
    for text in attempt.texts():
        if found := RECEIVED.match(text):
            client = found["proposals"]
        elif found := CONFIGURED.match(text):
            farm = found["proposals"]
    return client, farm


def finding(attempt: Attempt, draining: bool = False) -> Finding:
    cause = cause_of(attempt, draining)
    what, tell = CAUSES[cause]
    if cause == "proposal_mismatch":
        client, farm = proposals_of(attempt)
        what = Words(f"{what.ko} 기기: {client} / 서버: {farm}", f"{what.en} Device: {client}; farm: {farm}.")
    elif cause == "unknown_ca":
        issuer = next((f["dn"] for t in attempt.texts() if (f := ISSUER.match(t))), "")
        if issuer:
            what = Words(f"{what.ko} 발급자: {issuer}", f"{what.en} Its issuer: {issuer}.")
    elif cause == "server_cert_as_user" and attempt.certificate:
        what = Words(f"{what.ko} ({attempt.certificate})", f"{what.en} ({attempt.certificate})")
    return Finding(
        cause=cause,
        what=what,
        tell=tell,
        node=attempt.node,
        at=attempt.started.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        address=attempt.address,
        evidence=tuple(line.raw for line in attempt.lines),
    )


def never_seen() -> Finding:
    what, tell = CAUSES["never_seen"]
    return Finding(cause="never_seen", what=what, tell=tell)


# The caller's checklist after the cause's own step: what any remote worker can check on their own device.
CHECKLIST: tuple[Words, ...] = (
    W(
        "인터넷이 되는지 확인해 주세요 (아무 웹사이트나 열어 보기).",
        "Check that the internet works (open any website).",
    ),
    W(
        "VPN은 시청에서 받은 본인의 설치 파일로만 설치해 주세요.",
        "Install the VPN only with your own file from city hall.",
    ),
    W("기기의 날짜와 시간을 '자동'으로 설정해 주세요.", "Set the device's date and time to automatic."),
    W(
        "다른 네트워크(휴대폰 핫스팟 등)에서 연결해 보세요.",
        "Try another network, e.g. your phone's hotspot.",
    ),
    W("기기를 다시 시작한 뒤 VPN을 켜 주세요.", "Restart the device, then switch the VPN on."),
)
