"""The helpdesk's backend (I/O): the PKI's index for who is who, one round trip to every concentrator through
Ansible for where they are and what their attempts were, and the agents' two actions. The CLI's whereis and
explain and the web page both use :class:`Helpdesk`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svpn.access.bundle_records import PasswordFile
from svpn.access.pki import clock
from svpn.access.pki.cert_index import Index
from svpn.access.pki.pkidir import as_dir, require_ca
from svpn.core.ansible_inventory import ANSIBLE_WAY, VaultOptions, read_inventory
from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root
from svpn.farm.identities import IdentityKey, identity_key
from svpn.helpdesk import causes, directory, nodequery, remote
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
from svpn.helpdesk.attempts import Attempt, attempts_of
from svpn.helpdesk.sessions import NodeReply, sessions_of, split_reply
from svpn.helpdesk.status_read import pki_dir_of

PASSPHRASE_ENV = "SVPN_CA_PASSPHRASE"
CONCENTRATORS = "concentrators"
MAX_FINDINGS = 12


def _env_passphrase() -> str | None:
    return os.environ.get(PASSPHRASE_ENV)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


@dataclass
class Helpdesk:
    inventory: Path
    pki_dir: Path
    bundles_dir: Path | None = None
    passwords: Path | None = None
    vault: VaultOptions = ANSIBLE_WAY
    passphrase: Callable[[], str | None] = _env_passphrase
    now: Callable[[], dt.datetime] = clock.now
    in_process: bool = False  # Ansible in this process (the CLI's one-shot commands), else a child process
    prepared: Any = None  # the inventory's Ansible objects when read here already (for in_process)

    @classmethod
    def from_options(
        cls,
        inventory: Path,
        pki_dir: Path | None,
        bundles_dir: Path | None = None,
        passwords: Path | None = None,
        vault: VaultOptions = ANSIBLE_WAY,
    ) -> Helpdesk:
        prepared = None
        if pki_dir is None:
            hosts = read_inventory(inventory, vault)
            pki_dir, prepared = pki_dir_of(inventory, hosts), hosts.ansible
        require_ca(as_dir(pki_dir))
        helpdesk = cls(inventory, pki_dir, bundles_dir=bundles_dir, passwords=passwords, vault=vault)
        helpdesk.prepared = prepared
        return helpdesk

    def records(self) -> list[dict[str, object]]:
        return Index.load(self.pki_dir).certs

    def find(self, query: str) -> list[User]:
        return directory.search(directory.users_of(self.records(), self.now()), query)

    # ------------------------------------------------------------------ the nodes

    def _ask_nodes(
        self, identities: Iterable[str], addresses: Iterable[str], logs: bool
    ) -> tuple[dict[str, NodeReply], list[Unreachable]]:
        """Each answering node's reply, and the nodes that gave none (a list per call: the web page asks from
        several threads at once)."""
        command = nodequery.node_command(identities, addresses, logs=logs)
        if self.in_process:
            prepared = self.prepared
            results = remote.run_here(
                self.inventory, CONCENTRATORS, command, vault=self.vault, prepared=prepared
            )
        else:
            results = remote.run(self.inventory, CONCENTRATORS, command, vault=self.vault)
        if not results:
            raise SvpnError(f"{self.inventory}: the inventory has no host in the group {CONCENTRATORS!r}")
        replies = {host: split_reply(r.stdout) for host, r in sorted(results.items()) if r.ok}
        unreachable = [Unreachable(host, r.why) for host, r in sorted(results.items()) if not r.ok]
        return replies, unreachable

    @staticmethod
    def _owners(users: Iterable[User]) -> dict[IdentityKey, str]:
        return {identity_key(i): user.id for user in users for i in user.identities}

    def whereis(self, query: str) -> WhereisAnswer:
        users = self.find(query)
        if not users:
            return WhereisAnswer(query, (), ())
        owners = self._owners(users)
        replies, unreachable = self._ask_nodes([i for u in users for i in u.identities], (), logs=False)
        now = self.now()
        sessions = [s for node, r in replies.items() for s in sessions_of(node, r.sa_lines, owners, now)]
        return WhereisAnswer(query, tuple(users), tuple(sessions), tuple(unreachable))

    def explain(self, query: str, address: str = "") -> Explanation:
        query, address = query.strip(), address.strip()
        if address and not _is_address(address):
            raise SvpnError(
                f"address: {address!r} is not an IP address (the caller's public address, e.g. 198.51.100.7)"
            )
        user, identities, addresses = self._subject(query)
        if address:
            addresses.append(address)
        replies, unreachable = self._ask_nodes(identities, addresses, logs=True)
        attempts = self._attempts_of(replies, {identity_key(i) for i in identities}, set(addresses))
        attempts.sort(key=lambda pair: pair[0].started, reverse=True)
        findings = [causes.finding(a, draining) for a, draining in attempts[:MAX_FINDINGS]]
        for node, reply in replies.items():
            if not reply.has_log:
                unreachable.append(
                    Unreachable(node, "keeps no attempt log (concentrator_attempt_log is empty)")
                )
        if not findings and not any(reply.has_log for reply in replies.values()):
            why = "; ".join(f"{u.host}: {u.why}" for u in unreachable) or "no attempt log on any node"
            raise SvpnError(f"no concentrator could be searched, so nothing can be said of {query!r}: {why}")
        if not findings:
            findings = [causes.never_seen()]
        owners = self._owners([user]) if user else {}
        now = self.now()
        sessions = [s for node, r in replies.items() for s in sessions_of(node, r.sa_lines, owners, now)]
        searched = tuple(identities) + tuple(addresses)
        return Explanation(
            query,
            user,
            tuple(findings),
            checklist(findings[0]),
            tuple(sessions),
            tuple(unreachable),
            searched,
        )

    @staticmethod
    def _attempts_of(
        replies: dict[str, NodeReply], keys: set[IdentityKey], asked: set[str]
    ) -> list[tuple[Attempt, bool]]:
        """The user's attempts among the nodes' lines, each with whether its node is draining: those that
        claimed one of the user's identities, and those that claimed none from an address the user's came
        from (or one asked for); not another user's behind the same NAT, nor what an SA id that charon
        reused after a restart pulled in (another client's, or an LB's health probe)."""
        found = [
            (a, r.state == "drained") for node, r in replies.items() for a in attempts_of(node, r.log_lines)
        ]
        theirs = [(a, d) for a, d in found if a.identity and identity_key(a.identity) in keys]
        known = asked | {a.address for a, _ in theirs}
        return (
            theirs
            + [(a, d) for a, d in found if not a.identity and a.address in known]
            + [(a, d) for a, d in found if a.identity and not keys and a.address in asked]
        )

    def _subject(self, query: str) -> tuple[User | None, list[str], list[str]]:
        """Who explain looks for: (the user, the identities, the addresses)."""
        if _is_address(query):
            return None, [], [query]
        users = self.find(query)
        if len(users) == 1:
            return users[0], list(users[0].identities), []
        if len(users) > 1:
            names = ", ".join(f"{u.id} ({u.name})" if u.name else u.id for u in users[:8])
            raise SvpnError(
                f"{query!r} matches {len(users)} users: {names}; give one ID, e-mail or full name"
            )
        for record in self.records():  # a server's certificate (used as a user's by mistake)
            if record.get("kind") == "server" and str(record.get("name")) == query:
                return None, [str(i) for i in record.get("identities") or [f"CN={query}"]], []
        if "=" in query or "@" in query:  # an identity the PKI does not know (a foreign certificate)
            return None, [query], []
        raise SvpnError(
            f"{query!r}: no user matches (an ID, e-mail, name, certificate serial or IKE identity), "
            "and it is not an IP address; check the spelling, or give the caller's public address"
        )

    # ------------------------------------------------------------------ the agents' actions

    def end_sessions(self, user_id: str) -> ActionResult:
        """End every live IKE SA of the user on every node (`playbooks/end-sessions.yml`, the operators'
        verb): a stuck device reconnects cleanly. The CRL is pushed along, as the playbook does."""
        user = self._exactly(user_id)
        playbook = repo_root() / "playbooks" / "end-sessions.yml"
        argv = [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(self.inventory),
            str(playbook),
        ]
        argv += ["-e", f"users={user.id}", "-e", "reconnect=true"]
        argv += self.vault.argv()
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=repo_root())
        if done.returncode != 0:
            tail = " ".join(done.stdout.split()[-40:])
            return ActionResult("end-sessions", user.id, False, Words(f"실패: {tail}", f"failed: {tail}"))
        said = re.search(rf'"msg": "({re.escape(user.id)}: [^"]*)"', done.stdout) or re.search(
            rf"msg: ({re.escape(user.id)}: .*)", done.stdout
        )
        summary = said.group(1).strip() if said else f"{user.id}: sessions ended"
        count = re.search(r": (\d+) session\(s\) ended", summary)
        n = count.group(1) if count else "?"
        return ActionResult(
            "end-sessions", user.id, True, Words(f"{user.id}: 세션 {n}개를 종료했습니다.", summary)
        )

    def rebuild_bundle(self, user_id: str) -> ActionResult:
        """Build the user's bundle again with a new password (`svpn profiles build`): the password is the
        result's secret, shown once to the agent."""
        from svpn.access import users as access_users

        user = self._exactly(user_id)
        if self.bundles_dir is None:
            raise SvpnError("no bundle directory: start the helpdesk with --bundles DIR to rebuild bundles")
        folder, password_file = access_users.build_one(
            as_dir(self.pki_dir),
            user.id,
            self.inventory,
            self.bundles_dir,
            self.passwords,
            passphrase=self._passphrase,
            vault=self.vault,
        )
        password = PasswordFile.load(password_file).rows.get(user.id, {}).get("password", "")
        return ActionResult(
            "rebuild-bundle",
            user.id,
            True,
            Words(
                f"{user.id}: 새 설치 파일을 만들었습니다 ({folder}).",
                f"{user.id}: bundle rebuilt in {folder}.",
            ),
            secret=password,
        )

    def _passphrase(self) -> str | None:
        secret = self.passphrase()
        if not secret:
            raise SvpnError(f"the CA passphrase opens the user's key: set {PASSPHRASE_ENV} for the helpdesk")
        return secret

    def _exactly(self, user_id: str) -> User:
        found = [u for u in self.find(user_id) if u.id == user_id]
        if not found:
            raise SvpnError(f"user {user_id!r}: no such ID in {as_dir(self.pki_dir).index}")
        return found[0]


def checklist(first: Finding) -> tuple[Words, ...]:
    """The caller's steps, the cause's own first."""
    steps = [first.tell]
    for step in causes.CHECKLIST:
        if step not in steps:
            steps.append(step)
    return tuple(steps)


__all__ = ["Helpdesk", "Session"]
