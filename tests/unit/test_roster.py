"""svpn.access.roster: parsing and validating the staff roster (every problem, with its line) and the diff."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from svpn.access import roster
from svpn.access.pki.cert_policy import USER_CERT_POLICY
from svpn.access.pki.validation import ID_RULE
from svpn.core.errors import SvpnError

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
WINDOW = dt.timedelta(days=30)


def write(tmp_path: Path, name: str, text: str, bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(roster.RosterError) as err:
        roster.load(path)
    lines = str(err.value).splitlines()
    assert "nothing was issued or revoked" in lines[0]
    assert f"has {len(lines) - 1} problem" in lines[0]
    return lines[1:]


# --------------------------------------------------------------------------- CSV


def test_csv_roster_is_parsed_with_lines_normalised_and_extra_columns_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "staff.csv",
        "ID , Name,Email,Department,Phone\n"
        "jkim,김지우,JKim@City.Example.KR,IT,010\n"
        "\n"
        'mlee,"Lee, Minho",mlee@city.example.kr,Roads,"011\n(mobile)"\n'
        "spark,Park Seo,spark@city.example.kr,,012\n",
        bom=True,
    )
    result = roster.load(path)
    assert [(p.id, p.line) for p in result.people] == [("jkim", 2), ("mlee", 4), ("spark", 6)]
    jkim = result.people[0]
    assert (jkim.name, jkim.email, jkim.department) == ("김지우", "JKim@city.example.kr", "IT")
    assert (result.people[1].name, result.people[1].department) == ("Lee, Minho", "Roads")
    assert result.people[2].department == ""


def test_malformed_csv_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "staff.csv",
        "id,name,email,department\n"
        "jkim,Kim Jiwoo,jkim@city.example.kr,IT\n"  # 2 ok
        "mlee,Lee Minho,not-an-email,Roads\n"  # 3 bad e-mail
        "jkim,Kim Again,jkim2@city.example.kr,IT\n"  # 4 duplicate id
        "Bad ID,Someone,someone@city.example.kr,IT\n"  # 5 bad id
        "spark,,spark@city.example.kr,IT\n"  # 6 empty name
        "short,Only Two\n"  # 7 missing fields
        "x1,A,a@city.example.kr,IT,extra\n",  # 8 too many values
    )
    lines = problems(path)
    assert len(lines) == 6, lines
    by_line = {int(line.split(":")[1]): line for line in lines}
    assert set(by_line) == {3, 4, 5, 6, 7, 8}
    assert "email 'not-an-email' is not a valid e-mail address" in by_line[3]
    assert "id 'jkim' is listed twice (first on line 2)" in by_line[4]
    assert "id 'Bad ID' is not valid" in by_line[5]
    assert "name is empty" in by_line[6]
    assert "missing fields 'email', 'department'" in by_line[7]
    assert "has 5 values but the header has 4 columns" in by_line[8]
    assert all(line.startswith(f"{path}:") for line in lines)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    lines = problems(write(tmp_path, "staff.csv", "id,name,mail\njkim,Kim,jkim@city.example.kr\n"))
    assert len(lines) == 1
    assert lines[0].startswith(f"{tmp_path / 'staff.csv'}:1: missing columns 'email', 'department'")


def test_duplicate_header_columns_and_empty_file(tmp_path: Path) -> None:
    lines = problems(write(tmp_path, "a.csv", "id,name,email,department,email\n"))
    assert any("column 'email' appears more than once" in line for line in lines)
    assert "the file is empty" in problems(write(tmp_path, "b.csv", ""))[0]


def test_a_roster_without_users_is_refused(tmp_path: Path) -> None:
    lines = problems(write(tmp_path, "staff.csv", "id,name,email,department\n\n"))
    assert "lists no users: refusing to revoke everyone" in lines[0]


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SvpnError, match="unknown format"):
        roster.load(write(tmp_path, "staff.xlsx", "x"))
    with pytest.raises(SvpnError, match="cannot be read"):
        roster.load(tmp_path / "nope.csv")


def test_non_utf8_roster_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "staff.csv"
    path.write_bytes(b"id,name,email,department\njkim,Kim \xc0\xc1,jkim@city.example.kr,IT\n")
    assert ":2: is not valid UTF-8" in problems(path)[0]


# --------------------------------------------------------------------------- YAML


def test_yaml_roster_list_or_users_mapping(tmp_path: Path) -> None:
    text = (
        "users:\n"
        "  - id: jkim\n"
        "    name: 김지우\n"
        "    email: jkim@city.example.kr\n"
        "    department: IT\n"
        "  - {id: mlee, name: Lee Minho, email: mlee@city.example.kr, department: null}\n"
    )
    result = roster.load(write(tmp_path, "staff.yaml", text))
    assert [(p.id, p.line, p.department) for p in result.people] == [("jkim", 2, "IT"), ("mlee", 6, "")]
    listed = roster.load(
        write(tmp_path, "staff.yml", "- {id: a1, name: A, email: a@x.example, department: D}\n")
    )
    assert listed.people[0].id == "a1"


def test_malformed_yaml_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    text = (
        "- id: 1234\n"  # 1: number
        "  name: Numbers\n"
        "  email: n@city.example.kr\n"
        "  department: IT\n"
        "- id: jkim\n"  # 5: missing email
        "  name: Kim\n"
        "  department: IT\n"
        "- id: jkim\n"  # 8: duplicate + bad email
        "  name: Kim Again\n"
        "  email: kim@@city\n"
        "  department: IT\n"
    )
    lines = problems(write(tmp_path, "staff.yaml", text))
    assert len(lines) == 4, lines
    assert ":1: id 1234 is not a string: quote it" in lines[0]
    assert ":5: missing field 'email'" in lines[1]
    assert any(":8: email 'kim@@city' is not a valid" in line for line in lines)
    assert any(":8: id 'jkim' is listed twice (first on line 5)" in line for line in lines)


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    lines = problems(write(tmp_path, "staff.yaml", "- id: a\n  name: [unclosed\n"))
    assert "is not valid YAML" in lines[0]
    assert lines[0].split(":")[1].isdigit()


def test_yaml_that_is_not_a_list(tmp_path: Path) -> None:
    assert "expected a list of users" in problems(write(tmp_path, "staff.yaml", "id: jkim\n"))[0]


# --------------------------------------------------------------------------- diff


def record(uid: str, days: int = 365, email: str | None = None, status: str = "valid", **extra: str) -> dict:
    not_after = NOW + dt.timedelta(days=days)
    return {
        "serial": f"{abs(hash(uid)):x}",
        "kind": "user",
        "name": uid,
        "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": status,
        "revoked_at": "2029-12-01T00:00:00Z" if status == "revoked" else None,
        "email": email or f"{uid}@city.example.kr",
        "full_name": extra.get("full_name", uid.upper()),
        "department": extra.get("department", "IT"),
        "policies": [USER_CERT_POLICY.dotted_string],
    }


def people(tmp_path: Path, *rows: tuple[str, str, str, str]) -> roster.Roster:
    text = "id,name,email,department\n" + "".join(",".join(r) + "\n" for r in rows)
    return roster.load(write(tmp_path, "staff.csv", text))


def test_diff_says_what_to_do_per_user(tmp_path: Path) -> None:
    staff = people(
        tmp_path,
        ("new1", "NEW1", "new1@city.example.kr", "IT"),
        ("soon", "SOON", "soon@city.example.kr", "IT"),
        ("gone", "GONE", "gone@city.example.kr", "IT"),
        ("moved", "MOVED", "moved@newcity.example.kr", "IT"),
        ("renamed", "Renamed Person", "renamed@city.example.kr", "IT"),
        ("same", "SAME", "same@city.example.kr", "IT"),
        ("nofile", "NOFILE", "nofile@city.example.kr", "IT"),
    )
    current = {
        "soon": record("soon", days=10),
        "gone": record("gone", days=-1),
        "moved": record("moved"),
        "renamed": record("renamed"),
        "same": record("same"),
        "nofile": record("nofile"),
        "left": record("left"),
        "oldrevoked": record("oldrevoked", status="revoked"),
    }
    changes = roster.diff(
        staff, current, now=NOW, renew_within=WINDOW, files_present=lambda uid: uid != "nofile"
    )
    got = {c.id: (c.action, c.reason) for c in changes}
    assert got == {
        "new1": ("add", "new user"),
        "soon": ("renew", "expires 2030-01-11"),
        "gone": ("renew", "expired 2029-12-31"),
        "moved": ("renew", "e-mail changed from moved@city.example.kr"),
        "renamed": ("update", "name or department changed"),
        "same": ("unchanged", ""),
        "nofile": ("renew", "certificate or key file missing"),
        "left": ("revoke", "no longer in the roster"),
    }
    assert [c.id for c in changes][-1] == "left"  # revocations come last
    assert changes[0].describe() == "add: new1 (NEW1 <new1@city.example.kr>): new user"


def test_diff_renew_window_boundary(tmp_path: Path) -> None:
    staff = people(tmp_path, ("soon", "SOON", "soon@city.example.kr", "IT"))
    current = {"soon": record("soon", days=10)}
    assert roster.diff(staff, current, now=NOW, renew_within=dt.timedelta(days=10))[0].action == "renew"
    assert roster.diff(staff, current, now=NOW, renew_within=dt.timedelta(days=9))[0].action == "unchanged"


def test_a_revoked_id_in_the_roster_is_a_problem_with_its_line(tmp_path: Path) -> None:
    staff = people(
        tmp_path, ("ok", "OK", "ok@city.example.kr", "IT"), ("back", "BACK", "back@city.example.kr", "IT")
    )
    with pytest.raises(roster.RosterError) as err:
        roster.diff(staff, {"back": record("back", status="revoked")}, now=NOW, renew_within=WINDOW)
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert lines[1].endswith(
        ":3: id 'back' was revoked on 2029-12-01; IDs are never reused: give this person a new id"
    )


# --------------------------------------------------------------------------- shared identities


def test_one_email_twice_is_refused_ignoring_case_with_both_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "staff.csv",
        "id,name,email,department\n"
        "jkim,Kim Jiwoo,JKim@City.Example.KR,IT\n"  # 2: the first holder
        "mlee,Lee Minho,mlee@city.example.kr,Roads\n"  # 3: fine
        "jkim2,Kim Again,jkim@city.example.kr,IT\n"  # 4: same address, other case
        "jkim.vpn,Kim Plus,jkim+vpn@city.example.kr,IT\n"  # 5: a different address
        "jk,Kim Three,JKIM@CITY.EXAMPLE.KR,IT\n",  # 6: same address again
    )
    lines = problems(path)
    assert lines == [
        f"{path}:4: email 'jkim@city.example.kr' (id 'jkim2') is also on line 2 (id 'jkim', "
        "'JKim@city.example.kr'): e-mail addresses must be unique, ignoring case, as each is a user's "
        "IKE identity",
        f"{path}:6: email 'JKIM@city.example.kr' (id 'jk') is also on line 2 (id 'jkim', "
        "'JKim@city.example.kr'): e-mail addresses must be unique, ignoring case, as each is a user's "
        "IKE identity",
    ]


def test_one_email_twice_in_yaml_names_both_lines(tmp_path: Path) -> None:
    text = (
        "- {id: a1, name: A, email: Same@x.example, department: D}\n"
        "- {id: b2, name: B, email: b@x.example, department: D}\n"
        "- {id: c3, name: C, email: same@X.example, department: D}\n"
    )
    lines = problems(write(tmp_path, "staff.yaml", text))
    assert len(lines) == 1
    assert ":3: email 'same@x.example' (id 'c3') is also on line 1 (id 'a1', 'Same@x.example')" in lines[0]


def test_ids_differing_only_in_case_cannot_both_pass(tmp_path: Path) -> None:
    # The ID rule allows lower case only, so a case variant of an ID is refused on its own line.
    path = write(
        tmp_path,
        "staff.csv",
        "id,name,email,department\njkim,Kim,jkim@city.example.kr,IT\nJKim,Kim,other@city.example.kr,IT\n",
    )
    assert problems(path) == [f"{path}:3: id 'JKim' is not valid: {ID_RULE}"]


@pytest.mark.parametrize("name", ["Kim\tJiwoo", "Kim\nJiwoo", "Kim\x07", "evil\u202efdp.exe", "a\x00b"])
def test_control_characters_in_names_are_refused(tmp_path: Path, name: str) -> None:
    quoted = '"' + name.replace('"', '""') + '"'
    path = write(
        tmp_path,
        "staff.csv",
        f"id,name,email,department\nok,Ok,ok@x.example,IT\njkim,{quoted},j@x.example,IT\n",
    )
    assert problems(path) == [f"{path}:3: name {name!r} is not valid: 1-128 printable characters"]


def test_an_email_another_listed_id_holds_in_the_pki_is_refused(tmp_path: Path) -> None:
    # A person re-added under a new ID while the old ID stays listed (with another address): the old
    # certificate still carries the address, so both would have one IKE identity.
    staff = people(
        tmp_path,
        ("old", "OLD", "old.new@city.example.kr", "IT"),
        ("other", "OTHER", "other@city.example.kr", "IT"),
        ("new", "NEW", "Person@City.example.kr", "IT"),
    )
    current = {"old": record("old", email="person@city.example.kr"), "other": record("other")}
    with pytest.raises(roster.RosterError) as err:
        roster.diff(staff, current, now=NOW, renew_within=WINDOW)
    lines = str(err.value).splitlines()
    assert len(lines) == 2, lines
    assert lines[1].startswith(
        f"{staff.path}:4: email 'Person@city.example.kr' (id 'new') belongs to id 'old' in the PKI "
        f"(certificate {current['old']['serial']}, valid until 2031-01-01), which line 2 keeps (as "
        "'old.new@city.example.kr')"
    )


def test_the_email_of_an_id_revoked_in_the_same_sync_is_free(tmp_path: Path) -> None:
    staff = people(tmp_path, ("new", "NEW", "PERSON@city.example.kr", "IT"))
    current = {"old": record("old", email="person@city.example.kr")}
    changes = roster.diff(staff, current, now=NOW, renew_within=WINDOW)
    assert [(c.id, c.action) for c in changes] == [("new", "add"), ("old", "revoke")]


@pytest.mark.parametrize(("days", "status"), [(-1, "valid"), (365, "revoked")])
def test_an_expired_or_revoked_holder_frees_its_email(tmp_path: Path, days: int, status: str) -> None:
    staff = people(
        tmp_path, ("old", "OLD", "old2@city.example.kr", "IT"), ("new", "NEW", "person@city.example.kr", "IT")
    )
    current = {"old": record("old", days=days, email="person@city.example.kr", status=status)}
    if status == "revoked":
        with pytest.raises(roster.RosterError, match="id 'old' was revoked"):  # and only that
            roster.diff(staff, current, now=NOW, renew_within=WINDOW)
        return
    changes = roster.diff(staff, current, now=NOW, renew_within=WINDOW)
    assert [(c.id, c.action) for c in changes] == [("old", "renew"), ("new", "add")]
