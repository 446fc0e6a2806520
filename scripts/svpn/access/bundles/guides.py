"""Install guides per OS and per user, in HTML and Markdown, each in Korean and English.

The words live in ``templates/guides.yaml`` (per OS and language: steps, how to check that it works, what
to send the helpdesk); the layouts ``guide.html.j2`` and ``guide.md.j2`` arrange them. A guide holds both
languages, Korean first (anchors ``#ko`` and ``#en``): ``guides/OS.html`` and ``guides/OS.md`` for OS in
:data:`OSES` — ten files per user rather than twenty, because for 10,000 bundles creating files on the
controller's disk, not rendering them, is what takes the time.

Each (OS, format, tunnel mode, helpdesk known) is rendered by Jinja once per process into a
:class:`Skeleton` with ``${...}`` placeholders (:class:`string.Template` syntax); a user's guide is that
skeleton filled with the user's values (HTML-escaped for HTML): a string join per file, not a render.
Imports svpn.access.bundles.bundle (what a bundle is made from).
"""

from __future__ import annotations

import html
import ipaddress
import re
import string
from functools import cache
from typing import Any

import jinja2
import markupsafe
import yaml
from cryptography import x509

from svpn.access.bundles.bundle import NM_DIR, TEMPLATES, BundleContext, UserInfo

OSES = ("ios", "macos", "android", "windows", "linux")
LANGS = ("ko", "en")  # in document order
FORMATS = ("html", "md")
_CODE = re.compile(r"`([^`]+)`")


class Skeleton:
    """A :class:`string.Template` text split once into literal pieces and placeholder names."""

    def __init__(self, text: str) -> None:
        self.pieces: list[tuple[str, str | None]] = []
        pos = 0
        for match in string.Template.pattern.finditer(text):
            literal = text[pos : match.start()]
            if match.group("escaped") is not None:
                self.pieces.append((literal + "$", None))
            elif match.group("named") or match.group("braced"):
                self.pieces.append((literal, match.group("named") or match.group("braced")))
            else:
                line = text.count("\n", 0, match.start()) + 1
                raise ValueError(f"invalid placeholder on line {line} of a template")
            pos = match.end()
        self.pieces.append((text[pos:], None))

    def substitute(self, values: dict[str, str]) -> str:
        """Fill in every placeholder; a name without a value is a KeyError (a template bug)."""
        return "".join(literal + values[name] if name else literal for literal, name in self.pieces)


@cache
def content() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((TEMPLATES / "guides.yaml").read_text(encoding="utf-8"))
    return data


def _inline_html(text: str) -> markupsafe.Markup:
    """Escape for HTML and turn `backticks` into <code>."""
    return markupsafe.Markup(_CODE.sub(r"<code>\1</code>", html.escape(str(text), quote=False)))


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["inline"] = _inline_html
    return env


def _items(entries: list[Any]) -> list[dict[str, str]]:
    return [e if isinstance(e, dict) else {"text": e, "code": ""} for e in entries]


def _section(os_name: str, lang: str, tunnel_mode: str, has_helpdesk: bool) -> dict[str, Any]:
    words = content()["languages"][lang]
    page = content()["os"][os_name][lang]
    check = _items(page["check"])
    pings = any("${check_host}" in item["text"] + item["code"] for item in check)
    return {
        "lang": lang,
        "name": words["name"],
        "other": LANGS[1 - LANGS.index(lang)],
        "other_lang": words["other"],
        "title": page["title"],
        "for_user": words["for_user"],
        "headings": words["headings"],
        "password": words["password"],
        "tunnel": words[f"tunnel_{tunnel_mode}"],
        "steps": _items(page["steps"]),
        "check": check,
        "check_ping": words["check_ping"] if pings else "",  # explains the address the check uses
        "helpdesk_intro": words["helpdesk_intro" if has_helpdesk else "helpdesk_intro_default"],
        "helpdesk": _items(words["helpdesk_common"]) + _items(page["helpdesk"]),
        "never_send": words["never_send"],
    }


@cache
def skeleton(os_name: str, fmt: str, tunnel_mode: str, has_helpdesk: bool) -> Skeleton:
    """The guide for one OS and format, both languages, with ``${...}`` placeholders (once per process)."""
    sections = [_section(os_name, lang, tunnel_mode, has_helpdesk) for lang in LANGS]
    return Skeleton(_env().get_template(f"guide.{fmt}.j2").render(sections=sections))


def values(ctx: BundleContext, user: UserInfo, cert: x509.Certificate) -> dict[str, str]:
    """The per-user values the guides and the README show (plain text; nothing secret)."""
    s = ctx.settings
    check_host = s.dns_servers[0] if s.dns_servers else _first_host(s.internal_networks[0])
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "vpn": s.vpn_name,
        "server": s.public_address,
        "server_win": s.server_name_for_windows,
        "p12": f"{user.id}.p12",
        "crt": f"{user.id}.crt",
        "key": f"{user.id}.key",
        "mobileconfig": f"{user.id}.mobileconfig",
        "sswan": f"{user.id}.sswan",
        "ps1": f"{user.id}-windows.ps1",
        "nmconnection": f"{user.id}.nmconnection",
        "ca_name": ctx.ca_name,
        "expires": f"{cert.not_valid_after_utc:%Y-%m-%d}",
        "serial": f"{cert.serial_number:x}",
        "check_host": check_host,
        "helpdesk": s.helpdesk,
        "nm_dir": NM_DIR,
    }


def _first_host(network: str) -> str:
    net = ipaddress.ip_network(network)
    return str(next(iter(net.hosts()), net.network_address))


def render_all(ctx: BundleContext, user: UserInfo, cert: x509.Certificate) -> dict[str, bytes]:
    """The README and every guide of one user (``README.txt``, ``guides/OS.html``, ``guides/OS.md``)."""
    plain = values(ctx, user, cert)
    escaped = {k: html.escape(v) for k, v in plain.items()}
    mode, has_helpdesk = ctx.settings.tunnel_mode, bool(ctx.settings.helpdesk)
    files = {"README.txt": _readme().substitute(plain).encode()}
    for os_name in OSES:
        for fmt in FORMATS:
            text = skeleton(os_name, fmt, mode, has_helpdesk).substitute(escaped if fmt == "html" else plain)
            files[f"guides/{os_name}.{fmt}"] = text.encode()
    return files


@cache
def _readme() -> Skeleton:
    return Skeleton((TEMPLATES / "readme.txt").read_text(encoding="utf-8"))
