"""The Kubernetes API emulator of the tests (tests/kmock/server.py), preloaded in-process
with N IngressRoutes and the Service and EndpointSlice they name, for bench/routes.sh
(PROVIDER=kubernetes). Created inside the server, without a request each, they load
several times faster than over HTTP and are the same objects (server-set uid,
resourceVersion, generation) as HTTP creates would make.

    kmock-server bench/kmock_routes.py PORT N UPSTREAM_PORT

Prints `listening URL` once loaded. `GET /_count` answers how many requests the server
has received, so the bench can tell when the gateway has stopped writing.
"""

import asyncio
import os
import sys
import time
import types

import aiohttp.web
import kmock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'kmock'))
import server  # noqa: E402

# What the gateway writes on a route that resolves: with it already there, a restart
# writes no status (as on a cluster the gateway has already reconciled).
CONDITIONS = [
    {'type': t, 'status': 'True', 'reason': t, 'message': '', 'observedGeneration': 1,
     'lastTransitionTime': '2026-01-01T00:00:00Z'}
    for t in ('Accepted', 'ResolvedRefs')
]


def ingress_route(i: int) -> dict:
    host = f'h{i}.test'
    return {
        'apiVersion': 'traefik.io/v1alpha1', 'kind': 'IngressRoute',
        'metadata': {'name': f'r{i}'},
        'spec': {'routes': [
            {'match': f'Host(`{host}`) && (PathPrefix(`/api`) || Header(`X-V`, `{i}`))',
             'services': [{'name': 'app', 'port': 80}]},
            {'match': f'Host(`{host}`) && PathRegexp(`^/item/[0-9]+$`)',
             'services': [{'name': 'app', 'port': 80}]},
        ]},
        'status': {'conditions': CONDITIONS},
    }


class Emulator(server.Emulator):
    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if raw.path == '/_count' and raw.method == 'GET':
            return aiohttp.web.json_response(len(self._log))
        return await super().__call__(raw)

    def add(self, key: str, obj: dict) -> None:
        request = types.SimpleNamespace(resource=kmock.resource(key), namespace='default', name=None)
        self.create(request, obj)


async def main(port: int, n: int, upstream: int) -> None:
    emulator = Emulator()
    for key, kind, status in server.RESOURCES:
        emulator.register(key, kind, status)
    async with emulator, kmock.Server(emulator, host='127.0.0.1', port=port) as srv:
        start = time.monotonic()
        emulator.add('v1/services', {'metadata': {'name': 'app'},
                                     'spec': {'ports': [{'name': 'http', 'port': 80}]}})
        emulator.add('discovery.k8s.io/v1/endpointslices', {
            'metadata': {'name': 'app', 'labels': {'kubernetes.io/service-name': 'app'}},
            'addressType': 'IPv4', 'ports': [{'name': 'http', 'port': upstream}],
            'endpoints': [{'addresses': ['127.0.0.1']}]})
        for i in range(n):
            emulator.add('traefik.io/v1alpha1/ingressroutes', ingress_route(i))
        print(f'loaded {n} in {time.monotonic() - start:.1f}s', file=sys.stderr, flush=True)
        print('listening', srv.url, flush=True)
        await asyncio.Event().wait()


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
