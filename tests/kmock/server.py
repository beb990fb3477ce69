"""A Kubernetes API server for the tests: kmock's emulator with the resources the gateway
watches, a write path that behaves like a real API server's, and a log of every request.

    kmock-server tests/kmock/server.py PORT

(kmock-server is the python of the virtualenv that scripts/install-prereqs.sh installs
kmock into) listens on 127.0.0.1:PORT, plain HTTP without authentication, and prints one
line `listening http://127.0.0.1:PORT` when ready. tests/src/kmock.rs drives it.

Served resources (all namespaced): traefik.io/v1alpha1 ingressroutes, middlewares,
traefikservices; traverse.dev/v1alpha1 uplinks; v1 services (these five with a status
subresource); discovery.k8s.io/v1 endpointslices; traefik.io/v1alpha1 tlsstores, tlsoptions,
serverstransports; v1 secrets, configmaps; v1 events; events.k8s.io/v1 events;
coordination.k8s.io/v1 leases. Any other /api or /apis path answers 404.

Request log: `GET /_requests` answers a JSON array, oldest first, of every request received
except those to /_requests: {"id", "method", "path", "query" (raw, undecoded), "contentType",
"body" (text), "status" (null while a response, e.g. a watch, is still streaming)}.

What kmock 0.8 alone does (by experiment, some by reading its source), hence the layer below:
- POST stores the body as sent: no resourceVersion, uid, generation or creationTimestamp,
  and no metadata.namespace unless the body has one (the URL's namespace only keys the
  store); answers 200, not 201; a second create answers 409.
- list answers {"metadata": {"resourceVersion": "..."}, "items": [...]}: a fixed
  resourceVersion, no kind. A list without a namespace spans all namespaces.
- labelSelector and fieldSelector are ignored on list and watch.
- watch ignores resourceVersion, allowWatchBookmarks, sendInitialEvents and timeoutSeconds:
  it replays every existing object as ADDED, then streams changes until the client hangs up,
  never a BOOKMARK (source: events written while the replay is being sent are lost).
  kube-rs's watcher, meeting objects without a resourceVersion, relists again and again.
- PATCH, of the main resource or of /status alike, merges the body into the whole object
  whatever the content type: merge-patch+json, strategic-merge-patch+json and
  apply-patch+yaml with a JSON body all act as a JSON merge patch (objects merged, lists
  replaced, null deletes); json-patch+json applies a JSON patch. A /status PATCH changes the
  spec too, a main PATCH the status too. An apply patch with a YAML body is a silent no-op
  answering 200. A PATCH of a missing object answers 404. No resourceVersion changes.
- PUT (replace) and DELETE of a collection answer 404. DELETE answers 200 with the last
  state; with finalizers it only sets deletionTimestamp. GET of .../status (or any
  subresource) answers the whole object.
- Errors are Status objects whose reasons are not Kubernetes' ("Object Not Found", not
  "NotFound": kube-rs's get_opt then fails instead of answering None), with a Python
  traceback in details.

What this server makes of it (kube-rs 5's watcher, reflector, create, replace, get_opt and
patch_status with Patch::Apply and Patch::Merge were checked against it; kmock keeps the
objects and serves discovery and GET, every write goes through the code below):
- Every write takes the next number of one server-wide counter as
  metadata.resourceVersion (digits). A create also sets uid, creationTimestamp,
  generation 1, apiVersion/kind if absent, and metadata.namespace from the URL (400 if the
  body names another); generateName works. Creates answer 201.
- PATCH and PUT, as a real server: with a status subresource, a write to .../status
  changes only .status and a write to the main resource never .status; name, namespace,
  uid, creationTimestamp, generation and resourceVersion stay the server's; generation goes
  up when anything but metadata and status changes. A write that changes nothing changes
  no resourceVersion and sends no watch event. A body whose metadata.resourceVersion is not
  the current one: 409 Conflict (optimistic concurrency, e.g. for leases).
  merge-patch+json, strategic-merge-patch+json and apply-patch+yaml (a JSON body, as
  kube-rs sends) are a JSON merge patch (RFC 7386): server-side apply's field ownership is
  NOT emulated (fields an apply no longer sends stay; lists are replaced whole, never merged
  by key); fieldManager and force are ignored. json-patch+json is a JSON patch. Another
  content type: 415; a body that is not JSON (a YAML apply patch): 400. An apply patch to a
  missing object (main resource) creates it; any other write to a missing object: 404.
- DELETE: deletionTimestamp while finalizers remain (MODIFIED), else removal (DELETED);
  a PATCH removing the last finalizer of a deleting object removes it.
- GET of a missing object or of an unknown subresource: 404. Error reasons are
  Kubernetes' (NotFound, AlreadyExists, Conflict, BadRequest, Invalid, ...).
- list: metadata.resourceVersion is the counter at the time of the list; kind is <Kind>List;
  labelSelector (=, ==, !=, in, notin, exists, !exists) and fieldSelector on metadata.name /
  metadata.namespace (=, ==, !=) filter, any other field answers 400. No paging (limit is
  ignored, never a continue token).
- watch: with resourceVersion N (digits, not "0"), every change after N in order, then live
  changes: nothing replayed twice, nothing lost between a list and the watch after it, never
  410 Gone (the history is kept whole). Without one (or "0"): every existing object as
  ADDED, then live changes, nothing lost in between. sendInitialEvents=true adds the
  BOOKMARK annotated k8s.io/initial-events-end after the existing objects (kube-rs's
  streaming lists work). Selectors apply to the object as in each event: an object whose
  labels stop matching gets no DELETED. timeoutSeconds is ignored (a watch lasts until the
  client hangs up); no other BOOKMARK. Content-Type is application/octet-stream.
- Not emulated: schema validation, defaulting, admission, RBAC, namespaces as objects (none
  need to exist), deletion of collections, owner references and garbage collection, dry
  runs, the events/leases semantics beyond storing them.
"""

import asyncio
import collections
import copy
import datetime
import random
import re
import string
import sys
import traceback
import uuid
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import kmock

# (group/version/plural, kind, has a status subresource)
RESOURCES = [
    ('traefik.io/v1alpha1/ingressroutes', 'IngressRoute', True),
    ('traefik.io/v1alpha1/middlewares', 'Middleware', True),
    ('traefik.io/v1alpha1/traefikservices', 'TraefikService', True),
    ('traverse.dev/v1alpha1/uplinks', 'Uplink', True),
    ('v1/services', 'Service', True),
    ('discovery.k8s.io/v1/endpointslices', 'EndpointSlice', False),
    ('traefik.io/v1alpha1/tlsstores', 'TLSStore', False),
    ('traefik.io/v1alpha1/tlsoptions', 'TLSOption', False),
    ('traefik.io/v1alpha1/serverstransports', 'ServersTransport', False),
    ('v1/secrets', 'Secret', False),
    ('v1/configmaps', 'ConfigMap', False),
    ('v1/events', 'Event', False),
    ('events.k8s.io/v1/events', 'Event', False),
    ('coordination.k8s.io/v1/leases', 'Lease', False),
]

VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']

# The reason of a Status by its code, for kmock's own errors.
REASONS = {400: 'BadRequest', 404: 'NotFound', 405: 'MethodNotAllowed', 409: 'AlreadyExists',
           415: 'UnsupportedMediaType', 422: 'Invalid'}

# Metadata fields that only the server sets.
SERVER_METADATA = ['name', 'namespace', 'uid', 'creationTimestamp', 'generation',
                   'resourceVersion', 'deletionTimestamp']


def failure(status: int, reason: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message)


def api_version(resource: kmock.resource) -> str:
    return f'{resource.group}/{resource.version}' if resource.group else resource.version


def now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def split_top_level(text: str) -> list[str]:
    """Splits a selector at the commas outside parentheses."""
    parts, depth, current = [], 0, ''
    for char in text:
        if char == ',' and depth == 0:
            parts.append(current)
            current = ''
            continue
        depth += char == '('
        depth -= char == ')'
        current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def parse_label_selector(text: str) -> list[tuple[str, str, set[str]]]:
    requirements = []
    for part in split_top_level(text):
        if m := re.fullmatch(r'(\S+)\s+(in|notin)\s*\((.*)\)', part):
            values = {v.strip() for v in m.group(3).split(',') if v.strip()}
            requirements.append((m.group(1), m.group(2), values))
        elif m := re.fullmatch(r'([^!=\s]+)\s*(==|=|!=)\s*(\S*)', part):
            op = '!=' if m.group(2) == '!=' else '='
            requirements.append((m.group(1), op, {m.group(3)}))
        elif m := re.fullmatch(r'!\s*([^!=\s]+)', part):
            requirements.append((m.group(1), '!exists', set()))
        elif re.fullmatch(r'[^!=\s(),]+', part):
            requirements.append((part, 'exists', set()))
        else:
            raise failure(400, 'BadRequest', f'unable to parse requirement: {part!r}')
    return requirements


def labels_match(requirements: list[tuple[str, str, set[str]]], labels: dict[str, str]) -> bool:
    for key, op, values in requirements:
        present = key in labels
        value = labels.get(key)
        if op == '=' and value not in values:
            return False
        if op == '!=' and value in values:
            return False
        if op == 'in' and value not in values:
            return False
        if op == 'notin' and present and value in values:
            return False
        if op == 'exists' and not present:
            return False
        if op == '!exists' and present:
            return False
    return True


def parse_field_selector(text: str) -> list[tuple[str, bool, str]]:
    requirements = []
    for part in split_top_level(text):
        m = re.fullmatch(r'([^!=\s]+)\s*(==|=|!=)\s*(\S*)', part)
        if not m:
            raise failure(400, 'BadRequest', f'invalid field selector: {part!r}')
        if m.group(1) not in ('metadata.name', 'metadata.namespace'):
            raise failure(400, 'BadRequest', f'field label not supported: {m.group(1)}')
        requirements.append((m.group(1).split('.')[1], m.group(2) != '!=', m.group(3)))
    return requirements


class Selection:
    """Which objects a list or watch request asks for."""

    def __init__(self, request: kmock.Request) -> None:
        self.namespace = request.namespace
        self.name = request.name
        self.labels = parse_label_selector(request.params.get('labelSelector', ''))
        self.fields = parse_field_selector(request.params.get('fieldSelector', ''))

    def matches(self, obj: dict[str, Any]) -> bool:
        meta = obj.get('metadata') or {}
        if self.namespace is not None and meta.get('namespace') != self.namespace:
            return False
        if self.name is not None and meta.get('name') != self.name:
            return False
        for field, equal, value in self.fields:
            if (meta.get(field, '') == value) != equal:
                return False
        return labels_match(self.labels, meta.get('labels') or {})


def merge_patch(target: Any, patch: Any) -> Any:
    """A JSON merge patch (RFC 7386): objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def resource_version(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get('metadata') or {}).get('resourceVersion') or 0)
    except ValueError:
        return 0


def without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    _counter: int = attrs.field(default=0, init=False)
    _log: list[dict[str, Any]] = attrs.field(factory=list, init=False)
    # Per resource: every watch event ever sent, and the queues of the watches now open.
    _history: dict[Any, list[dict[str, Any]]] = attrs.field(
        factory=lambda: collections.defaultdict(list), init=False)
    _watchers: dict[Any, set[asyncio.Queue]] = attrs.field(
        factory=lambda: collections.defaultdict(set), init=False)
    _info: dict[Any, tuple[str, bool]] = attrs.field(factory=dict, init=False)

    def register(self, key: str, kind: str, status: bool) -> None:
        self.resources[key] = kmock.ResourceInfo(
            kind=kind, singular=kind.lower(), namespaced=True, verbs=VERBS,
            subresources={'status'} if status else set())
        self._info[kmock.resource(key)] = (kind, status)

    def next_version(self) -> str:
        self._counter += 1
        return str(self._counter)

    def publish(self, resource: kmock.resource, kind: str, obj: dict[str, Any]) -> None:
        event = {'type': kind, 'object': copy.deepcopy(obj)}
        self._history[resource].append(event)
        for queue in self._watchers[resource]:
            queue.put_nowait(event)

    # -- the request log ------------------------------------------------------------------

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if raw.path == '/_requests' and raw.method == 'GET':
            return aiohttp.web.json_response(self._log)
        body = await raw.read()
        entry = {
            'id': len(self._log),
            'method': raw.method,
            'path': raw.path,
            'query': raw.query_string,
            'contentType': raw.headers.get('Content-Type', ''),
            'body': body.decode('utf-8', errors='replace'),
            'status': None,
        }
        self._log.append(entry)
        response = await super().__call__(raw)
        entry['status'] = response.status
        return response

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        # kmock puts a Python traceback into every Status: only unexpected failures get one,
        # on stderr.
        if isinstance(exc, kmock.KubernetesError):
            # kmock's own reasons ("Object Not Found") are not Kubernetes' ("NotFound"), which
            # clients test (kube-rs's get_opt does).
            reason = exc.reason if exc.reason and ' ' not in exc.reason else REASONS.get(
                exc.status, exc.reason)
            return aiohttp.web.json_response({
                'apiVersion': 'v1', 'kind': 'Status', 'metadata': {}, 'status': 'Failure',
                'code': exc.status, 'reason': reason, 'message': exc.message,
            }, status=exc.status)
        traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.flush()
        return await super()._render_error(exc)

    async def _serve_version(self, request: kmock.Request) -> dict[str, Any]:
        answer = await super()._serve_version(request)
        answer['groupVersion'] = answer['groupVersion'].lstrip('/')  # kmock: "/v1" for core
        return answer

    # -- dispatch -------------------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        resource = request.resource
        if resource is None or resource not in self._info or request.action == kmock.action.WATCH:
            return await super()._handle(request)
        if request.method == kmock.method.POST and request.name is None:
            return self.json(self.create(request, request.data), 201)
        if request.name is not None and request.method in (kmock.method.PATCH, kmock.method.PUT):
            return self.write(request)
        if request.name is not None and request.method == kmock.method.DELETE:
            return self.json(self.delete(request))
        _, has_status = self._info[resource]
        if request.subresource is not None and (request.subresource != 'status' or not has_status):
            raise failure(404, 'NotFound', f'no subresource {request.subresource!r}')
        if request.action == kmock.action.FETCH and self.stored(request) is None:
            raise self.not_found(request)
        return await super()._handle(request)

    @staticmethod
    def json(obj: Any, status: int = 200) -> aiohttp.web.Response:
        return aiohttp.web.json_response(obj, status=status)

    def stored(self, request: kmock.Request) -> Any:
        key = (request.resource, request.namespace, request.name)
        if key in self.objects and not self.objects[key].deleted:
            return self.objects[key]
        return None

    def not_found(self, request: kmock.Request) -> kmock.KubernetesError:
        return failure(404, 'NotFound', f'{request.resource.plural} "{request.name}" not found')

    # -- writes ---------------------------------------------------------------------------

    def create(self, request: kmock.Request, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get('metadata', {}), dict):
            raise failure(400, 'BadRequest', 'the body is not a JSON object with metadata')
        obj = copy.deepcopy(body)
        meta = obj.setdefault('metadata', {})
        if not meta.get('name') and meta.get('generateName'):
            suffix = ''.join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta['name'] = meta['generateName'] + suffix
        if not meta.get('name'):
            raise failure(422, 'Invalid', 'metadata.name: Required value')
        if request.name is not None and request.name != meta['name']:
            raise failure(400, 'BadRequest', 'the name of the object does not match the URL')
        if request.namespace is not None:
            if meta.get('namespace', request.namespace) != request.namespace:
                raise failure(400, 'BadRequest',
                              'the namespace of the object does not match the URL')
            meta['namespace'] = request.namespace
        key = (request.resource, meta.get('namespace'), meta['name'])
        if key in self.objects and not self.objects[key].deleted:
            raise failure(409, 'AlreadyExists',
                          f'{request.resource.plural} "{meta["name"]}" already exists')
        kind, _ = self._info[request.resource]
        obj.setdefault('apiVersion', api_version(request.resource))
        obj.setdefault('kind', kind)
        for field in ('deletionTimestamp', 'generation', 'uid'):
            meta.pop(field, None)
        meta['uid'] = str(uuid.uuid4())
        meta['creationTimestamp'] = now()
        meta['generation'] = 1
        meta['resourceVersion'] = self.next_version()
        if key in self.objects:
            self.objects[key].create(obj)
        else:
            self.objects[key] = obj
        self.publish(request.resource, 'ADDED', obj)
        return obj

    def write(self, request: kmock.Request) -> aiohttp.web.Response:
        kind, has_status = self._info[request.resource]
        if request.subresource not in (None, 'status') or (request.subresource and not has_status):
            raise failure(404, 'NotFound', f'no subresource {request.subresource!r}')
        content_type = ''
        for name, value in request.headers.items():
            if name.lower() == 'content-type':
                content_type = value.split(';')[0].strip().lower()
        body = request.data
        merge_types = ('application/merge-patch+json', 'application/strategic-merge-patch+json',
                       'application/apply-patch+yaml')
        if request.method == kmock.method.PATCH:
            if content_type == 'application/json-patch+json':
                if not isinstance(body, list):
                    raise failure(400, 'BadRequest', 'a JSON patch is a JSON array')
            elif content_type in merge_types:
                if not isinstance(body, dict):
                    raise failure(400, 'BadRequest', 'the patch is not a JSON object (a YAML '
                                  'apply patch is not supported: send JSON)')
            else:
                raise failure(415, 'UnsupportedMediaType',
                              f'the media type {content_type!r} is not supported for PATCH')
        elif not isinstance(body, dict):
            raise failure(400, 'BadRequest', 'the body is not a JSON object')

        stored = self.stored(request)
        if stored is None:
            if content_type == 'application/apply-patch+yaml' and request.subresource is None:
                return self.json(self.create(request, body), 201)
            raise self.not_found(request)
        old = copy.deepcopy(stored.raw)

        wanted = None
        if isinstance(body, dict):
            wanted = (body.get('metadata') or {}).get('resourceVersion')
        if wanted and str(wanted) != old['metadata'].get('resourceVersion'):
            raise failure(409, 'Conflict', f'Operation cannot be fulfilled on '
                          f'{request.resource.plural} "{request.name}": the object has been '
                          f'modified; please apply your changes to the latest version and try '
                          f'again')
        try:
            if request.method == kmock.method.PUT:
                new = copy.deepcopy(body)
            elif isinstance(body, list):
                new = jsonpatch.apply_patch(copy.deepcopy(old), body)
            else:
                new = merge_patch(old, body)
        except Exception as error:  # a JSON patch that does not apply
            raise failure(422, 'Invalid', f'the patch does not apply: {error!r}')
        if not isinstance(new, dict):
            raise failure(422, 'Invalid', 'the patched object is not a JSON object')
        if not isinstance(new.get('metadata', {}), dict):
            raise failure(422, 'Invalid', 'metadata is not an object')

        if request.subresource == 'status':
            result = copy.deepcopy(old)
            result.pop('status', None)
            if new.get('status') is not None:
                result['status'] = new['status']
        else:
            result = new
            if has_status:
                result.pop('status', None)
                if 'status' in old:
                    result['status'] = old['status']
            meta = result.setdefault('metadata', {})
            for field in SERVER_METADATA:
                meta.pop(field, None)
                if field in old['metadata']:
                    meta[field] = old['metadata'][field]
            result['apiVersion'] = old.get('apiVersion', api_version(request.resource))
            result['kind'] = old.get('kind', kind)

        if result == old:
            return self.json(old)
        meta = result['metadata']
        if without(result, 'metadata', 'status') != without(old, 'metadata', 'status'):
            meta['generation'] = int(meta.get('generation') or 0) + 1
        meta['resourceVersion'] = self.next_version()
        stored.create(result)
        self.publish(request.resource, 'MODIFIED', result)
        if meta.get('deletionTimestamp') and not meta.get('finalizers'):
            stored.delete()
            self.publish(request.resource, 'DELETED', result)
        return self.json(result)

    def delete(self, request: kmock.Request) -> dict[str, Any]:
        stored = self.stored(request)
        if stored is None:
            raise self.not_found(request)
        obj = copy.deepcopy(stored.raw)
        meta = obj['metadata']
        if meta.get('deletionTimestamp'):
            return obj
        meta['resourceVersion'] = self.next_version()
        if meta.get('finalizers'):
            meta['deletionTimestamp'] = now()
            stored.create(obj)
            self.publish(request.resource, 'MODIFIED', obj)
        else:
            stored.delete()
            self.publish(request.resource, 'DELETED', obj)
        return obj

    # -- reads ----------------------------------------------------------------------------

    def current(self, resource: kmock.resource, selection: Selection) -> list[dict[str, Any]]:
        return [obj.raw for (res, _, _), obj in self.objects.items()
                if res == resource and not obj.deleted and selection.matches(obj.raw)]

    async def _serve_list(self, request: kmock.Request) -> dict[str, Any]:
        if request.resource not in self._info:
            raise kmock.KubernetesResourceNotFoundError()
        selection = Selection(request)
        kind, _ = self._info[request.resource]
        return {
            'apiVersion': api_version(request.resource),
            'kind': f'{kind}List',
            'metadata': {'resourceVersion': str(self._counter)},
            'items': self.current(request.resource, selection),
        }

    async def _serve_watch(self, request: kmock.Request) -> Any:
        if request.resource not in self._info:
            raise kmock.KubernetesResourceNotFoundError()
        selection = Selection(request)
        since = request.params.get('resourceVersion', '')
        queue: asyncio.Queue = asyncio.Queue()
        # No await from here to the registration: nothing can happen in between.
        if since.isdigit() and int(since) > 0:
            first = [event for event in self._history[request.resource]
                     if resource_version(event['object']) > int(since)]
        else:
            first = [{'type': 'ADDED', 'object': copy.deepcopy(obj)}
                     for obj in self.current(request.resource, selection)]
        if request.params.get('sendInitialEvents') == 'true':
            first.append({'type': 'BOOKMARK', 'object': {
                'kind': self._info[request.resource][0],
                'apiVersion': api_version(request.resource),
                'metadata': {'resourceVersion': str(self._counter),
                             'annotations': {'k8s.io/initial-events-end': 'true'}}}})
        watchers = self._watchers[request.resource]
        watchers.add(queue)
        try:
            yield b''  # the headers
            for event in first:
                if event['type'] == 'BOOKMARK' or selection.matches(event['object']):
                    yield event
            while True:
                event = await queue.get()
                if selection.matches(event['object']):
                    yield event
        finally:
            watchers.discard(queue)


async def main(port: int, without_status: set[str]) -> None:
    emulator = Emulator()
    for key, kind, status in RESOURCES:
        emulator.register(key, kind, status and key not in without_status)
    async with emulator, kmock.Server(emulator, host='127.0.0.1', port=port) as server:
        print('listening', server.url, flush=True)
        await asyncio.Event().wait()


if __name__ == '__main__':
    # Usage: server.py PORT [RESOURCE ...]: each RESOURCE (e.g. traefik.io/v1alpha1/ingressroutes)
    # is served without a status subresource, as Traefik's own CRDs are.
    asyncio.run(main(int(sys.argv[1]), set(sys.argv[2:])))
