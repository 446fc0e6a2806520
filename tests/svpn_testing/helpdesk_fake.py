"""A helpdesk Backend made of fixed data, for the web page's tests: the page is tested against what a
Backend may answer, without a farm. Records the actions it was asked to do."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from svpn.access.pki.audit import current_actor
from svpn.core.errors import SvpnError
from svpn.helpdesk.answers import (
    ActionResult,
    Explanation,
    Finding,
    Session,
    Unreachable,
    User,
    WhereisAnswer,
    Words,
)

USERS = (
    User("u1001", "김지우", "jiwoo.kim@example.test", "영업 Sales", "1a2b3c", "2027-03-01T00:00:00Z", "valid",
         ("jiwoo.kim@example.test",)),
    User("u1002", "김민준", "minjun.kim@example.test", "재무 Finance", "4d5e6f", "2027-05-01T00:00:00Z",
         "revoked", ("minjun.kim@example.test",)),
    User("u2001", "Alice Park", "alice.park@example.test", "IT", "7a8b9c", "2026-01-01T00:00:00Z", "expired",
         ("alice.park@example.test",)),
)  # fmt: skip

SESSIONS = (
    Session("u1001", "conc-01", "svpn[17]", "jiwoo.kim@example.test", "198.19.1.17", "198.18.200.10",
            "2026-11-30T08:01:02Z", 12_345_678, 987_654),
    Session("u1001", "conc-02", "svpn[4]", "jiwoo.kim@example.test", "198.19.2.4", "198.18.200.11",
            "2026-11-30T09:15:00Z", 2_048, 1_024),
)  # fmt: skip

FINDINGS = {
    "u1001": (
        Finding(
            "proposal_mismatch",
            Words(
                "클라이언트가 팜이 받지 않는 암호 제안만 보냈습니다",
                "The client offered only proposals the farm refuses",
            ),
            Words("VPN 프로필을 다시 설치해 주세요", "Please install the VPN profile again"),
            node="conc-02",
            at="2026-11-30T09:14:40Z",
            address="198.18.200.11",
            evidence=(
                "2026-11-30T09:14:40 09[CFG] <svpn|3> received proposals: "
                "IKE:AES_CBC_128/HMAC_SHA1_96/MODP_1024",
                "2026-11-30T09:14:40 09[IKE] <svpn|3> no matching proposal found, sending NO_PROPOSAL_CHOSEN",
            ),
        ),
    ),
    "u1002": (
        Finding(
            "revoked",
            Words("인증서가 폐기되었습니다", "The user's certificate is revoked"),
            Words(
                "접속 권한이 해지되었습니다. 담당 부서에 문의하세요",
                "Access was withdrawn: ask your manager",
            ),
            node="conc-01",
            at="2026-11-30T07:00:00Z",
            address="198.18.200.20",
            evidence=(
                "2026-11-30T07:00:00 11[CFG] <svpn|9> certificate was revoked on Nov 01 00:00:00 UTC 2026",
            ),
        ),
    ),
}  # fmt: skip

CHECKLIST = (
    Words("인터넷에 연결되어 있는지 확인하세요", "Check that you are connected to the internet"),
    Words("VPN 앱을 끄고 다시 켜세요", "Turn the VPN app off and on again"),
    Words(
        "그래도 안 되면 이 종이를 들고 헬프데스크에 전화하세요",
        "If it still fails, call the helpdesk with this sheet",
    ),
)  # fmt: skip

NEVER_SEEN = Finding(
    "never_seen",
    Words(
        "팜이 이 주소에서 온 연결 시도를 본 적이 없습니다",
        "The farm never saw an attempt from this address",
    ),
    Words(
        "VPN 서버 주소와 UDP 500/4500 차단 여부를 확인하세요",
        "Check the server address and that UDP 500/4500 is open",
    ),
    address="",
)  # fmt: skip


@dataclass
class FakeHelpdesk:
    """Answers from the tables above; ``fail`` makes every call raise an SvpnError with that message."""

    users: tuple[User, ...] = USERS
    sessions: tuple[Session, ...] = SESSIONS
    unreachable: tuple[Unreachable, ...] = (Unreachable("conc-03", "unreachable: ssh: connection timed out"),)
    fail: str = ""
    calls: list[tuple[str, str]] = field(default_factory=list)
    last_secret: str = ""

    def _check(self) -> None:
        if self.fail:
            raise SvpnError(self.fail)

    def matching(self, query: str) -> list[User]:
        q = query.casefold()
        exact = [u for u in self.users if u.id == query]
        return exact or [u for u in self.users if any(q in f.casefold() for f in (u.id, u.name, u.email))]

    def whereis(self, query: str) -> WhereisAnswer:
        self._check()
        users = tuple(self.matching(query)) if query else ()
        ids = {u.id for u in users}
        sessions = tuple(s for s in self.sessions if s.user_id in ids)
        return WhereisAnswer(query, users, sessions, self.unreachable)

    def explain(self, query: str, address: str = "") -> Explanation:
        self._check()
        found = self.matching(query) if query else []
        user = found[0] if len(found) == 1 else None
        if user is None:
            never = Finding(NEVER_SEEN.cause, NEVER_SEEN.what, NEVER_SEEN.tell, address=address)
            searched = tuple(x for x in (query, address) if x)
            return Explanation(query, None, (never,), CHECKLIST, searched=searched)
        findings = FINDINGS.get(user.id, ())
        sessions = tuple(s for s in self.sessions if s.user_id == user.id)
        return Explanation(query, user, findings, CHECKLIST, sessions, self.unreachable, user.identities)

    def _known(self, user_id: str) -> User:
        self._check()
        user = next((u for u in self.users if u.id == user_id), None)
        if user is None:
            raise SvpnError(f"user {user_id!r} is not in the PKI")
        return user

    def end_sessions(self, user_id: str) -> ActionResult:
        user = self._known(user_id)
        self.calls.append(("end-sessions", user_id))
        count = sum(1 for s in self.sessions if s.user_id == user.id)
        words = Words(f"세션 {count}개를 종료했습니다", f"ended {count} session(s)")
        return ActionResult("end-sessions", user_id, True, words)

    def rebuild_bundle(self, user_id: str) -> ActionResult:
        self._known(user_id)
        self.calls.append(("rebuild-bundle", user_id))
        self.last_actor = current_actor()  # whom the PKI's audit trail would name
        self.last_secret = secrets.token_urlsafe(12)
        words = Words(
            "새 비밀번호로 번들을 다시 만들었습니다", f"rebuilt the bundle of {user_id} with a new password"
        )
        return ActionResult("rebuild-bundle", user_id, True, words, secret=self.last_secret)
