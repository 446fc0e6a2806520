"""The live SSH check (check.yml's second play): the controller's address, as the host sees it in
$SSH_CONNECTION, must be inside the networks the host's firewall accepts SSH from."""

from __future__ import annotations

from svpn_testing.plugins import farm_filters

from svpn.inventory.management import is_ssh_managed, ssh_source_problem

SESSION = "198.18.54.1 51234 198.18.54.11 22"


def node(**extra: object) -> dict[str, object]:
    return {"group_names": ["concentrators"], "svpn_management_networks": ["198.18.54.0/28"], **extra}


def test_a_controller_inside_the_management_networks_passes() -> None:
    assert ssh_source_problem("conc1", SESSION, node()) == ""
    assert (
        ssh_source_problem("conc1", SESSION, node(svpn_management_networks=["10.0.0.0/8", "198.18.54.1/32"]))
        == ""
    )


def test_a_controller_outside_them_is_named_with_the_networks_and_the_fix() -> None:
    problem = ssh_source_problem("conc1", "198.18.54.40 51234 198.18.54.11 22", node())
    assert problem.startswith("host conc1: the controller's SSH arrives from 198.18.54.40, outside ")
    assert "svpn_management_networks (198.18.54.0/28)" in problem and "lock the controller out" in problem
    assert "concentrator_management_networks" in problem


def test_the_roles_own_list_wins_over_the_farms() -> None:
    """As in the roles' defaults: loadbalancer_management_networks, when set, is what the LB's firewall
    uses."""
    lb = {"group_names": ["loadbalancers"], "svpn_management_networks": ["198.18.54.0/28"]}
    lb["loadbalancer_management_networks"] = ["198.18.99.0/24"]
    problem = ssh_source_problem("lb1", SESSION, lb)
    assert "outside loadbalancer_management_networks (198.18.99.0/24)" in problem
    assert (
        ssh_source_problem("conc1", SESSION, node(concentrator_management_networks=["198.18.54.1/32"])) == ""
    )


def test_no_session_or_a_malformed_list_is_a_problem_not_a_pass() -> None:
    assert "cannot tell where SSH comes from" in ssh_source_problem("conc1", "", node())
    assert "cannot tell where SSH comes from" in ssh_source_problem("conc1", "garbage", node())
    assert "none" in ssh_source_problem("conc1", SESSION, node(svpn_management_networks=[]))
    assert "not an IPv4 network" in ssh_source_problem("conc1", SESSION, node(svpn_management_networks=["x"]))


def test_which_hosts_are_managed_over_ssh() -> None:
    assert is_ssh_managed({}) and is_ssh_managed({"ansible_connection": "ssh"})
    assert not is_ssh_managed({"ansible_connection": "community.docker.docker"})


def test_check_yml_reaches_both_through_the_filter_plugin() -> None:
    filters = farm_filters()
    assert filters["svpn_ssh_source_problem"] is ssh_source_problem
    assert filters["svpn_is_ssh_managed"] is is_ssh_managed
