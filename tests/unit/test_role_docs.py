"""Each role documents every variable it defines: in meta/argument_specs.yml and in its README."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "defaults" / "main.yml").exists())


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_default_is_specified_and_documented(role: Path) -> None:
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    readme = (role / "README.md").read_text()
    for name in defaults:
        assert name.startswith(role.name + "_"), f"{role.name}: {name} lacks the role prefix"
        assert name in options, f"{role.name}: {name} missing from meta/argument_specs.yml"
        assert f"`{name}`" in readme, f"{role.name}: {name} missing from README.md"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_spec_defaults_match_role_defaults(role: Path) -> None:
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"][
        "options"
    ]
    for name, spec in options.items():
        if name in defaults and "default" in spec:
            assert spec["default"] == defaults[name], f"{role.name}: {name} default differs from the spec"


# Ansible reads argument_specs as static YAML, so the choices the package holds (svpn.farm.facts) are
# repeated there; this holds the copy to its home.
FACT_CHOICES = {
    ("concentrator", "concentrator_state"): "node_states",
    ("concentrator", "svpn_tunnel_mode"): "tunnel_modes",
}


@pytest.mark.parametrize(("place", "fact_name"), sorted(FACT_CHOICES.items()), ids=lambda v: str(v))
def test_spec_choices_are_the_packages_facts(place: tuple[str, str], fact_name: str) -> None:
    from svpn.farm.role_facts import fact

    role, option = place
    options = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    assert options["argument_specs"]["main"]["options"][option]["choices"] == fact(fact_name)
