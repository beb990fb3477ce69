#!/usr/bin/env python3
"""Route-scale measurements of the Kubernetes provider, for `PROVIDER=kubernetes
bench/routes.sh`: one emulated API server (bench/kmock_routes.py, preloaded with N
IngressRoutes shaped as in bench/routes.py, already carrying the status the gateway would
write) and one Traverse watching it, per size. Reports:
  load_s       the emulator creating the N objects in-process (not the gateway's time)
  ready_s      from process start to /readyz 200 (list, convert, translate, publish)
  change_ms    from one IngressRoute's change sent (a create, then merge patches naming a
               new host) to the proxy serving it, minus the throttle (median of CHANGES)
  rss_load     VmRSS once ready and quiet, MiB
  rss_reloads  VmRSS after RELOADS such changes, each waited for, MiB
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import shutil
import time
import urllib.request

from routes import free_port, get, rss_mib, wait_served

TRAVERSE = os.environ["TRAVERSE_BIN"]
UPSTREAM = int(os.environ["UPSTREAM_PORT"])
SIZES = [int(s) for s in os.environ.get("SIZES", "10 1000 10000").split()]
THROTTLE_MS = int(os.environ.get("THROTTLE_MS", "50"))
CHANGES = int(os.environ.get("CHANGES", "7"))
RELOADS = int(os.environ.get("RELOADS", "50"))
KMOCK = os.environ.get("KMOCK_SERVER") or os.path.join(
    os.environ.get("TRAVERSE_TOOLS", os.path.expanduser("~/.cache/traverse/tools")), "bin", "kmock-server")
HERE = os.path.dirname(os.path.abspath(__file__))

ROUTES = "/apis/traefik.io/v1alpha1/namespaces/default/ingressroutes"


def send(url, method, path, body, content_type="application/json"):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def change_route(url, host, first):
    route = {"match": f"Host(`{host}`) && PathPrefix(`/api`)", "services": [{"name": "app", "port": 80}]}
    if first:
        send(url, "POST", ROUTES, {"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
                                   "metadata": {"name": "change"}, "spec": {"routes": [route]}})
    else:
        send(url, "PATCH", ROUTES + "/change", {"spec": {"routes": [route]}}, "application/merge-patch+json")


def requests_seen(url):
    with urllib.request.urlopen(url + "/_count", timeout=10) as r:
        return json.load(r)


def quiet(url, seconds=2.0, deadline_s=120):
    """Waits until the API server has received no request for `seconds` (the gateway's
    status writes and Events done); the lease renewals of leader election aside, which
    come every few seconds."""
    start = time.monotonic()
    last, since = requests_seen(url), time.monotonic()
    while time.monotonic() - start < deadline_s:
        time.sleep(0.2)
        now = requests_seen(url)
        if now - last > 1:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        last = now


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def settled(url, pid):
    """Waits until the gateway has stopped writing to the API server and stopped working
    (the rebuild its own status write causes included): no request for a second, then
    under 20 ms of CPU in half a second."""
    quiet(url, 1.0)
    deadline = time.monotonic() + 60
    last = cpu_ticks(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_ticks(pid)
        if now - last <= 2:
            return
        last = now


def measure(n):
    work = tempfile.mkdtemp(prefix="traverse-routes-k8s-")
    port = free_port()
    log = open(os.path.join(work, "kmock.log"), "w")
    kmock = subprocess.Popen([KMOCK, os.path.join(HERE, "kmock_routes.py"), str(port), str(n), str(UPSTREAM)],
                             stdout=subprocess.PIPE, stderr=log, text=True)
    result = {"n": n}
    proc = None
    try:
        start = time.monotonic()
        line = kmock.stdout.readline()
        if not line.startswith("listening"):
            raise SystemExit(f"kmock did not start: see {work}/kmock.log")
        result["load_s"] = time.monotonic() - start
        url = line.split()[1]
        kubeconfig = os.path.join(work, "kubeconfig")
        with open(kubeconfig, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: kmock, cluster: {{server: "{url}"}}}}]
users: [{{name: kmock, user: {{}}}}]
contexts: [{{name: kmock, context: {{cluster: kmock, user: kmock, namespace: default}}}}]
current-context: kmock
""")
        web, admin = free_port(), free_port()
        config = os.path.join(work, "traverse.yaml")
        with open(config, "w") as f:
            f.write(f"""entryPoints:
  web: {{address: "127.0.0.1:{web}"}}
admin: {{address: "127.0.0.1:{admin}"}}
providers: {{kubernetes: {{kubeconfig: "{kubeconfig}", throttle: {THROTTLE_MS}ms}}}}
metrics: {{prometheus: {{enabled: false}}}}
server: {{threads: 1}}
""")
        stderr = open(os.path.join(work, "stderr"), "w")
        start = time.monotonic()
        proc = subprocess.Popen([TRAVERSE, "run", "--config", config], stderr=stderr,
                                env={**os.environ, "RUST_LOG": "warn"})
        while get(admin, "/readyz", timeout=1)[0] != 200:
            if proc.poll() is not None:
                raise SystemExit(f"traverse exited: see {work}/stderr")
            time.sleep(0.002)
        result["ready_s"] = time.monotonic() - start
        assert get(web, "/api", f"h{n - 1}.test")[0] == 200
        settled(url, proc.pid)
        result["rss_load"] = rss_mib(proc.pid)

        changes = []
        for k in range(CHANGES):
            host = f"change{k}.test"
            sent = time.monotonic()
            change_route(url, host, k == 0)
            changes.append((wait_served(web, host) - sent) * 1000 - THROTTLE_MS)
            # The status write of the change and the rebuild it causes are not measured.
            settled(url, proc.pid)
        result["change_ms"] = statistics.median(changes)
        result["change_ms_all"] = [round(c) for c in changes]

        for k in range(RELOADS):
            host = f"reload{k}.test"
            change_route(url, host, False)
            wait_served(web, host)
        settled(url, proc.pid)
        result["rss_reloads"] = rss_mib(proc.pid)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        kmock.terminate()
        kmock.wait(timeout=30)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    return result


def main():
    print(f"provider=kubernetes (kmock) throttle={THROTTLE_MS}ms changes={CHANGES} reloads={RELOADS}")
    print(f"{'N':>7} {'load s':>7} {'ready s':>8} {'change ms':>10} {'RSS load':>9} {'RSS reloads':>12}")
    for n in SIZES:
        r = measure(n)
        print(f"{r['n']:>7} {r['load_s']:>7.1f} {r['ready_s']:>8.2f} {r['change_ms']:>10.0f} "
              f"{r['rss_load']:>8.0f}M {r['rss_reloads']:>11.0f}M", flush=True)
        print("   ", json.dumps(r), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
