"""The Registry: Kubernetes API semantics over the store, in wire dicts.

Everything that changes cluster state comes through here: the HTTP server is a thin router onto
it and in-process clients call it directly. It does what kube-apiserver's generic registry and
the per-kind strategies do: parse, default and validate; own the server-set metadata (uid,
creationTimestamp, generation, resourceVersion); keep `status` and the rest of the object apart
(users write spec, the agent and controllers write status, neither overwrites the other);
compare-and-swap on resourceVersion, retrying internally when the caller gave none; graceful pod
deletion, finalizers and propagation policies; binding; the scale subresource; and watches that
filter by label and field selectors the way the watch cache does (an object that stops matching
is DELETED for that watcher, one that starts matching is ADDED).

It stays one module of about 700 lines: every verb goes through the same compare-and-swap and
watch path, and splitting by verb would split rules that must agree (generation, status,
deletion and finalizers).
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections import deque
from typing import Any, Callable

from minikube_py import api
from minikube_py.api import errors
from minikube_py.api.apps_validation import stamp_template_generation
from minikube_py.api.parsing import invalid_error
from minikube_py.api.qos import pod_qos_class
from minikube_py.apiserver import ephemeral, pagination
from minikube_py.apiserver.dryrun import DryRunStore
from minikube_py.apiserver.fieldmanager import FieldManager
from minikube_py.apiserver.fieldsets import ApplyTypeError
from minikube_py.apiserver.eviction import evict
from minikube_py.apiserver.patch import MERGE_PATCH, apply_patch
from minikube_py.apiserver.discovery import SCALABLE_RESOURCES
from minikube_py.apiserver.resource_metrics import ResourceMetricsApi
from minikube_py.apiserver.scheduling_admission import (DefaultTolerationSeconds, admit_pod_scheduling, admit_priority_class,
                                                        system_priority_class_bodies)
from minikube_py.apiserver.serviceaccount_admission import admit_pod
from minikube_py.apiserver.storage_admission import admit_storage
from minikube_py.apiserver.serviceaccount_tokens import TokenIssuer, token_request
from minikube_py.apiserver.service_allocation import (DEFAULT_SERVICE_CIDR, NODE_PORT_RANGE, AllocationError,
                                                        ServiceAllocator)
from minikube_py.clock import Clock
from minikube_py.store import ObjectStore, conflict, not_found, resource_label, status_details
from minikube_py.api.watch import EventStream

BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
UNDELETABLE_NAMESPACES = ("default", "kube-system", "kube-public")
DEFAULT_POD_GRACE_SECONDS = 30
PROPAGATION_FINALIZERS = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}
# The kinds whose kube-apiserver storage sets ReturnDeletedObject: a DELETE that removes one at
# once answers with the object; every other kind answers with a Success Status.
RETURNS_DELETED_OBJECT = frozenset({"pods", "services", "serviceaccounts", "namespaces", "persistentvolumes",
                                    "persistentvolumeclaims", "storageclasses", "podtemplates", "priorityclasses",
                                    "limitranges", "resourcequotas", "replicationcontrollers"})
# A write without a resourceVersion from the caller is retried on an internal conflict, as
# kube-apiserver's GuaranteedUpdate does; only a pathological hot object exhausts this.
UPDATE_ATTEMPTS = 32
MAX_REVISION = 2**63 - 1  # revisions are sqlite integers
GENERATE_NAME_ATTEMPTS = 8
# The field manager of writes made in-process (controllers, the node agent) rather than over HTTP.
DAEMON_FIELD_MANAGER = "minikube-py"
# Metadata only the server sets; a client's values are ignored.
SERVER_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                   "generation", "resourceVersion")


class Forbidden(errors.ApiError):
    code = 403
    reason = "Forbidden"


def _namespace_terminating(info, namespace: str, name: str) -> Forbidden:
    return Forbidden(f'{info.qualified_plural} "{name}" is forbidden: unable to create new '
                     f"content in namespace {namespace} because it is being terminated")


def selector_text(label_selector: dict | None) -> str:
    """A LabelSelector as the label query string the Scale subresource reports."""
    if label_selector is None:
        return ""
    return str(api.selectors.Selector.from_label_selector(label_selector))


def _metadata(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _metadata_of_body(info, body: dict) -> dict:
    """A copy of a request body's metadata; BadRequest when it is not an object."""
    metadata = body.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise errors.BadRequest(f"{info.kind} metadata: must be an object, not {type(metadata).__name__}")
    return dict(metadata)


class ObjectFilter:
    """Label and field selectors of a list or watch, parsed once."""

    def __init__(self, resource: str, label_selector: str | None, field_selector: str | None):
        labels = api.selectors.parse_selector(label_selector) if label_selector else None
        self._labels = None if labels is None or labels.is_empty() else labels
        self._fields = api.selectors.parse_field_selector(field_selector, resource)

    @property
    def selects_everything(self) -> bool:
        return self._labels is None and not self._fields

    def matches(self, obj: dict) -> bool:
        if self._labels is not None and not self._labels.matches(_metadata(obj).get("labels")):
            return False
        return api.selectors.matches_fields(obj, self._fields)


class RegistryWatch(EventStream):
    """A Registry watch: `{"type", "object"}` dicts, synthetic ADDED events first when asked
    for, then live changes filtered by the selectors. Iterate, or call `next(timeout)`
    (None on timeout or once closed); `close()` ends it."""

    def __init__(self, watcher, initial: list[dict], object_filter: ObjectFilter):
        self._watcher = watcher
        self._initial = deque({"type": "ADDED", "object": obj} for obj in initial)
        self._filter = object_filter

    def next(self, timeout: float | None = None) -> dict | None:
        if self._initial:
            return self._initial.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self._watcher.next(remaining)
            if event is None:
                return None
            converted = self._convert(event)
            if converted is not None:
                return converted

    def _convert(self, event) -> dict | None:
        if self._filter.selects_everything:
            return {"type": event.type, "object": event.object}
        matches_now = self._filter.matches(event.object)
        matched_before = event.previous is not None and self._filter.matches(event.previous)
        if event.type == "MODIFIED":
            if matches_now and not matched_before:
                return {"type": "ADDED", "object": event.object}
            if matched_before and not matches_now:
                # What this watcher last saw, at the revision where it stopped matching.
                previous = {**event.previous, "metadata": {
                    **event.previous["metadata"], "resourceVersion": str(event.revision)}}
                return {"type": "DELETED", "object": previous}
        return {"type": event.type, "object": event.object} if matches_now else None

    def on_ready(self, callback) -> None:
        """`callback()` whenever `next(0)` may have something (see Watcher.on_ready): at once if
        synthetic ADDED events are waiting."""
        self._watcher.on_ready(callback)
        if callback is not None and self._initial:
            callback()

    def close(self) -> None:
        self._initial.clear()
        self._watcher.close()

    @property
    def closed(self) -> bool:
        return self._watcher.closed


class Registry:
    """Kubernetes semantics over a store (either backend). Bootstraps the `default`, `kube-system`,
    `kube-public` and `kube-node-lease` namespaces the first time it opens a store."""

    def __init__(self, store: ObjectStore, clock: Clock | None = None, service_cidr: str = DEFAULT_SERVICE_CIDR,
                 node_ports: tuple[int, int] = NODE_PORT_RANGE):
        self.store = store
        self.clock = clock or Clock()
        self.services = ServiceAllocator(store, service_cidr, node_ports)
        # expire_events' memory: (namespace, name) -> (revision, last write time) of each Event.
        self._event_write_times: dict[tuple[str, str], tuple[int, float | None]] = {}
        # Signs ServiceAccount tokens (serviceaccount_tokens.py); the daemon gives it its key.
        self.token_issuer: TokenIssuer | None = None
        # DefaultTolerationSeconds admission's durations (the daemon sets them from `start`'s flags).
        self.default_tolerations = DefaultTolerationSeconds()
        # Who this Registry's writes are recorded as in managedFields (`acting_as`).
        self.field_manager = DAEMON_FIELD_MANAGER
        # The apiVersion a request wrote at (`acting_as`): its managedFields entry records that
        # version, as kube-apiserver does (a write at autoscaling/v1 says autoscaling/v1).
        self.request_api_version: str | None = None
        self.fields = FieldManager(self._now)
        # The Metrics API: node agents add themselves as sources (resource_metrics.py).
        self.resource_metrics = ResourceMetricsApi(self)
        for namespace in BOOTSTRAP_NAMESPACES:
            if store.get("namespaces", "", namespace) is None:
                try:
                    self.create("namespaces", None, {"metadata": {"name": namespace}})
                except errors.AlreadyExists:
                    pass
        for priority_class in system_priority_class_bodies():
            if store.get("priorityclasses", "", priority_class["metadata"]["name"]) is None:
                try:
                    self.create("priorityclasses", None, priority_class)
                except errors.AlreadyExists:
                    pass

    def acting_as(self, field_manager: str, api_version: str | None = None) -> "Registry":
        """This Registry with its writes recorded in managedFields as `field_manager`'s, made at
        `api_version` (None: each object's own apiVersion)."""
        view = copy.copy(self)
        view.field_manager = field_manager
        view.request_api_version = api_version
        return view

    def _recorded_version(self, info) -> str | None:
        """The apiVersion a write of `info` is recorded at in managedFields: the request's when
        it is one `info` is served at, else None (the object's own)."""
        wanted = self.request_api_version
        if wanted and any(served.api_version == wanted for served in info.versions):
            return wanted
        return None

    def dry_run(self) -> "Registry":
        """This Registry for one dry-run request (`?dryRun=All`): the same code on a store that
        reads the real one and writes nothing (apiserver/dryrun.py)."""
        view = copy.copy(self)
        view.store = DryRunStore(self.store)
        view.services = copy.copy(self.services)
        view.services.store = view.store
        return view

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _info(resource: str):
        info = api.RESOURCES.get(resource)
        if info is None:
            try:
                info = api.resource_for(resource)
            except KeyError:
                raise errors.NotFound(f"the server could not find the requested resource ({resource})",
                                      {"kind": resource}) from None
        return info

    @staticmethod
    def _namespace(info, namespace: str | None) -> str:
        return (namespace or "default") if info.namespaced else ""

    def _now(self) -> str:
        return api.times.format_time(self.clock.now())

    def _stored(self, info, namespace: str, name: str) -> dict:
        current = self.store.get(info.plural, namespace, name)
        if current is None:
            raise not_found(info.plural, name)
        return current

    @staticmethod
    def _parse(body: dict):
        """Parse, default and validate a wire dict (kind and apiVersion already those of
        `info`, see `_check_body`); returns the model and its wire form."""
        model = api.parse_object(body)
        return model, model.to_dict()

    def _check_body(self, info, namespace: str | None, name: str | None, body: Any) -> dict:
        """A shallow copy of the request body with kind, apiVersion and namespace filled in
        from the URL; BadRequest when they disagree with it."""
        if not isinstance(body, dict):
            raise errors.BadRequest(f"the request body must be a {info.kind} object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if (kind and kind != info.kind) or (api_version and api_version != info.api_version):
            try:
                hint = f"; send it to the {api.resource_for_kind(api_version, kind).plural} endpoint"
            except KeyError:
                hint = ""
            raise errors.BadRequest(f"the object's apiVersion/kind {api_version or '?'}/{kind or '?'} does not "
                                    f"match this URL, which serves {info.api_version}/{info.kind}{hint}")
        metadata = _metadata_of_body(info, body)
        if info.namespaced:
            if namespace and metadata.get("namespace") and metadata["namespace"] != namespace:
                raise errors.BadRequest("the namespace of the provided object does not match the "
                                        "namespace sent on the request")
            metadata["namespace"] = namespace or metadata.get("namespace") or "default"
        else:
            metadata.pop("namespace", None)
        if name is not None:
            if metadata.get("name") and metadata["name"] != name:
                raise errors.BadRequest(f"the name of the object ({metadata['name']}) does not "
                                        f"match the name on the URL ({name})")
            metadata["name"] = name
        return {**body, "kind": info.kind, "apiVersion": info.api_version, "metadata": metadata}

    def _require_active_namespace(self, info, namespace: str, name: str) -> None:
        stored = self.store.get("namespaces", "", namespace)
        if stored is None:
            raise not_found("namespaces", namespace)
        if _metadata(stored).get("deletionTimestamp"):
            raise _namespace_terminating(info, namespace, name)

    # -- create and read ---------------------------------------------------------------------

    def create(self, resource: str, namespace: str | None, body: dict) -> dict:
        return self._create(self._info(resource), namespace, body, track_fields=True)

    def _create(self, info, namespace: str | None, body: dict, track_fields: bool) -> dict:
        """Create; `track_fields` False when the body's managedFields are already final (apply)."""
        body = self._check_body(info, namespace, None, body)
        metadata = body["metadata"]
        if metadata.get("resourceVersion"):
            raise errors.BadRequest("resourceVersion should not be set on objects to be created")
        prefix = None if metadata.get("name") else metadata.get("generateName")
        if not metadata.get("name"):
            if not prefix:
                raise invalid_error(info, "", [("metadata.name",
                                          "Required value: name or generateName is required")])
            metadata["name"] = api.names.generate_name(prefix)
        if info.namespaced:
            self._require_active_namespace(info, metadata["namespace"], metadata["name"])
        for key in SERVER_METADATA:
            metadata.pop(key, None)
        if info.plural != "nodes":
            # Status belongs to controllers and the agent; nodes are created by their agent.
            body.pop("status", None)
        # The uid comes before defaulting, as in kube-apiserver: a Job's generated selector is made of it.
        metadata["uid"] = str(uuid.uuid4())
        if info.plural == "pods" and self.token_issuer is not None:
            admit_pod(self, body)  # only where tokens can be issued for the volume it adds
        if info.plural in ("persistentvolumes", "persistentvolumeclaims"):
            if isinstance(body.get("spec"), dict):
                body["spec"] = dict(body["spec"])  # a copy: the caller's body stays as it was
            admit_storage(info.plural, body, lambda: self.store.list("storageclasses")[0])
        if info.plural == "pods":
            if isinstance(body.get("spec"), dict):
                body["spec"] = dict(body["spec"])  # a copy: the caller's body stays as it was
            admit_pod_scheduling(self, body)
        elif info.plural == "priorityclasses":
            admit_priority_class(self, body)
        model, wire = self._parse(body)
        wire["metadata"].update(uid=metadata["uid"], creationTimestamp=self._now(), generation=1)
        if info.plural == "daemonsets":
            stamp_template_generation(wire, None)
        if info.plural == "pods":
            # As kube-apiserver's pod strategy (PrepareForCreate): the QoS class is fixed at creation.
            wire["status"] = {"phase": "Pending", "qosClass": pod_qos_class(model.spec)}
        elif info.plural == "namespaces":
            wire["status"] = {"phase": "Active"}
        elif info.plural == "services":
            wire["status"] = {"loadBalancer": {}}
        if track_fields:
            self.fields.update(None, wire, self.field_manager, model=info.model,
                               api_version=self._recorded_version(info))
        if info.plural == "services" and prefix is None and \
                self.store.get(info.plural, wire["metadata"]["namespace"], wire["metadata"]["name"]) is not None:
            # Refused before allocating, so the answer is AlreadyExists, not "IP already allocated".
            raise errors.AlreadyExists(f'{resource_label(info.plural)} "{wire["metadata"]["name"]}" already exists',
                                       {"name": wire["metadata"]["name"], "kind": info.plural})
        undo_allocation = self._allocate(info, wire)
        try:
            for attempt in range(GENERATE_NAME_ATTEMPTS):
                try:
                    created = self.store.create(info.plural, wire)
                    break
                except errors.AlreadyExists:
                    if prefix is None or attempt == GENERATE_NAME_ATTEMPTS - 1:
                        raise
                    wire["metadata"]["name"] = api.names.generate_name(prefix)
        except BaseException:
            undo_allocation()
            raise
        if info.namespaced:
            self._undo_create_in_terminating_namespace(info, created)
        return created

    def _allocate(self, info, wire: dict) -> Callable[[], None]:
        """A Service's ClusterIP and node ports (`service_allocation`); returns the undo."""
        if info.plural != "services":
            return lambda: None
        try:
            return self.services.allocate(wire)
        except AllocationError as error:
            raise invalid_error(info, wire["metadata"]["name"], error.problems) from None

    def _undo_create_in_terminating_namespace(self, info, created: dict) -> None:
        """A namespace deletion that ran between the namespace check and the commit has not
        seen this object and nobody else would delete it, leaving the namespace Terminating for
        ever: delete it as the namespace deletion would have, and answer Forbidden."""
        metadata = created["metadata"]
        try:
            self._require_active_namespace(info, metadata["namespace"], metadata["name"])
        except (Forbidden, errors.NotFound):
            try:
                self.delete(info.plural, metadata["namespace"], metadata["name"])
            except errors.NotFound:
                pass
            raise _namespace_terminating(info, metadata["namespace"], metadata["name"]) from None

    def get(self, resource: str, namespace: str | None, name: str) -> dict:
        info = self._info(resource)
        return self._stored(info, self._namespace(info, namespace), name)

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None,
             continue_token: str | None = None) -> dict:
        """The List of a resource; with `limit`, one page of it and a continue token for the
        next (apiserver/pagination.py), which `continue_token` gives back."""
        info = self._info(resource)
        object_filter = ObjectFilter(info.plural, label_selector, field_selector)
        scope = namespace if info.namespaced else None
        after = None
        if continue_token:
            revision, after = pagination.decode_continue(continue_token, info.namespaced)
            if revision > self.store.revision:
                raise errors.BadRequest("invalid continue token: continue key is not valid: its revision is "
                                        "newer than this server's")
            if revision == pagination.INCONSISTENT:
                items, revision = self.store.list(info.plural, scope)
            else:
                try:
                    items, revision = pagination.objects_at(self.store, info.plural, scope, revision)
                except errors.Gone:
                    raise pagination.ContinueExpired(pagination.encode_continue(pagination.INCONSISTENT, after)) \
                        from None
        else:
            items, revision = self.store.list(info.plural, scope)
        if not object_filter.selects_everything:
            items = [item for item in items if object_filter.matches(item)]
        listing = {"kind": info.list_kind, "apiVersion": info.api_version,
                   "metadata": {"resourceVersion": str(revision)}, "items": items}
        if limit or after is not None:
            return pagination.page(listing, items, limit, after, object_filter.selects_everything)
        return listing

    def watch(self, resource: str, namespace: str | None = None, resource_version: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None) -> RegistryWatch:
        info = self._info(resource)
        object_filter = ObjectFilter(info.plural, label_selector, field_selector)
        scope = namespace if info.namespaced else None
        if resource_version not in (None, "", "0", 0):
            text = str(resource_version)
            if not (text.isdigit() and text.isascii()) or int(text) > MAX_REVISION:
                raise errors.BadRequest(f"resourceVersion {text[:32]!r}: must be a decimal revision "
                                        "such as \"42\" (at most 2^63-1)")
            since = int(text)
            return RegistryWatch(self.store.watch(info.plural, scope, since), [], object_filter)
        while True:
            items, revision = self.store.list(info.plural, scope)
            try:
                watcher = self.store.watch(info.plural, scope, revision)
                break
            except errors.Gone:
                continue  # compacted between the list and the watch: list again
        return RegistryWatch(watcher, [item for item in items if object_filter.matches(item)],
                             object_filter)

    # -- updates -----------------------------------------------------------------------------

    def _write(self, info, namespace: str | None, name: str, compute: Callable[[dict], dict],
               precondition: str | None, track_fields: str | None = None) -> dict:
        """Read-modify-write: `compute(current)` returns the new object (or `current` itself
        for no change). With a `precondition` resourceVersion a concurrent change is the
        caller's Conflict; without one it is retried against the newer object. `track_fields`
        is the endpoint whose changes managedFields record ("" the object itself, "status",
        "scale", ...); None for the server's own bookkeeping (binding, deletion)."""
        namespace = self._namespace(info, namespace)
        for _ in range(UPDATE_ATTEMPTS):
            current = self._stored(info, namespace, name)
            current_rv = _metadata(current)["resourceVersion"]
            if precondition and str(precondition) != current_rv:
                raise conflict(info.plural, name)
            new = compute(current)
            if new is current or new == current:
                return current
            if track_fields is not None:
                self.fields.update(current, new, self.field_manager, track_fields or None, model=info.model,
                                   api_version=self._recorded_version(info))
            try:
                if self._finalized(info, new):
                    return self._remove(info, new, current_rv)
                return self.store.update(info.plural, new, expected_rv=current_rv)
            except errors.Conflict:
                if precondition:
                    raise
        raise conflict(info.plural, name)

    @staticmethod
    def _finalized(info, obj: dict) -> bool:
        """Marked for deletion and nothing left to wait for: remove it for real. (A namespace
        waits for its contents instead; `_finish_namespace_if_empty` removes it.)"""
        metadata = _metadata(obj)
        return bool(metadata.get("deletionTimestamp")) and not metadata.get("finalizers") and \
            not metadata.get("deletionGracePeriodSeconds") and info.plural != "namespaces"

    @staticmethod
    def _uid_problems(current: dict, desired: dict) -> list[tuple[str, str]]:
        """A uid in the body must be the stored one: a body from an earlier incarnation of the
        object must not overwrite this one (apiserver ValidateObjectMetaUpdate)."""
        uid = _metadata(desired).get("uid")
        if uid and uid != _metadata(current).get("uid"):
            return [("metadata.uid", f'Invalid value: "{uid}": field is immutable')]
        return []

    def _spec_update(self, info, current: dict, desired: dict) -> dict:
        """`desired` with the stored status and server-owned metadata, validated against the
        stored object; generation +1 when the spec (Deployments: or annotations) changed."""
        current_metadata = _metadata(current)
        uid_problems = self._uid_problems(current, desired)
        metadata = dict(desired["metadata"])
        for key in SERVER_METADATA:
            metadata.pop(key, None)
            if key in current_metadata:
                metadata[key] = current_metadata[key]
        merged = {**desired, "metadata": metadata}
        merged.pop("status", None)
        if "status" in current:
            merged["status"] = current["status"]
        if info.plural == "services":
            self.services.carry_over(merged, current)
        elif info.plural == "priorityclasses":
            admit_priority_class(self, merged, replacing=current_metadata.get("name"))
        new_model, new = self._parse(merged)
        name = metadata["name"]
        old_model = info.model.model_validate(current)
        problems = uid_problems + list(api.validate_update(new_model, old_model))
        if info.validate_update is not None:
            problems += info.validate_update(new_model, old_model)
        if current_metadata.get("deletionTimestamp"):
            added = sorted(set(new["metadata"].get("finalizers") or [])
                           - set(current_metadata.get("finalizers") or []))
            if added:
                problems.append(("metadata.finalizers", "Forbidden: no new finalizers can be added if "
                                 f"the object is being deleted, found new finalizers {added}"))
        if problems:
            raise invalid_error(info, name, problems)
        self._allocate(info, new)
        if info.plural == "daemonsets":
            stamp_template_generation(new, current)
        changed = new.get("spec") != current.get("spec")
        if info.plural == "deployments":
            changed = changed or new["metadata"].get("annotations") != current_metadata.get("annotations")
        if changed:
            new["metadata"]["generation"] = (current_metadata.get("generation") or 0) + 1
        return new

    def _status_update(self, info, current: dict, desired: dict) -> dict:
        """The stored object with `desired`'s status (and annotations), validated; spec stays.

        As Kubernetes' status strategies do, a status write may also carry annotations (the
        Deployment controller writes its revision annotation this way) and never bumps the
        generation.
        """
        problems = self._uid_problems(current, desired)
        if problems:
            raise invalid_error(info, _metadata(current)["name"], problems)
        merged = {key: value for key, value in current.items() if key != "status"}
        if desired.get("status") is not None:
            merged["status"] = desired["status"]
        _, new = self._parse(merged)
        # Parsing must not move the server's bookkeeping.
        new["metadata"] = dict(current["metadata"])
        desired_metadata = _metadata(desired)
        if "annotations" in desired_metadata:
            if desired_metadata["annotations"]:
                new["metadata"]["annotations"] = desired_metadata["annotations"]
            else:
                new["metadata"].pop("annotations", None)
        return new

    def replace(self, resource: str, namespace: str | None, name: str, body: dict) -> dict:
        info = self._info(resource)
        body = self._check_body(info, namespace, name, body)
        return self._write(info, namespace, name, lambda current: self._spec_update(info, current, body),
                           _metadata(body).get("resourceVersion"), track_fields="")

    def patch(self, resource: str, namespace: str | None, name: str, patch: Any,
              patch_type: str = MERGE_PATCH, version: str | None = None,
              check_fields: Callable[[dict], dict] | None = None) -> dict:
        """A JSON merge patch (or, by `patch_type`, a strategic merge or JSON patch) of
        spec and metadata; a resourceVersion inside the patch is a precondition. `version` is
        the apiVersion the patch is written against (the storage version without it).
        `check_fields` takes the patched object (at `version`) and gives it back with
        `fieldValidation` applied (the API server's, for a JSON patch, whose body names no fields)."""
        info = self._info(resource)

        def compute(current: dict) -> dict:
            body = self._check_body(info, namespace, name,
                                    _patched(info, current, patch, patch_type, version, check_fields))
            return self._spec_update(info, current, body)

        return self._write(info, namespace, name, compute, _patch_precondition(patch), track_fields="")

    def apply(self, resource: str, namespace: str | None, name: str, config: Any,
              force: bool = False, version: str | None = None) -> tuple[dict, bool]:
        """Server-side apply of `config` (a partial object) for this Registry's field manager:
        creates the object if it does not exist. Returns the object and whether it was created.
        A conflict with another manager's fields is a 409 naming them unless `force`. `version`
        is the apiVersion the configuration must have (the storage version without it); another
        served version's is converted to the storage version's before it is applied."""
        info = self._info(resource)
        config = self._check_apply_config(info, namespace, name, config, version or info.api_version)
        for _ in range(UPDATE_ATTEMPTS):
            if self.store.get(info.plural, self._namespace(info, namespace), name) is None:
                merged = self._applied(info, None, config, force)
                try:
                    return self._create(info, namespace, merged, track_fields=False), True
                except errors.AlreadyExists:
                    continue  # created meanwhile: apply to it
            try:
                def compute(current: dict) -> dict:
                    body = self._check_body(info, namespace, name, self._applied(info, current, config, force))
                    return self._spec_update(info, current, body)

                return self._write(info, namespace, name, compute, _metadata(config).get("resourceVersion")), False
            except errors.NotFound:
                continue  # deleted meanwhile: create it
        raise conflict(info.plural, name)

    def _check_apply_config(self, info, namespace: str | None, name: str, config: Any, version: str) -> dict:
        if not isinstance(config, dict):
            raise errors.BadRequest(f"an apply patch must be a {info.kind} object (YAML or JSON), "
                                    f"not {type(config).__name__}")
        api_version, kind = config.get("apiVersion"), config.get("kind")
        if not api_version or not kind:
            missing = "apiVersion" if not api_version else "kind"
            raise errors.BadRequest(f"{missing} must be set in an apply patch: give the {info.kind}'s apiVersion "
                                    f"({version}) and kind ({info.kind})")
        if api_version != version:
            raise errors.BadRequest(f"Incorrect version specified in apply patch. Specified patch version: "
                                    f"{api_version}, expected: {version}")
        metadata = _metadata_of_body(info, config)
        if "managedFields" in metadata:
            raise errors.BadRequest("metadata.managedFields must be nil")
        return self._check_body(info, namespace, name, info.version(version).to_storage(config))

    def apply_status(self, resource: str, namespace: str | None, name: str, config: Any,
                     force: bool = False, version: str | None = None) -> dict:
        """Server-side apply through the status subresource: `config` is the object (apiVersion,
        kind, name) with the status this manager owns; only the status (and annotations) is
        taken, the ownership is recorded with subresource "status". NotFound when the object
        does not exist, as Kubernetes (the status endpoint never creates)."""
        info = self._info(resource)
        config = self._check_apply_config(info, namespace, name, config, version or info.api_version)

        def compute(current: dict) -> dict:
            merged = self._applied(info, current, config, force, "status")
            new = self._status_update(info, current, merged)
            _copy_managed_fields(merged, new)
            return new

        return self._write(info, namespace, name, compute, _metadata(config).get("resourceVersion"))

    def apply_scale(self, resource: str, namespace: str | None, name: str, config: Any,
                    force: bool = False) -> dict:
        """Server-side apply through the scale subresource: `config` is an autoscaling/v1 Scale
        naming `spec.replicas`, applied as the parent's `.spec.replicas` with subresource "scale"
        (so a conflict with the manager that applied the replicas is a 409, as in Kubernetes).
        The answer is the Scale."""
        info = self._scalable(resource)
        if not isinstance(config, dict) or config.get("apiVersion") != "autoscaling/v1" or \
                config.get("kind") != "Scale":
            raise errors.BadRequest("an apply patch to the scale subresource must be an autoscaling/v1 Scale "
                                    "(apiVersion: autoscaling/v1, kind: Scale, metadata.name, spec.replicas)")
        metadata = _metadata_of_body(info, config)
        if metadata.get("name") not in (None, name):
            raise errors.BadRequest(f'the name of the Scale ("{metadata.get("name")}") does not match the name in '
                                    f'the URL ("{name}")')
        spec = config.get("spec") or {}
        replicas = spec.get("replicas") if isinstance(spec, dict) else None
        if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0):
            raise invalid_error(info, name, [("spec.replicas",
                                              f"Invalid value: {json.dumps(replicas)}: must be a whole number "
                                              "greater than or equal to 0")])
        parent_metadata = {"name": name, **({"namespace": metadata["namespace"]} if metadata.get("namespace") else {})}
        parent_config = {"apiVersion": info.api_version, "kind": info.kind, "metadata": parent_metadata,
                         "spec": {} if replicas is None else {"replicas": replicas}}

        def compute(current: dict) -> dict:
            merged = self._applied(info, current, parent_config, force, "scale")
            wanted = merged["spec"].get("replicas", current["spec"].get("replicas"))
            new = self._spec_update(info, current, {**current, "spec": {**current["spec"], "replicas": wanted}})
            _copy_managed_fields(merged, new)
            return new

        return self._scale_of(self._write(info, namespace, name, compute, metadata.get("resourceVersion")))

    def _applied(self, info, current: dict | None, config: dict, force: bool, subresource: str | None = None) -> dict:
        """`config` applied to `current` by this Registry's manager (through `subresource`),
        with managedFields."""
        try:
            return self.fields.apply(current, config, self.field_manager, force, model=info.model,
                                     api_version=self._recorded_version(info), subresource=subresource)
        except ApplyTypeError as error:
            metadata = config["metadata"]
            where = f"{metadata.get('namespace', '')}/{metadata['name']}; {info.api_version if info.group else '/' + info.api_version}, Kind={info.kind}"
            raise errors.BadRequest(f"failed to create typed patch object ({where}): {error}") from None

    def replace_status(self, resource: str, namespace: str | None, name: str, body: dict) -> dict:
        info = self._info(resource)
        body = self._check_body(info, namespace, name, body)
        return self._write(info, namespace, name, lambda current: self._status_update(info, current, body),
                           _metadata(body).get("resourceVersion"), track_fields="status")

    def patch_status(self, resource: str, namespace: str | None, name: str, patch: Any,
                     patch_type: str = MERGE_PATCH, version: str | None = None,
                     check_fields: Callable[[dict], dict] | None = None) -> dict:
        info = self._info(resource)

        def compute(current: dict) -> dict:
            return self._status_update(info, current,
                                       _patched(info, current, patch, patch_type, version, check_fields))

        return self._write(info, namespace, name, compute, _patch_precondition(patch), track_fields="status")

    # -- ephemeral containers ------------------------------------------------------------------

    def update_ephemeral_containers(self, namespace: str | None, name: str, body: Any,
                                    patch_type: str | None = None) -> dict:
        """pods/ephemeralcontainers: a PUT of the pod (`patch_type` None) or a patch of it; only
        `spec.ephemeralContainers` is taken, and only additions are allowed (apiserver/ephemeral.py)."""
        info = self._info("pods")

        def compute(current: dict) -> dict:
            desired = body if patch_type is None else apply_patch(current, body, patch_type, api.Pod)
            found = self._uid_problems(current, desired) + ephemeral.problems(current, desired)
            if found:
                raise invalid_error(info, name, found)
            merged = dict(current, spec={**current["spec"],
                                         "ephemeralContainers": desired["spec"].get("ephemeralContainers") or []})
            if not merged["spec"]["ephemeralContainers"]:
                merged["spec"].pop("ephemeralContainers")
            _, new = self._parse(merged)
            new["metadata"] = dict(current["metadata"])
            return new

        return self._write(info, namespace, name, compute, _patch_precondition(body) if patch_type else None,
                           track_fields="ephemeralcontainers")

    # -- scale -------------------------------------------------------------------------------

    def _scalable(self, resource: str):
        info = self._info(resource)
        if info.plural not in SCALABLE_RESOURCES:
            raise errors.NotFound(f"the server could not find the requested resource ({info.plural}/scale)")
        return info

    @staticmethod
    def _scale_of(obj: dict) -> dict:
        metadata = _metadata(obj)
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {key: metadata[key] for key in
                         ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if key in metadata},
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": selector_text(obj["spec"].get("selector"))},
        }

    def get_scale(self, resource: str, namespace: str | None, name: str) -> dict:
        info = self._scalable(resource)
        return self._scale_of(self._stored(info, self._namespace(info, namespace), name))

    def replace_scale(self, resource: str, namespace: str | None, name: str, body: dict) -> dict:
        info = self._scalable(resource)
        if not isinstance(body, dict):
            raise errors.BadRequest("the request body must be an autoscaling/v1 Scale object")
        spec = body.get("spec") or {}
        if not isinstance(spec, dict):
            raise invalid_error(info, name, [("spec", "Invalid value: must be an object with replicas")])
        metadata = _metadata_of_body(info, body)
        replicas = spec.get("replicas")
        if isinstance(replicas, bool) or not isinstance(replicas, int):
            raise invalid_error(info, name, [("spec.replicas", "Required value: an integer number of replicas")])
        if replicas < 0:
            raise invalid_error(info, name, [("spec.replicas",
                                        f"Invalid value: {replicas}: must be greater than or equal to 0")])

        def compute(current: dict) -> dict:
            if current["spec"].get("replicas") == replicas:
                return current
            return self._spec_update(info, current, {**current, "spec": {**current["spec"], "replicas": replicas}})

        return self._scale_of(self._write(info, namespace, name, compute, metadata.get("resourceVersion"),
                                          track_fields="scale"))

    def patch_scale(self, resource: str, namespace: str | None, name: str, patch: Any,
                    patch_type: str = MERGE_PATCH) -> dict:
        scale = apply_patch(self.get_scale(resource, namespace, name), patch, patch_type)
        if not _patch_precondition(patch):
            scale["metadata"].pop("resourceVersion", None)
        return self.replace_scale(resource, namespace, name, scale)

    # -- metrics.k8s.io (not stored: asked of the nodes) -----------------------------------------

    def list_metrics(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
                     field_selector: str | None = None) -> dict:
        """PodMetricsList (`resource` "pods") or NodeMetricsList ("nodes")."""
        return self.resource_metrics.list(resource, namespace, label_selector, field_selector)

    def get_metrics(self, resource: str, namespace: str | None, name: str) -> dict:
        return self.resource_metrics.get(resource, namespace, name)

    # -- ServiceAccount tokens ----------------------------------------------------------------

    def create_token(self, namespace: str, name: str, body: Any) -> dict:
        """The TokenRequest subresource (POST serviceaccounts/NAME/token)."""
        return token_request(self, self.token_issuer, namespace, name, body)

    # -- binding -----------------------------------------------------------------------------

    def bind(self, namespace: str | None, name: str, node_name: str) -> dict:
        """The scheduler's binding: set spec.nodeName once and mark the pod PodScheduled."""
        info = self._info("pods")

        def compute(current: dict) -> dict:
            bound_to = current["spec"].get("nodeName")
            if bound_to == node_name:
                return current
            if bound_to:
                raise errors.Conflict(f'pod {name} is already assigned to node "{bound_to}"')
            if _metadata(current).get("deletionTimestamp"):
                raise errors.Conflict(f"pod {name} is being deleted, cannot be assigned to a host")
            status = dict(current.get("status") or {})
            conditions = [condition for condition in status.get("conditions") or []
                          if condition.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": self._now()})
            status["conditions"] = conditions
            # As kube-apiserver's binding, only nodeName and the condition change: the rest of the
            # stored pod was validated when written, so it is not parsed again.
            return {**current, "spec": {**current["spec"], "nodeName": node_name}, "status": status}

        return self._write(info, namespace, name, compute, None)

    def evict(self, namespace: str | None, name: str, body: Any) -> dict:
        """The pods/eviction subresource (apiserver/eviction.py): delete unless a PDB forbids."""
        return evict(self, namespace or "default", name, body, self._now())

    # -- delete ------------------------------------------------------------------------------

    def expire_events(self, ttl_seconds: float) -> int:
        """Delete Events last written more than `ttl_seconds` ago; returns how many went.

        Kubernetes keeps Events for `--event-ttl` (1 h by default) after their last update, so a
        crash-looping pod or a busy rollout does not grow the store without bound.
        Only Events written since the last pass are read: the write time of the others is kept
        with their revision (thousands of Events at 1,000 pods made a full pass half a second).
        """
        cutoff = self.clock.now() - ttl_seconds
        revisions = self.store.revisions("events")
        for key in self._event_write_times.keys() - revisions.keys():
            del self._event_write_times[key]
        expired = 0
        for key, revision in revisions.items():
            known = self._event_write_times.get(key)
            if known is None or known[0] != revision:
                event = self.store.get("events", *key)
                if event is None:
                    continue
                written = (event.get("lastTimestamp") or event.get("eventTime")
                           or _metadata(event).get("creationTimestamp"))
                known = (revision, api.times.parse_time(written) if written else None)
                self._event_write_times[key] = known
            if known[1] is not None and known[1] < cutoff:
                try:
                    self.store.delete("events", key[0], key[1], expected_rv=known[0])
                    expired += 1
                except (errors.NotFound, errors.Conflict):
                    pass  # gone meanwhile, or just updated (and so no longer expired)
        return expired

    def delete(self, resource: str, namespace: str | None, name: str, propagation_policy: str | None = None,
               grace_period_seconds: int | None = None, preconditions: dict | None = None) -> dict:
        """Remove the object, or mark it with deletionTimestamp when a graceful pod stop or a
        finalizer has to happen first; returns the object (its last state when removed).

        `preconditions` ({"uid": ..., "resourceVersion": ...}, as DeleteOptions carries them) are
        checked against the object inside the same compare-and-swap that deletes it.
        """
        info = self._info(resource)
        grace_problem = api.validation.grace_period_problem(grace_period_seconds)
        if grace_problem:
            raise errors.BadRequest(grace_problem)
        if propagation_policy not in (None, "Background", "Foreground", "Orphan"):
            raise errors.BadRequest(f"propagationPolicy {propagation_policy!r}: must be "
                                    "Background, Foreground or Orphan")
        if info.plural == "namespaces":
            return self._delete_namespace(name, propagation_policy)

        def compute(current: dict) -> dict:
            _check_delete_preconditions(info.plural, name, current, preconditions or {})
            return self._mark_deleted(info, current, propagation_policy, grace_period_seconds)

        return self._write(info, namespace, name, compute, None)

    def delete_collection(self, resource: str, namespace: str | None, label_selector: str | None = None,
                          field_selector: str | None = None, propagation_policy: str | None = None,
                          grace_period_seconds: int | None = None, preconditions: dict | None = None) -> dict:
        """DELETE on a collection: delete every object the selectors match, each as `delete`
        would; returns the List of them as they were listed (kube-apiserver's DeleteCollection).
        Namespaces have no deletecollection in Kubernetes (405)."""
        info = self._info(resource)
        if info.plural == "namespaces":
            raise errors.MethodNotAllowed("the server does not allow this method on the requested resource",
                                          {"kind": "namespaces"})
        listing = self.list(info.plural, namespace, label_selector, field_selector)
        for item in listing["items"]:
            metadata = _metadata(item)
            try:
                self.delete(info.plural, metadata.get("namespace"), metadata["name"], propagation_policy,
                            grace_period_seconds, preconditions)
            except errors.NotFound:
                pass  # deleted meanwhile
        return listing

    @staticmethod
    def deletion_answer(resource: str, deleted: dict) -> dict:
        """What a DELETE answers, as kube-apiserver does per kind: an object still being
        deleted (a graceful pod stop, finalizers) is returned as it now is; one removed at once
        is returned by the kinds whose storage says ReturnDeletedObject (pods, services,
        namespaces, ...) and otherwise answered with a Success Status naming it."""
        info = Registry._info(resource)
        metadata = _metadata(deleted)
        pending = metadata.get("deletionTimestamp") and (metadata.get("finalizers")
                                                         or metadata.get("deletionGracePeriodSeconds"))
        if pending or info.plural in RETURNS_DELETED_OBJECT:
            return deleted
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {**status_details(info.plural, metadata.get("name", "")), "uid": metadata.get("uid", "")}}

    def _grace_seconds(self, info, current: dict, requested: int | None) -> int:
        """Only pods stop gracefully, and only when a node is running them."""
        if info.plural != "pods":
            return 0
        spec, status = current.get("spec") or {}, current.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is None:
            requested = spec.get("terminationGracePeriodSeconds", DEFAULT_POD_GRACE_SECONDS)
        # A negative period asked for explicitly means "as soon as possible" (k/k pod strategy).
        return 1 if int(requested) < 0 else int(requested)

    def _mark_deleted(self, info, current: dict, propagation_policy: str | None,
                      grace_period_seconds: int | None) -> dict:
        metadata = dict(_metadata(current))
        finalizers = list(metadata.get("finalizers") or [])
        if propagation_policy is not None:
            finalizers = [finalizer for finalizer in finalizers
                          if finalizer not in PROPAGATION_FINALIZERS.values()]
            if propagation_policy in PROPAGATION_FINALIZERS:
                finalizers.append(PROPAGATION_FINALIZERS[propagation_policy])
        grace = self._grace_seconds(info, current, grace_period_seconds)
        now = self.clock.now()
        if metadata.get("deletionTimestamp"):
            # Already being deleted: a shorter grace period moves the deadline closer.
            previous_grace = metadata.get("deletionGracePeriodSeconds") or 0
            if grace < previous_grace:
                metadata["deletionTimestamp"] = api.times.format_time(now + grace)
                metadata["deletionGracePeriodSeconds"] = grace
        else:
            metadata["deletionTimestamp"] = api.times.format_time(now + grace)
            metadata["deletionGracePeriodSeconds"] = grace
            metadata["generation"] = (metadata.get("generation") or 0) + 1
        metadata["finalizers"] = finalizers
        if not finalizers:
            metadata.pop("finalizers")
        if not metadata.get("deletionGracePeriodSeconds") and not finalizers:
            metadata.pop("deletionGracePeriodSeconds", None)
        return {**current, "metadata": metadata}

    def _remove(self, info, obj: dict, expected_rv: str) -> dict:
        metadata = _metadata(obj)
        namespace = metadata.get("namespace") or ""
        deleted = self.store.delete(info.plural, namespace, metadata["name"], expected_rv=expected_rv)
        if info.plural == "services":
            self.services.release(deleted)
        if info.namespaced:
            self._finish_namespace_if_empty(namespace)
        return deleted

    def _delete_namespace(self, name: str, propagation_policy: str | None) -> dict:
        """Mark the namespace Terminating, delete what it contains (pods stop gracefully), and
        remove it once empty: now, or when its last object goes."""
        if name in UNDELETABLE_NAMESPACES:
            raise Forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted')
        info = self._info("namespaces")

        def mark(current: dict) -> dict:
            if _metadata(current).get("deletionTimestamp"):
                return current
            return {**current, "metadata": {**current["metadata"], "deletionTimestamp": self._now()},
                    "status": {**(current.get("status") or {}), "phase": "Terminating"}}

        marked = self._write(info, None, name, mark, None)
        for contained in api.RESOURCES.values():
            if not contained.namespaced:
                continue
            for item in self.store.list(contained.plural, name)[0]:
                try:
                    self.delete(contained.plural, name, item["metadata"]["name"], propagation_policy)
                except errors.NotFound:
                    pass
        return self._finish_namespace_if_empty(name) or marked

    def _finish_namespace_if_empty(self, namespace: str) -> dict | None:
        stored = self.store.get("namespaces", "", namespace)
        if stored is None or not _metadata(stored).get("deletionTimestamp"):
            return None
        if any(self.store.count(info.plural, namespace) for info in api.RESOURCES.values() if info.namespaced):
            return None
        try:
            return self.store.delete("namespaces", "", namespace)
        except (errors.NotFound, errors.Conflict):
            return None


def _copy_managed_fields(source: dict, target: dict) -> None:
    """Give `target` (in place) the managedFields `source` has (or none, if it has none)."""
    managed = _metadata(source).get("managedFields")
    target["metadata"] = {key: value for key, value in _metadata(target).items() if key != "managedFields"}
    if managed:
        target["metadata"]["managedFields"] = managed


def _patched(info, current: dict, patch: Any, patch_type: str, version: str | None,
             check_fields: Callable[[dict], dict] | None = None) -> dict:
    """`patch` applied to `current` as the version it is written against shows the object
    (checked by `check_fields` there), in the storage version again (for the storage version:
    simply applied)."""
    served = info.version(version or info.api_version)
    patched = apply_patch(served.from_storage(current), patch, patch_type, served.model)
    return served.to_storage(check_fields(patched) if check_fields else patched)


def _patch_precondition(patch: Any) -> str | None:
    """A merge patch that names a resourceVersion makes it a precondition, as in Kubernetes."""
    metadata = patch.get("metadata") if isinstance(patch, dict) else None
    if isinstance(metadata, dict):
        return metadata.get("resourceVersion")
    return None


def _check_delete_preconditions(resource: str, name: str, current: dict, preconditions: dict) -> None:
    """DeleteOptions.preconditions: the uid and resourceVersion the caller saw must still be the object's."""
    metadata = _metadata(current)
    for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        wanted = preconditions.get(field)
        if wanted is not None and wanted != metadata.get(field):
            raise errors.Conflict(
                f'Operation cannot be fulfilled on {resource_label(resource)} "{name}": Precondition failed: '
                f"{label} in precondition: {wanted}, {label} in object meta: {metadata.get(field)}")
