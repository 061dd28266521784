"""Validation: each bad manifest is rejected with Kubernetes' field path and message."""

import copy

import pytest

from minikube_py import api
from minikube_py.api import errors
from minikube_py.api.names import DNS1123_LABEL_ERROR, DNS1123_SUBDOMAIN_ERROR, LABEL_VALUE_ERROR


def deployment(**spec_changes):
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "busybox"}]},
            },
        },
    }
    manifest["spec"].update(spec_changes)
    return manifest


def pod(containers=None, **spec_changes):
    spec = {"containers": containers if containers is not None else [{"name": "web", "image": "busybox"}]}
    spec.update(spec_changes)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": spec}


def container(**fields):
    return {"name": "web", "image": "busybox", **fields}


def template_with(**pod_spec_changes):
    spec = {"containers": [{"name": "web", "image": "busybox"}], **pod_spec_changes}
    return {"metadata": {"labels": {"app": "web"}}, "spec": spec}


BAD_MANIFESTS = [
    (
        "image missing",
        deployment(template={"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web"}]}}),
        'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value',
    ),
    (
        "image empty",
        pod([container(image="")]),
        'Pod "web" is invalid: spec.containers[0].image: Required value',
    ),
    (
        "no containers",
        pod([]),
        'Pod "web" is invalid: spec.containers: Required value',
    ),
    (
        "bad restart policy",
        pod(restartPolicy="Sometimes"),
        'Pod "web" is invalid: spec.restartPolicy: Unsupported value: "Sometimes": '
        'supported values: "Always", "OnFailure", "Never"',
    ),
    (
        "template restart policy Never",
        deployment(template=template_with(restartPolicy="Never")),
        'Deployment.apps "web" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Never": '
        'supported values: "Always"',
    ),
    (
        "unknown field",
        deployment(replica=3),
        'Deployment.apps "web" is invalid: spec.replica: field not declared in schema',
    ),
    (
        "unknown container field",
        pod([container(imag="x")]),
        'Pod "web" is invalid: spec.containers[0].imag: field not declared in schema',
    ),
    (
        "name not a subdomain",
        {**pod(), "metadata": {"name": "Web_1"}},
        f'Pod "Web_1" is invalid: metadata.name: Invalid value: "Web_1": {DNS1123_SUBDOMAIN_ERROR}',
    ),
    (
        "namespace name not a label",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team.a"}},
        f'Namespace "team.a" is invalid: metadata.name: Invalid value: "team.a": {DNS1123_LABEL_ERROR}',
    ),
    (
        "no name nor generateName",
        {**pod(), "metadata": {}},
        'Pod "" is invalid: metadata.name: Required value: name or generateName is required',
    ),
    (
        "selector does not match template",
        deployment(template={"metadata": {"labels": {"app": "x"}},
                             "spec": {"containers": [{"name": "web", "image": "busybox"}]}}),
        'Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: {"app":"x"}: '
        '`selector` does not match template `labels`',
    ),
    (
        "selector missing",
        {**deployment(), "spec": {"template": template_with()}},
        'Deployment.apps "web" is invalid: spec.selector: Required value',
    ),
    (
        "selector empty",
        deployment(selector={}),
        'Deployment.apps "web" is invalid: spec.selector: Invalid value: {}: empty selector is invalid for deployment',
    ),
    (
        "surge and unavailable both zero",
        deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
        'Deployment.apps "web" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: '
        "may not be 0 when `maxSurge` is 0",
    ),
    (
        "surge and unavailable both zero percent",
        deployment(strategy={"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": "0%"}}),
        'Deployment.apps "web" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": '
        "may not be 0 when `maxSurge` is 0",
    ),
    (
        "unavailable over 100%",
        deployment(strategy={"rollingUpdate": {"maxUnavailable": "110%"}}),
        'Deployment.apps "web" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "110%": '
        "must not be greater than 100%",
    ),
    (
        "surge not a percent",
        deployment(strategy={"rollingUpdate": {"maxSurge": "many"}}),
        'Deployment.apps "web" is invalid: spec.strategy.rollingUpdate.maxSurge: Invalid value: "many": '
        "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
        "regex used for validation is '[0-9]+%')",
    ),
    (
        "negative surge",
        deployment(strategy={"rollingUpdate": {"maxSurge": -1}}),
        'Deployment.apps "web" is invalid: spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: '
        "must be greater than or equal to 0",
    ),
    (
        "Recreate with rollingUpdate",
        deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
        'Deployment.apps "web" is invalid: spec.strategy.rollingUpdate: Forbidden: '
        "may not be specified when strategy `type` is 'Recreate'",
    ),
    (
        "unknown strategy",
        deployment(strategy={"type": "BlueGreen"}),
        'Deployment.apps "web" is invalid: spec.strategy.type: Unsupported value: "BlueGreen": '
        'supported values: "Recreate", "RollingUpdate"',
    ),
    (
        "deadline not above minReadySeconds",
        deployment(progressDeadlineSeconds=10, minReadySeconds=10),
        'Deployment.apps "web" is invalid: spec.progressDeadlineSeconds: Invalid value: 10: '
        "must be greater than minReadySeconds",
    ),
    (
        "negative replicas",
        deployment(replicas=-1),
        'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0',
    ),
    (
        "replicas as string",
        deployment(replicas="3"),
        'Deployment.apps "web" is invalid: spec.replicas: Invalid value: "3": must be an integer',
    ),
    (
        "bad quantity",
        pod([container(resources={"limits": {"memory": "lots"}})]),
        'Pod "web" is invalid: spec.containers[0].resources.limits[memory]: Invalid value: "lots": '
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    ),
    (
        "request above limit",
        pod([container(resources={"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}})]),
        'Pod "web" is invalid: spec.containers[0].resources.requests[cpu]: Invalid value: "1": '
        "must be less than or equal to cpu limit of 500m",
    ),
    (
        "unknown resource name",
        pod([container(resources={"limits": {"gpu": "1"}})]),
        'Pod "web" is invalid: spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": '
        "must be a standard resource type or fully qualified",
    ),
    (
        "bad label value",
        {**pod(), "metadata": {"name": "web", "labels": {"app": "a b"}}},
        f'Pod "web" is invalid: metadata.labels: Invalid value: "a b": {LABEL_VALUE_ERROR}',
    ),
    (
        "label value not a string",
        {**pod(), "metadata": {"name": "web", "labels": {"version": 1}}},
        'Pod "web" is invalid: metadata.labels[version]: Invalid value: 1: must be a string',
    ),
    (
        "duplicate container names",
        pod([container(), container()]),
        'Pod "web" is invalid: spec.containers[1].name: Duplicate value: "web"',
    ),
    (
        "container name not a label",
        pod([container(name="Web")]),
        f'Pod "web" is invalid: spec.containers[0].name: Invalid value: "Web": {DNS1123_LABEL_ERROR}',
    ),
    (
        "probe without handler",
        pod([container(livenessProbe={"periodSeconds": 5})]),
        'Pod "web" is invalid: spec.containers[0].livenessProbe: Required value: must specify a handler type',
    ),
    (
        "probe with two handlers",
        pod([container(readinessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}})]),
        'Pod "web" is invalid: spec.containers[0].readinessProbe.tcpSocket: Forbidden: '
        "may not specify more than 1 handler type",
    ),
    (
        "liveness success threshold",
        pod([container(livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2})]),
        'Pod "web" is invalid: spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1',
    ),
    (
        "negative probe delay",
        pod([container(readinessProbe={"exec": {"command": ["true"]}, "initialDelaySeconds": -1})]),
        'Pod "web" is invalid: spec.containers[0].readinessProbe.initialDelaySeconds: Invalid value: -1: '
        "must be greater than or equal to 0",
    ),
    (
        "probe port out of range",
        pod([container(livenessProbe={"tcpSocket": {"port": 70000}})]),
        'Pod "web" is invalid: spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: 70000: '
        "must be between 1 and 65535, inclusive",
    ),
    (
        "container port zero",
        pod([container(ports=[{"containerPort": 0}])]),
        'Pod "web" is invalid: spec.containers[0].ports[0].containerPort: Invalid value: 0: '
        "must be between 1 and 65535, inclusive",
    ),
    (
        "container port protocol",
        pod([container(ports=[{"containerPort": 80, "protocol": "HTTP"}])]),
        'Pod "web" is invalid: spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": '
        'supported values: "SCTP", "TCP", "UDP"',
    ),
    (
        "volume mount without volume",
        pod([container(volumeMounts=[{"name": "data", "mountPath": "/data"}])]),
        'Pod "web" is invalid: spec.containers[0].volumeMounts[0].name: Not found: "data"',
    ),
    (
        "duplicate volumes",
        pod(volumes=[{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]),
        'Pod "web" is invalid: spec.volumes[1].name: Duplicate value: "data"',
    ),
    (
        "relative host path",
        pod(volumes=[{"name": "data", "hostPath": {"path": "srv"}}]),
        'Pod "web" is invalid: spec.volumes[0].hostPath.path: Invalid value: "srv": must be an absolute path',
    ),
    (
        "volume without source",
        pod(volumes=[{"name": "data"}]),
        'Pod "web" is invalid: spec.volumes[0]: Required value: must specify a volume type',
    ),
    (
        "env var name",
        pod([container(env=[{"name": "1BAD", "value": "x"}])]),
        'Pod "web" is invalid: spec.containers[0].env[0].name: Invalid value: "1BAD": a valid environment '
        "variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start "
        "with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation "
        "is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
    ),
    (
        "unsupported fieldRef",
        pod([container(env=[{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}}])]),
        'Pod "web" is invalid: spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: '
        '"status.phase": supported values: "metadata.name", "metadata.namespace", "metadata.uid", '
        '"spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"',
    ),
    (
        "all labels in an env var",
        pod([container(env=[{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}}])]),
        'Pod "web" is invalid: spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: '
        '"metadata.labels": supported values: "metadata.name", "metadata.namespace", "metadata.uid", '
        '"spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"',
    ),
    (
        "negative grace period",
        pod(terminationGracePeriodSeconds=-1),
        'Pod "web" is invalid: spec.terminationGracePeriodSeconds: Invalid value: -1: '
        "must be greater than or equal to 0",
    ),
    (
        "bad selector operator",
        deployment(selector={"matchExpressions": [{"key": "app", "operator": "Like", "values": ["web"]}]}),
        'Deployment.apps "web" is invalid: spec.selector.matchExpressions[0].operator: Invalid value: "Like": '
        "not a valid selector operator",
    ),
    (
        "In without values",
        deployment(selector={"matchExpressions": [{"key": "app", "operator": "In"}]}),
        'Deployment.apps "web" is invalid: spec.selector.matchExpressions[0].values: Required value: '
        "must be specified when `operator` is 'In' or 'NotIn'",
    ),
    (
        "replicaset template restart policy",
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
         "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template_with(restartPolicy="OnFailure")}},
        'ReplicaSet.apps "rs" is invalid: spec.template.spec.restartPolicy: Unsupported value: "OnFailure": '
        'supported values: "Always"',
    ),
]


@pytest.mark.parametrize("manifest, message", [case[1:] for case in BAD_MANIFESTS], ids=[case[0] for case in BAD_MANIFESTS])
def test_bad_manifest_is_rejected_with_the_exact_kubernetes_message(manifest, message):
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(copy.deepcopy(manifest))
    assert caught.value.message == message
    assert caught.value.code == 422


def test_several_problems_are_reported_together_with_their_paths():
    manifest = pod([container(image="", name="Web")], restartPolicy="Sometimes")
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(manifest)
    paths = [path for path, _ in caught.value.errors]
    assert paths == ["spec.containers[0].name", "spec.containers[0].image", "spec.restartPolicy"]
    assert caught.value.message.startswith('Pod "web" is invalid: [spec.containers[0].name: Invalid value: "Web": ')
    assert caught.value.message.endswith('supported values: "Always", "OnFailure", "Never"]')


def test_invalid_error_carries_kubernetes_status_details():
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(deployment(replicas=-1))
    status = caught.value.to_status()
    assert status["reason"] == "Invalid"
    assert status["details"]["name"] == "web"
    assert status["details"]["group"] == "apps"
    assert status["details"]["causes"][0]["field"] == "spec.replicas"


def test_generate_name_may_replace_name_and_is_validated_without_its_dash():
    manifest = {**pod(), "metadata": {"generateName": "web-7d9f-"}}
    assert api.parse_object(manifest).metadata.generate_name == "web-7d9f-"
    manifest = {**pod(), "metadata": {"generateName": "Web-"}}
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(manifest)
    assert caught.value.errors[0][0] == "metadata.generateName"


@pytest.mark.parametrize(
    "manifest, fragment",
    [
        ({"apiVersion": "apps/v1", "kind": "Deploymnt", "metadata": {"name": "x"}}, 'kind "Deploymnt" in version "apps/v1"'),
        ({"apiVersion": "v1", "kind": "Deployment"}, 'kind "Deployment" in version "v1"'),
        ({"apiVersion": "v1"}, "Object 'kind' is missing"),
        ({}, "Object 'apiVersion' and 'kind' are missing"),
        (["not", "a", "mapping"], "must be a mapping"),
    ],
)
def test_unknown_or_missing_kind_is_a_bad_request_listing_what_is_supported(manifest, fragment):
    with pytest.raises(errors.BadRequest) as caught:
        api.parse_object(manifest)
    assert fragment in caught.value.message
    if "no matches" in caught.value.message:
        assert "apps/v1 Deployment" in caught.value.message and "v1 Pod" in caught.value.message


def test_valid_full_featured_pod_passes_validation():
    manifest = pod(
        [container(
            ports=[{"containerPort": 8080, "name": "http"}],
            env=[{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            resources={"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}},
            livenessProbe={"httpGet": {"port": "http"}},
            readinessProbe={"tcpSocket": {"port": 8080}},
            volumeMounts=[{"name": "data", "mountPath": "/data"}, {"name": "host", "mountPath": "/host", "readOnly": True}],
        )],
        initContainers=[{"name": "init", "image": "busybox", "command": ["true"]}],
        volumes=[{"name": "data", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/srv", "type": "DirectoryOrCreate"}}],
        restartPolicy="OnFailure",
        activeDeadlineSeconds=60,
    )
    parsed = api.parse_object(manifest)
    assert parsed.spec.init_containers[0].name == "init"


def test_init_container_sharing_a_name_with_a_container_is_a_duplicate():
    manifest = pod(initContainers=[{"name": "web", "image": "busybox"}])
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(manifest)
    assert caught.value.errors == [("spec.containers[0].name", 'Duplicate value: "web"')]


# --- updates --------------------------------------------------------------------------------


def test_selector_of_a_deployment_is_immutable():
    old = api.parse_object(deployment())
    new_manifest = deployment(selector={"matchLabels": {"app": "web", "tier": "fe"}},
                              template={"metadata": {"labels": {"app": "web", "tier": "fe"}},
                                        "spec": {"containers": [{"name": "web", "image": "busybox"}]}})
    new = api.parse_object(new_manifest)
    assert api.validate_update(new, old) == [
        ("spec.selector", 'Invalid value: {"matchLabels":{"app":"web","tier":"fe"}}: field is immutable')
    ]


def test_scaling_a_deployment_is_a_valid_update():
    assert api.validate_update(api.parse_object(deployment(replicas=5)), api.parse_object(deployment())) == []


def test_pod_image_and_deadline_may_change_but_nothing_else():
    old = api.parse_object(pod(activeDeadlineSeconds=100))
    assert api.validate_update(api.parse_object(pod([container(image="busybox:2")], activeDeadlineSeconds=50)), old) == []
    changed = api.validate_update(api.parse_object(pod(restartPolicy="Never", activeDeadlineSeconds=100)), old)
    assert changed == [(
        "spec",
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations)",
    )]


def test_pod_node_name_is_immutable_once_set():
    old = api.parse_object(pod(nodeName="node1"))
    new = api.parse_object(pod(nodeName="node2"))
    assert api.validate_update(new, old) == [("spec.nodeName", 'Invalid value: "node2": field is immutable')]


def test_validate_update_accepts_wire_dicts_and_checks_the_name():
    old = api.parse_object(pod()).to_dict()
    new = copy.deepcopy(old)
    new["metadata"]["name"] = "other"
    assert api.validate_update(new, old) == [("metadata.name", 'Invalid value: "other": field is immutable')]


# --- Go field widths (issue 9 item 8) ----------------------------------------------------------

INT32_RANGE = "(must be between -2147483648 and 2147483647, inclusive)"
INT64_RANGE = "(must be between -9223372036854775808 and 9223372036854775807, inclusive)"


@pytest.mark.parametrize("field, value, width", [
    ("replicas", 9223372036854775808, "int32"),
    ("replicas", 2**31, "int32"),
    ("minReadySeconds", 2**40, "int32"),
    ("revisionHistoryLimit", -(2**31) - 1, "int32"),
    ("progressDeadlineSeconds", 10**20, "int32"),
])
def test_deployment_numbers_beyond_int32_are_rejected(field, value, width):
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(deployment(**{field: value}))
    assert (f"spec.{field}", f"Invalid value: {value}: cannot unmarshal number into a field of type {width} {INT32_RANGE}") \
        in caught.value.errors


def test_int32_limits_themselves_are_accepted_and_checked_by_kubernetes_rules():
    assert api.parse_object(deployment(replicas=2**31 - 1)).spec.replicas == 2**31 - 1
    with pytest.raises(errors.Invalid, match="spec.replicas: Invalid value: -2147483648: must be greater than or equal to 0"):
        api.parse_object(deployment(replicas=-(2**31)))


@pytest.mark.parametrize("probe_field", ["periodSeconds", "initialDelaySeconds", "timeoutSeconds", "failureThreshold"])
def test_probe_timings_beyond_int32_are_rejected(probe_field):
    probe = {"exec": {"command": ["true"]}, probe_field: 10**20}
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(pod([container(livenessProbe=probe)]))
    assert caught.value.errors == [(
        f"spec.containers[0].livenessProbe.{probe_field}",
        f"Invalid value: 100000000000000000000: cannot unmarshal number into a field of type int32 {INT32_RANGE}",
    )]


@pytest.mark.parametrize("manifest, path", [
    (pod([container(ports=[{"containerPort": 2**32 + 80}])]), "spec.containers[0].ports[0].containerPort"),
    (pod([container(readinessProbe={"httpGet": {"port": 2**32 + 80}})]), "spec.containers[0].readinessProbe.httpGet.port"),
    (deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2**33}}),
     "spec.strategy.rollingUpdate.maxSurge"),
])
def test_ports_and_int_or_strings_hold_an_int32(manifest, path):
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(manifest)
    assert any(found == path and "type int32" in message for found, message in caught.value.errors)


@pytest.mark.parametrize("field", ["terminationGracePeriodSeconds", "activeDeadlineSeconds"])
def test_pod_int64_fields_reject_numbers_beyond_int64(field):
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(pod(**{field: 2**63}))
    assert (f"spec.{field}", f"Invalid value: {2**63}: cannot unmarshal number into a field of type int64 {INT64_RANGE}") \
        in caught.value.errors


def test_the_largest_int64_grace_period_is_a_valid_pod():
    assert api.parse_object(pod(terminationGracePeriodSeconds=2**63 - 1)).spec.termination_grace_period_seconds == 2**63 - 1


def test_active_deadline_keeps_kubernetes_range():
    with pytest.raises(errors.Invalid, match="must be between 1 and 2147483647, inclusive"):
        api.parse_object(pod(activeDeadlineSeconds=2**31))


@pytest.mark.parametrize("value", [3.0, 1.5, 1e20])
def test_floats_are_not_integers_on_the_wire(value):
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(deployment(replicas=value))
    assert caught.value.errors == [("spec.replicas", f"Invalid value: {value}: must be an integer")]


@pytest.mark.parametrize("value, problem", [
    (None, None),
    (30, None),
    (2**63 - 1, None),
    (2**63, "cannot unmarshal number into a field of type int64"),
    ("30", "must be an integer"),
    (True, "must be an integer"),
    (1.5, "must be an integer"),
])
def test_delete_grace_period_is_an_int64(value, problem):
    from minikube_py.api.validation import grace_period_problem

    found = grace_period_problem(value)
    assert (found is None) if problem is None else (problem in found and found.startswith("gracePeriodSeconds: "))
