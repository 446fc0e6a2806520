"""What the helpdesk's tools answer, as plain data: the CLI prints it (text or --json), the web page
renders it. Pure: no I/O.

Every sentence meant for a caller or an agent is given in Korean and in English (:class:`Words`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Words:
    """One sentence in both languages the helpdesk speaks."""

    ko: str
    en: str


@dataclass(frozen=True)
class User:
    """A person the PKI issued a user certificate to (their newest certificate)."""

    id: str
    name: str
    email: str
    department: str
    serial: str  # lower-case hex, as `svpn pki list`
    not_after: str  # ISO 8601, UTC
    status: str  # valid, revoked, superseded (index.json) or expired (valid but past not_after)
    identities: tuple[str, ...] = ()  # every IKE identity the certificate carries, as strongSwan prints it


@dataclass(frozen=True)
class Session:
    """A user's live IKE SA on a concentrator."""

    user_id: str
    node: str
    ike_sa: str  # "svpn[12]": connection name and charon's unique id on that node
    identity: str  # the identity the client sent
    virtual_ip: str
    public_address: str  # where the client's packets come from (its NAT's address if behind one)
    connected_since: str  # ISO 8601, UTC
    bytes_in: int
    bytes_out: int
    state: str = "ESTABLISHED"


@dataclass(frozen=True)
class Unreachable:
    host: str
    why: str


@dataclass(frozen=True)
class WhereisAnswer:
    query: str
    users: tuple[User, ...]
    sessions: tuple[Session, ...]
    unreachable: tuple[Unreachable, ...] = ()

    def sessions_of(self, user_id: str) -> list[Session]:
        return [s for s in self.sessions if s.user_id == user_id]


@dataclass(frozen=True)
class Finding:
    """One thing explain found about a user's attempts, with the log lines behind it."""

    cause: str  # see svpn.helpdesk.causes.CAUSES: revoked, expired, proposal_mismatch, never_seen, ...
    what: Words  # what happened, for the agent
    tell: Words  # what the agent tells the caller
    node: str = ""  # the concentrator whose log says so ("" when no node saw anything)
    at: str = ""  # ISO 8601 time of the attempt
    address: str = ""  # the client's public address in that attempt
    evidence: tuple[str, ...] = ()  # the log lines behind it, as the node wrote them


@dataclass(frozen=True)
class Explanation:
    query: str
    user: User | None  # None: the query named an address, or nobody the PKI knows
    findings: tuple[Finding, ...]  # newest attempt first; the first is the answer
    checklist: tuple[Words, ...]  # steps for the caller, printable
    sessions: tuple[Session, ...] = ()  # live sessions of the user, if any
    unreachable: tuple[Unreachable, ...] = ()
    searched: tuple[str, ...] = field(default=())  # what the logs were searched for (identities, addresses)


@dataclass(frozen=True)
class ActionResult:
    """The outcome of an agent's action (end sessions, rebuild bundle), as written to the audit log."""

    action: str  # end-sessions or rebuild-bundle
    user_id: str
    ok: bool
    message: Words
    secret: str = ""  # shown once to the agent (a bundle's new password), never written to the audit log


def to_json(answer: Any) -> Any:
    """Any of these answers as JSON-ready data (dicts, lists, strings, numbers)."""
    if dataclasses.is_dataclass(answer) and not isinstance(answer, type):
        return {f.name: to_json(getattr(answer, f.name)) for f in dataclasses.fields(answer)}
    if isinstance(answer, list | tuple):
        return [to_json(item) for item in answer]
    return answer


class Backend(Protocol):
    """What the web page (and the CLI) ask of the helpdesk; svpn.helpdesk.service.Helpdesk is the real one."""

    def whereis(self, query: str) -> WhereisAnswer: ...

    def explain(self, query: str, address: str = "") -> Explanation: ...

    def end_sessions(self, user_id: str) -> ActionResult: ...

    def rebuild_bundle(self, user_id: str) -> ActionResult: ...
