#!/usr/bin/env python3
"""What a standby costs as an etcd learner (issue 70, docs/design/autopilot.md).

Two zones of the bundled etcd (bin/etcd) on loopback, plain HTTP (the cost measured is
etcd's replication, the same with TLS but for the cipher): three voters, then the same
three voters and a learner (`member add --learner`, never promoted). In each, a quiet
minute and then etcdctl's own load (`check perf --load=s`: 50 clients, 150 puts a second
of 256-byte values, 60 s). Figures per member, from /proc: CPU seconds (utime + stime),
resident memory at the end, bytes written to disk (`write_bytes`), over each window; and
the leader's, named from `endpoint status`.

Addresses 127.0.147.1-4 (ports 2379/2380); each etcd is stopped by its PID and its data
directory removed at the end, also on failure. Usage: scripts/measure/learner-cost.py
[--out FILE.json].
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ETCD = os.path.join(REPO, "bin", "etcd")
ETCDCTL = os.path.join(REPO, "bin", "etcdctl")
IPS = ["127.0.147.%d" % i for i in range(1, 5)]
TICK = os.sysconf("SC_CLK_TCK")


def peer(i):
    return "http://%s:2380" % IPS[i]


def client(i):
    return "http://%s:2379" % IPS[i]


def start(root, i, cluster, state):
    name = "m%d" % (i + 1)
    log = open(os.path.join(root, name + ".log"), "w")
    return subprocess.Popen(
        [ETCD, "--name", name, "--data-dir", os.path.join(root, name),
         "--listen-client-urls", client(i), "--advertise-client-urls", client(i),
         "--listen-peer-urls", peer(i), "--initial-advertise-peer-urls", peer(i),
         "--initial-cluster", cluster, "--initial-cluster-state", state,
         "--initial-cluster-token", "learner-cost"],
        stdout=log, stderr=subprocess.STDOUT)


def ctl(endpoints, *args, check=True):
    out = subprocess.run([ETCDCTL, "--endpoints=" + ",".join(endpoints)] + list(args),
                         capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError("etcdctl %s: %s%s" % (" ".join(args), out.stdout, out.stderr))
    return out.stdout


def wait(what, cond, limit=60):
    until = time.time() + limit
    while time.time() < until:
        try:
            if cond():
                return
        except (RuntimeError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise RuntimeError("timed out waiting for " + what)


def sample(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    written = 0
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("write_bytes:"):
                written = int(line.split()[1])
    return {"cpu": cpu, "rss": rss, "written": written}


def window(procs, seconds=None, load=None):
    before = {n: sample(p.pid) for n, p in procs.items()}
    started = time.time()
    if load:
        load()
    else:
        time.sleep(seconds)
    took = time.time() - started
    after = {n: sample(p.pid) for n, p in procs.items()}
    return {"seconds": round(took, 1), "members": {
        n: {"cpu_s": round(after[n]["cpu"] - before[n]["cpu"], 2),
            "rss_mib": round(after[n]["rss"] / 2**20, 1),
            "written_mib": round((after[n]["written"] - before[n]["written"]) / 2**20, 2)}
        for n in procs}}


def leader(endpoints):
    rows = json.loads(ctl(endpoints, "endpoint", "status", "-w", "json"))
    for r in rows:
        if r["Status"]["leader"] == r["Status"]["header"]["member_id"]:
            return r["Endpoint"]
    return None


def scenario(learner):
    root = tempfile.mkdtemp(prefix="learner-cost-")
    procs = {}
    try:
        cluster = ",".join("m%d=%s" % (i + 1, peer(i)) for i in range(3))
        for i in range(3):
            procs["m%d" % (i + 1)] = start(root, i, cluster, "new")
        voters = [client(i) for i in range(3)]
        wait("three voters healthy",
             lambda: ctl(voters, "endpoint", "health", check=False).count("is healthy") == 3)
        if learner:
            # etcd's strict reconfiguration check refuses a change ("unhealthy cluster")
            # until every voter has been connected for a few seconds.
            added = []
            wait("the learner added", lambda: added.append(
                ctl(voters, "member", "add", "m4", "--peer-urls=" + peer(3), "--learner"))
                or True)
            out = added[0]
            initial = [l.split("=", 1)[1].strip('"') for l in out.splitlines()
                       if l.startswith("ETCD_INITIAL_CLUSTER=")][0]
            procs["m4"] = start(root, 3, initial, "existing")

            def caught_up():
                rows = json.loads(ctl(voters + [client(3)], "endpoint", "status", "-w", "json"))
                idx = [r["Status"]["raftIndex"] for r in rows]
                return len(idx) == 4 and min(idx) >= max(idx) - 10
            wait("the learner caught up", caught_up)
        time.sleep(5)
        quiet = window(procs, seconds=60)
        everyone = voters + ([client(3)] if learner else [])

        def load():
            ctl(voters, "check", "perf", "--load=s", "--auto-compact")
        loaded = window(procs, load=load)
        lead = leader(voters)
        lead_name = "m%d" % (voters.index(lead) + 1) if lead in voters else None
        members = json.loads(ctl(voters, "member", "list", "-w", "json"))["members"]
        return {"learner": learner, "leader": lead_name, "quiet": quiet, "load": loaded,
                "learners": sum(1 for m in members if m.get("isLearner"))}
    finally:
        for p in procs.values():
            try:
                os.kill(p.pid, signal.SIGTERM)
                p.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        shutil.rmtree(root, ignore_errors=True)


def main():
    out = None
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        out = sys.argv[2]
    version = subprocess.run([ETCD, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    results = {"etcd": version, "load_before": os.getloadavg(),
               "without": scenario(False), "with": scenario(True),
               "load_after": os.getloadavg()}
    for name in ("without", "with"):
        r = results[name]
        for w in ("quiet", "load"):
            line = ", ".join("%s%s %.2f s CPU, %.1f MiB, %.2f MiB written" % (
                n, " (leader)" if n == r["leader"] else "", m["cpu_s"], m["rss_mib"], m["written_mib"])
                for n, m in sorted(r[w]["members"].items()))
            print("%s a learner, %s (%s s): %s" % (name, w, r[w]["seconds"], line))
    if out:
        with open(out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
