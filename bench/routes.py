#!/usr/bin/env python3
"""Route-scale measurements for bench/routes.sh: one Traverse per size, file provider.

For N IngressRoutes (each with two routes, see `ingress_route`) this starts Traverse and
reports:
  ready_s      from process start to /readyz answering 200 (parse, translate, publish)
  validate_s   `traverse validate` on the same directory (a full load and rebuild)
  change_ms    from writing one changed object to the proxy serving it, minus the
               debounce (median of CHANGES changes)
  service_ms   the same for a Service and EndpointSlice that one IngressRoute names
  rss_load     VmRSS once ready, MiB
  rss_reloads  VmRSS after RELOADS one-object changes, each waited for, MiB
  burst        publishes caused by BURST objects written back to back
  rps          wrk -t1 -c32 on one host's route (needs wrk)
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TRAVERSE = os.environ["TRAVERSE_BIN"]
UPSTREAM = int(os.environ["UPSTREAM_PORT"])
SIZES = [int(s) for s in os.environ.get("SIZES", "10 1000 10000").split()]
MIX = os.environ.get("MIX", "shared")  # shared: one regex for all; distinct: one per host
PER_FILE = int(os.environ.get("PER_FILE", "100"))
DEBOUNCE_MS = int(os.environ.get("DEBOUNCE_MS", "50"))
CHANGES = int(os.environ.get("CHANGES", "7"))
RELOADS = int(os.environ.get("RELOADS", "100"))
BURST = int(os.environ.get("BURST", "1000"))
DURATION = int(os.environ.get("DURATION", "5"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ingress_route(name, host, i):
    regex = "^/item/[0-9]+$" if MIX == "shared" else f"^/item/{i}/[0-9]+$"
    return f"""apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: {name}}}
spec:
  routes:
    - match: Host(`{host}`) && (PathPrefix(`/api`) || Header(`X-V`, `{i}`))
      services: [{{name: app, port: 80}}]
    - match: Host(`{host}`) && PathRegexp(`{regex}`)
      services: [{{name: app, port: 80}}]
"""


def service(name):
    """A Service and its EndpointSlice, to the nginx upstream."""
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: http, port: {UPSTREAM}}}]
endpoints: [{{addresses: [127.0.0.1]}}]
"""


def generate(directory, n):
    with open(os.path.join(directory, "app.yaml"), "w") as f:
        f.write(service("app"))
    for start in range(0, n, PER_FILE):
        docs = [ingress_route(f"r{i}", f"h{i}.test", i) for i in range(start, min(n, start + PER_FILE))]
        with open(os.path.join(directory, f"routes-{start // PER_FILE:05}.yaml"), "w") as f:
            f.write("---\n".join(docs))


def get(port, path, host=None, timeout=2):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except OSError:
        return None, b""


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_atomic(path, text):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def wait_served(port, host, deadline_s=30):
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if get(port, "/api", host)[0] == 200:
            return time.monotonic()
        time.sleep(0.002)
    raise SystemExit(f"{host} never served")


def generation(admin):
    status, body = get(admin, "/api/routes", timeout=30)
    return json.loads(body)["generation"] if status == 200 else None


def measure(n):
    work = tempfile.mkdtemp(prefix="traverse-routes-")
    manifests = os.path.join(work, "manifests")
    os.mkdir(manifests)
    generate(manifests, n)
    web, admin = free_port(), free_port()
    config = os.path.join(work, "traverse.yaml")
    with open(config, "w") as f:
        f.write(f"""entryPoints:
  web: {{address: "127.0.0.1:{web}"}}
admin: {{address: "127.0.0.1:{admin}"}}
providers: {{file: {{directory: manifests, debounce: {DEBOUNCE_MS}ms}}}}
metrics: {{prometheus: {{enabled: false}}}}
server: {{threads: 1}}
""")
    result = {"n": n}
    start = time.monotonic()
    validate = subprocess.run([TRAVERSE, "validate", "--config", config], capture_output=True)
    result["validate_s"] = time.monotonic() - start
    if validate.returncode != 0:
        print(validate.stdout.decode()[-2000:], validate.stderr.decode()[-2000:], file=sys.stderr)

    log = open(os.path.join(work, "stderr"), "w")
    start = time.monotonic()
    proc = subprocess.Popen([TRAVERSE, "run", "--config", config], stderr=log,
                            env={**os.environ, "RUST_LOG": "warn"})
    try:
        while get(admin, "/readyz", timeout=1)[0] != 200:
            if proc.poll() is not None:
                raise SystemExit(f"traverse exited: see {work}/stderr")
            time.sleep(0.002)
        result["ready_s"] = time.monotonic() - start
        time.sleep(1)
        result["rss_load"] = rss_mib(proc.pid)

        # One object changed at a time: a new IngressRoute in its own file, served.
        change = os.path.join(manifests, "zz-change.yaml")
        changes = []
        for k in range(CHANGES):
            host = f"change{k}.test"
            written = time.monotonic()
            write_atomic(change, ingress_route("change", host, n + 1))
            changes.append((wait_served(web, host) - written) * 1000 - DEBOUNCE_MS)
            time.sleep(DEBOUNCE_MS / 1000 + 0.05)
        result["change_ms"] = statistics.median(changes)
        result["change_ms_all"] = [round(c) for c in changes]

        # One Service changed: the Service (and EndpointSlice) that one IngressRoute
        # names appears, from its route answering 503 to it serving.
        service_changes = []
        for k in range(CHANGES):
            host, name = f"service{k}.test", f"service{k}"
            write_atomic(change, ingress_route("change", host, n + 1).replace("name: app,", f"name: {name},"))
            while get(web, "/api", host)[0] != 503:
                time.sleep(0.002)
            time.sleep(DEBOUNCE_MS / 1000 + 0.05)
            written = time.monotonic()
            write_atomic(os.path.join(manifests, "zz-service.yaml"), service(name))
            service_changes.append((wait_served(web, host) - written) * 1000 - DEBOUNCE_MS)
            time.sleep(DEBOUNCE_MS / 1000 + 0.05)
        result["service_ms"] = statistics.median(service_changes)
        result["service_ms_all"] = [round(c) for c in service_changes]

        for k in range(RELOADS):
            host = f"reload{k}.test"
            write_atomic(change, ingress_route("change", host, n + 1))
            wait_served(web, host)
        time.sleep(1)
        result["rss_reloads"] = rss_mib(proc.pid)

        # A burst: BURST objects written back to back, each in its own file.
        before = generation(admin)
        for k in range(BURST):
            write_atomic(os.path.join(manifests, f"zz-burst-{k:04}.yaml"),
                         ingress_route(f"burst{k}", f"burst{k}.test", n + 2 + k))
        wait_served(web, f"burst{BURST - 1}.test", 60)
        time.sleep(DEBOUNCE_MS / 1000 * 4 + 0.5)
        after = generation(admin)
        result["burst_publishes"] = after - before if None not in (before, after) else None

        if shutil.which("wrk"):
            host = f"h{n // 2}.test"
            assert get(web, "/api", host)[0] == 200
            out = subprocess.run(["wrk", "-t1", "-c32", f"-d{DURATION}s", "-H", f"Host: {host}",
                                  f"http://127.0.0.1:{web}/api"], capture_output=True, text=True).stdout
            result["rps"] = next(float(l.split()[1]) for l in out.splitlines() if l.startswith("Requests/sec"))
        result["rss_end"] = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    return result


def main():
    print(f"mix={MIX} per_file={PER_FILE} debounce={DEBOUNCE_MS}ms reloads={RELOADS} burst={BURST}")
    print(f"{'N':>7} {'ready s':>8} {'validate s':>10} {'change ms':>10} {'service ms':>10} {'RSS load':>9} "
          f"{'RSS reloads':>12} {'burst pubs':>10} {'req/s':>9}")
    for n in SIZES:
        r = measure(n)
        print(f"{r['n']:>7} {r['ready_s']:>8.2f} {r['validate_s']:>10.2f} {r['change_ms']:>10.0f} {r['service_ms']:>10.0f} "
              f"{r['rss_load']:>8.0f}M {r['rss_reloads']:>11.0f}M {str(r['burst_publishes']):>10} "
              f"{r.get('rps', float('nan')):>9.0f}", flush=True)
        print("   ", json.dumps(r), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
