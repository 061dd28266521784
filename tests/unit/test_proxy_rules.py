"""The service proxy's nftables rule set, compared as data (no kernel involved)."""

from __future__ import annotations

from minikube_py import api
from minikube_py.proxy import rules

NODE, NODE_ADDRESS, POD_CIDR = "node-1", "192.168.1.5", "10.244.0.0/16"


def service(name, cluster_ip="10.96.0.10", **spec):
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": cluster_ip, "selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}}
    return api.parse_object(body)


def endpoint_slice(service_name, *endpoints, port=8080):
    """`endpoints`: (address, ready, serving, terminating) tuples."""
    return api.parse_object({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"{service_name}-abcde", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [address], "nodeName": NODE,
                       "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
                      for address, ready, serving, terminating in endpoints]})


def ready(address):
    return (address, True, True, False)


def build(services, slices, **options):
    return rules.build_ruleset("test", services, slices, POD_CIDR, NODE, NODE_ADDRESS, **options)


def dnat_targets(ruleset, chain_name):
    """The (address, port) pairs a service chain balances over (directly or, with affinity,
    through endpoint chains)."""
    last = ruleset.chains[chain_name].rules[-1]
    if "dnat" in last[-1]:
        return dnat_choices(last[-1]["dnat"])
    step = last[0]
    targets = [step["goto"]["target"]] if "goto" in step else \
        [verdict["goto"]["target"] for _, verdict in step["vmap"]["data"]["set"]]
    return [choice for target in targets for choice in dnat_choices(ruleset.chains[target].rules[-1][-1]["dnat"])]


def dnat_choices(dnat):
    if "port" in dnat:
        return [(dnat["addr"], dnat["port"])]
    return [tuple(target["concat"]) for _, target in dnat["addr"]["map"]["data"]["set"]]


def service_chain(ruleset, key):
    return ruleset.maps[rules.SERVICE_IPS_MAP].elements[key]["goto"]["target"]


def test_a_cluster_ip_balances_randomly_over_ready_endpoints():
    ruleset = build([service("web")], [endpoint_slice("web", ready("10.244.0.5"), ready("10.244.0.6"),
                                                      ("10.244.0.7", False, False, False))])
    assert ruleset.table == "minikube-py-test"
    chain = service_chain(ruleset, ("10.96.0.10", "tcp", 80))
    assert dnat_targets(ruleset, chain) == [("10.244.0.5", 8080), ("10.244.0.6", 8080)]
    numgen = ruleset.chains[chain].rules[-1][-1]["dnat"]["addr"]["map"]["key"]["numgen"]
    assert numgen == {"mode": "random", "mod": 2, "offset": 0}
    assert ruleset.chains[chain].rules[-1][0] == {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}},
                                                            "right": "tcp"}}
    # Clients outside the pod network are masqueraded so replies come back through the node.
    assert ruleset.chains[chain].rules[0] == [
        {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                   "right": {"prefix": {"addr": "10.244.0.0", "len": 16}}}},
        {"jump": {"target": "mark-for-masquerade"}}]


def test_hairpin_traffic_is_masqueraded_through_a_set_of_endpoint_address_pairs():
    ruleset = build([service("web"), service("api", cluster_ip="10.96.0.11")],
                    [endpoint_slice("web", ready("10.244.0.5"), ready("10.244.0.6")),
                     endpoint_slice("api", ready("10.244.0.5"))])
    assert ruleset.hairpin == {"10.244.0.5", "10.244.0.6"}
    assert ruleset.chains["masquerading"].rules[0] == [
        {"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip", "field": "saddr"}},
                                                   {"payload": {"protocol": "ip", "field": "daddr"}}]},
                   "right": "@hairpin"}},
        {"masquerade": {"flags": ["fully-random"]}}]
    commands = rules.full_commands(ruleset)
    assert {"add": {"element": {"family": "ip", "table": "minikube-py-test", "name": "hairpin", "elem": [
        {"concat": ["10.244.0.5", "10.244.0.5"]}, {"concat": ["10.244.0.6", "10.244.0.6"]}]}}} in commands
    # No chain per endpoint without session affinity: the service chain DNATs directly.
    assert not [name for name in ruleset.chains if name.startswith("endpoint-")]


def test_a_service_without_endpoints_is_rejected_not_black_holed():
    ruleset = build([service("web", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])],
                    [endpoint_slice("web", ("10.244.0.5", False, False, False))])
    assert ruleset.maps[rules.SERVICE_IPS_MAP].elements == {}
    assert ruleset.maps[rules.NO_ENDPOINT_SERVICES_MAP].elements == {
        ("10.96.0.10", "tcp", 80): {"goto": {"target": "reject-chain"}}}
    assert ruleset.maps[rules.NO_ENDPOINT_NODEPORTS_MAP].elements == {("tcp", 30080): {"goto": {"target": "reject-chain"}}}
    assert ruleset.chains["reject-chain"].rules == [[{"reject": None}]]
    assert [{"jump": {"target": "endpoints-check"}}] in ruleset.chains["filter-forward"].rules


def test_terminating_endpoints_serve_only_when_nothing_is_ready():
    slices = [endpoint_slice("web", ("10.244.0.5", False, True, True), ("10.244.0.6", False, False, True))]
    ruleset = build([service("web")], slices)
    assert dnat_targets(ruleset, service_chain(ruleset, ("10.96.0.10", "tcp", 80))) == [("10.244.0.5", 8080)]
    with_ready = build([service("web")], [endpoint_slice("web", ("10.244.0.5", False, True, True), ready("10.244.0.9"))])
    assert dnat_targets(with_ready, service_chain(with_ready, ("10.96.0.10", "tcp", 80))) == [("10.244.0.9", 8080)]


def test_node_ports_go_through_an_external_chain_that_masquerades():
    ruleset = build([service("web", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])],
                    [endpoint_slice("web", ready("10.244.0.5"))])
    external = ruleset.maps[rules.SERVICE_NODEPORTS_MAP].elements[("tcp", 30080)]["goto"]["target"]
    assert external.startswith("external-")
    assert ruleset.chains[external].rules == [
        [{"jump": {"target": "mark-for-masquerade"}}],
        [{"goto": {"target": service_chain(ruleset, ("10.96.0.10", "tcp", 80))}}]]


def test_load_balancers_answer_on_the_node_address_and_local_policy_keeps_the_client():
    spec = {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}
    ruleset = build([service("web", **spec)], [endpoint_slice("web", ready("10.244.0.5"))])
    external = service_chain(ruleset, (NODE_ADDRESS, "tcp", 80))
    assert ruleset.maps[rules.SERVICE_NODEPORTS_MAP].elements[("tcp", 30080)]["goto"]["target"] == external
    [[goto_local]] = ruleset.chains[external].rules
    assert {"jump": {"target": "mark-for-masquerade"}} not in ruleset.chains[goto_local["goto"]["target"]].rules[0]


def test_client_ip_affinity_remembers_each_client_per_endpoint():
    spec = {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}
    ruleset = build([service("web", **spec)], [endpoint_slice("web", ready("10.244.0.5"), ready("10.244.0.6"))])
    assert [named.timeout_seconds for name, named in ruleset.sets.items() if name.startswith("affinity-")] == [60, 60]
    chain = ruleset.chains[service_chain(ruleset, ("10.96.0.10", "tcp", 80))]
    lookups = [rule for rule in chain.rules if str(rule[0].get("match", {}).get("right", "")).startswith("@affinity-")]
    assert len(lookups) == 2
    set_name = lookups[0][0]["match"]["right"][1:]
    endpoint_chain = lookups[0][1]["goto"]["target"]
    assert [{"set": {"op": "update", "elem": {"payload": {"protocol": "ip", "field": "saddr"}},
                     "set": f"@{set_name}"}}] in ruleset.chains[endpoint_chain].rules


def test_headless_and_external_name_services_get_no_rules():
    ruleset = build([service("db", cluster_ip="None", ports=None),
                     api.parse_object({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                                       "spec": {"type": "ExternalName", "externalName": "example.com"}})],
                    [endpoint_slice("db", ready("10.244.0.5"))])
    assert all(not nft_map.elements for nft_map in ruleset.maps.values())


def test_masquerade_all_without_bridge_netfilter():
    ruleset = build([service("web")], [endpoint_slice("web", ready("10.244.0.5"))], masquerade_all=True)
    chain = ruleset.chains[service_chain(ruleset, ("10.96.0.10", "tcp", 80))]
    assert chain.rules[0] == [{"jump": {"target": "mark-for-masquerade"}}]


def test_the_first_write_replaces_the_table_in_one_transaction():
    commands = rules.full_commands(build([service("web")], [endpoint_slice("web", ready("10.244.0.5"))]))
    assert commands[:3] == [{"add": {"table": {"family": "ip", "name": "minikube-py-test"}}},
                            {"delete": {"table": {"family": "ip", "name": "minikube-py-test"}}},
                            {"add": {"table": {"family": "ip", "name": "minikube-py-test"}}}]
    hooks = {command["add"]["chain"]["name"]: command["add"]["chain"].get("hook")
             for command in commands if "chain" in command.get("add", {})}
    assert hooks["nat-prerouting"] == "prerouting" and hooks["nat-output"] == "output"


SETTINGS = rules.Settings("test", POD_CIDR, NODE, NODE_ADDRESS)


def state(services, slices):
    return rules.TableState.of(SETTINGS, services, slices)


def verbs(commands):
    """(verb, kind, name) of each command."""
    return [(verb, kind, body.get("chain") if kind == "rule" else body.get("name"))
            for command in commands for verb, objects in command.items() for kind, body in objects.items()]


def test_an_endpoint_change_rewrites_only_that_services_chain_and_the_hairpin_set():
    services = [service("web"), service("api", cluster_ip="10.96.0.11")]
    before = state(services, [endpoint_slice("web", ready("10.244.0.5")), endpoint_slice("api", ready("10.244.0.8"))])
    after = before.changed({("default", "web"): rules.service_rules(
        services[0], [endpoint_slice("web", ready("10.244.0.5"), ready("10.244.0.6"))], SETTINGS)})
    commands = rules.update_commands(before, after, [("default", "web")])
    web_chain = next(name for name in after.services[("default", "web")].chains)
    assert verbs(commands) == [("flush", "chain", web_chain), ("add", "rule", web_chain), ("add", "rule", web_chain),
                               ("add", "element", "hairpin")]
    assert commands[-1]["add"]["element"]["elem"] == [{"concat": ["10.244.0.6", "10.244.0.6"]}]
    assert rules.update_commands(after, after, [("default", "web")]) == []
    # The same state written whole and written as this difference is the same table.
    assert after.ruleset() == state(services, [endpoint_slice("web", ready("10.244.0.5"), ready("10.244.0.6")),
                                               endpoint_slice("api", ready("10.244.0.8"))]).ruleset()


def test_a_service_losing_its_last_endpoint_moves_to_the_reject_map_and_its_chain_goes_last():
    web = service("web")
    before = state([web], [endpoint_slice("web", ready("10.244.0.5"))])
    after = before.changed({("default", "web"): rules.service_rules(web, [], SETTINGS)})
    commands = verbs(rules.update_commands(before, after, [("default", "web")]))
    chain = next(iter(before.services[("default", "web")].chains))
    assert commands == [("delete", "element", rules.SERVICE_IPS_MAP), ("delete", "element", "hairpin"),
                        ("add", "element", rules.NO_ENDPOINT_SERVICES_MAP),
                        ("flush", "chain", chain), ("delete", "chain", chain)]


def test_a_cluster_ip_passing_to_another_service_is_deleted_before_it_is_added():
    old, new = service("old"), service("new")  # the same ClusterIP, reused in one burst
    before = state([old], [endpoint_slice("old", ready("10.244.0.5"))])
    after = before.changed({("default", "old"): None,
                            ("default", "new"): rules.service_rules(new, [endpoint_slice("new", ready("10.244.0.5"))],
                                                                    SETTINGS)})
    commands = verbs(rules.update_commands(before, after, [("default", "old"), ("default", "new")]))
    assert commands.index(("delete", "element", rules.SERVICE_IPS_MAP)) < \
        commands.index(("add", "element", rules.SERVICE_IPS_MAP))
    assert ("add", "element", "hairpin") not in commands and ("delete", "element", "hairpin") not in commands
    assert after.hairpin == {"10.244.0.5": 1}


def test_a_changed_affinity_timeout_makes_new_sets_and_removes_the_old_ones():
    def web(timeout):
        return service("web", sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": timeout}})
    slices = [endpoint_slice("web", ready("10.244.0.5"))]
    before = state([web(60)], slices)
    after = before.changed({("default", "web"): rules.service_rules(web(120), slices, SETTINGS)})
    commands = verbs(rules.update_commands(before, after, [("default", "web")]))
    [old_set], [new_set] = before.services[("default", "web")].sets, after.services[("default", "web")].sets
    assert old_set != new_set
    assert commands[0] == ("add", "set", new_set) and commands[-1] == ("delete", "set", old_set)


def test_the_daemons_listeners_on_the_bridge_address_refuse_packets_from_other_hosts():
    settings = rules.Settings("test", POD_CIDR, NODE, NODE_ADDRESS, bridge="mkpy-test", bridge_address="10.244.0.1",
                              bridge_ports=(6443, 53))
    first = rules.base_ruleset(settings).chains["filter-input"].rules[0]
    assert first == [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.244.0.1"}},
        {"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": {"set": ["lo", "mkpy-test"]}}},
        {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": {"set": ["tcp", "udp"]}}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": {"set": [53, 6443]}}},
        {"drop": None}]
