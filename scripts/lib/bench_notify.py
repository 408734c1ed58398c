"""Delivery benchmarks (scripts/bench-notify).

latency: a live outage on events stamped with the wall clock, read by `ingest --follow` with N
copies of a one-minute-window SLO; mfascope pushes its pages to a real Alertmanager, and a real
Prometheus scraping the same ingest's /metrics with the generated rules (`slo rules --format
prometheus`, 1 s scrape and evaluation) pushes its own to the same Alertmanager: the peer. For
each page, the time from the episode's start (the end of the outage's first minute) to the
moment the Alertmanager API first lists it.

throughput: the findings of a stored sample delivered to a receiver answering each request
after 50 ms, per format; the peer is a plain client POSTing the same number of requests one
after another to the same receiver (what a serial sender can reach).
"""
import calendar, http.server, json, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time
import urllib.request

BIN = os.environ["MFASCOPE_BIN"]


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def wait(what, ok, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if ok():
                return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


SLO = """apiVersion: openslo/v1
kind: SLO
metadata: {{name: push-success-{i:02}}}
spec:
  service: 2fa
  indicator:
    metadata: {{name: ratio-{i:02}}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{type: mfascope, spec: {{counter: mfa_successes}}}}}}
        total: {{metricSource: {{type: mfascope, spec: {{counter: mfa_attempts}}}}}}
  timeWindow: [{{duration: 12h, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.98}}]
  alertPolicies: [{{alertPolicyRef: fast}}]
---
"""
POLICY = """apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: fast}
spec:
  conditions:
    - kind: AlertCondition
      metadata: {name: fast-burn-1h}
      spec:
        severity: page
        condition: {kind: burnrate, op: gte, threshold: 14.4, lookbackWindow: 1h, shortWindow: 5m}
"""


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def latency(work, slos, cycles):
    spec = os.path.join(work, "slos.yaml")
    with open(spec, "w") as f:
        f.write("".join(SLO.format(i=i) for i in range(slos)) + POLICY)
    rules = os.path.join(work, "rules.yml")
    with open(rules, "wb") as f:
        f.write(subprocess.check_output([BIN, "slo", "rules", "--format", "prometheus", "--slos", spec]))
    am_port, prom_port = port(), port()
    with open(os.path.join(work, "am.yml"), "w") as f:
        f.write("route: {receiver: none}\nreceivers: [{name: none}]\n")
    procs = []
    try:
        procs.append(subprocess.Popen(
            ["prometheus-alertmanager", f"--config.file={work}/am.yml", f"--storage.path={work}/am",
             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        am = f"http://127.0.0.1:{am_port}"
        wait("Alertmanager", lambda: urllib.request.urlopen(f"{am}/-/ready").status == 200)
        live = os.path.join(work, "live.ndjson")
        n = [0]

        def line(outcome):
            n[0] += 1
            now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%03dZ" % (int(time.time() * 1000) % 1000)
            return json.dumps({"event_id": f"p{n[0]}", "time": now, "source": "canonical",
                               "user": f"user{n[0] % 50}", "action": "mfa_verify", "factor": "push",
                               "outcome": outcome, "vendor_event_type": "t"}) + "\n"

        out = open(live, "a")
        out.write(line("success"))
        out.flush()
        ingest = subprocess.Popen(
            [BIN, "ingest", "--no-progress", "--follow", "--attack-exclusion", "off",
             "--metrics-listen", "127.0.0.1:0", "--alertmanager", am, "--slos", spec,
             "--out", os.path.join(work, "out"), live],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(ingest)
        metrics = None
        for l in ingest.stderr:
            if l.startswith("metrics: http://"):
                metrics = l.strip()[len("metrics: http://"):].removesuffix("/metrics")
                break
        threading.Thread(target=lambda: ingest.stderr.read(), daemon=True).start()
        with open(os.path.join(work, "prom.yml"), "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    f"rule_files: [\"{rules}\"]\n"
                    f"scrape_configs: [{{job_name: mfascope, static_configs: [{{targets: [\"{metrics}\"]}}]}}]\n"
                    f"alerting: {{alertmanagers: [{{static_configs: [{{targets: [\"127.0.0.1:{am_port}\"]}}]}}]}}\n")
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={work}/prom.yml", f"--storage.tsdb.path={work}/prom",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait("Prometheus", lambda: urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/-/ready").status == 200)
        # Outage minutes: the first full minute at least 5 s away, then every 4 minutes (the
        # page resolves in between: 1 m short window + 1 m keepFiringFor).
        first = (int(time.time() * 1000) + 5000) // 60000 * 60000 + 60000
        outages = [first + k * 240_000 for k in range(cycles)]
        seen = {}  # (source, slo, startsAt or episode) -> first seen ms
        end = outages[-1] + 150_000
        while time.time() * 1000 < end:
            now = int(time.time() * 1000)
            bad = any(o <= now < o + 60_000 for o in outages)
            out.write(line("failure" if bad else "success"))
            out.flush()
            for a in get_json(f"{am}/api/v2/alerts"):
                labels = a["labels"]
                if labels.get("alertname") != "SLOBurn_fast_burn_1h" or a["status"]["state"] != "active":
                    continue
                source = "mfascope" if labels.get("source") == "mfascope" else "prometheus"
                # The episode starts when an outage's first minute closes: the last such instant
                # at or before the alert's startsAt (mfascope's is that instant; Prometheus's is
                # when its rule first held).
                starts = calendar.timegm(time.strptime(a["startsAt"][:19], "%Y-%m-%dT%H:%M:%S")) * 1000
                episode = max((o + 60_000 for o in outages if o + 60_000 <= starts + 999), default=None)
                if episode is not None:
                    seen.setdefault((source, labels["slo"], episode), now)
            time.sleep(0.1)
        ingest.terminate()
        ingest.wait()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
    result = {}
    for source in ("mfascope", "prometheus"):
        lags = [t - start for (s, _, start), t in seen.items() if s == source]
        result[source] = lags
    return result


class SlowHandler(http.server.BaseHTTPRequestHandler):
    received = 0
    first = last = None
    lock = threading.Lock()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        start = time.time()
        time.sleep(0.05)
        with SlowHandler.lock:
            SlowHandler.received += 1
            SlowHandler.first = SlowHandler.first or start
            SlowHandler.last = time.time()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def throughput(work, sample):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    store = os.path.join(work, "store")
    subprocess.run([BIN, "ingest", "--no-progress", "--format", "json", "--out", store, sample],
                   check=True, stdout=subprocess.DEVNULL)
    rows = {}
    key = os.path.join(work, "key")
    with open(key, "w") as f:
        f.write("bench-signing-key\n")
    generic = ["--notify", f"{url}/hook", "--notify-key", f"file:{key}"]
    for fmt, flag in (("generic", generic), ("alertmanager", ["--alertmanager", url])):
        # Deliver what the store owes from scratch: a fresh outbox, the same stored findings.
        shutil.rmtree(os.path.join(store, "_state", "notify"), ignore_errors=True)
        SlowHandler.received, SlowHandler.first, SlowHandler.last = 0, None, None
        report = json.loads(subprocess.check_output(
            [BIN, "ingest", "--no-progress", "--format", "json", "--notify-drain", "30m",
             *flag, "--out", store, sample]))
        delivered = sum(r["delivered"] for r in report["live"]["delivery"])
        # From the first request's arrival to the last answer.
        rows[fmt] = (delivered, SlowHandler.received, SlowHandler.last - SlowHandler.first)
    # Peer: the same number of requests POSTed one after another.
    n = max(d for d, _, _ in rows.values())
    t0 = time.time()
    for i in range(n):
        urllib.request.urlopen(urllib.request.Request(f"{url}/peer", data=b"{}", method="POST")).read()
    peer = n / (time.time() - t0)
    server.shutdown()
    return rows, n, peer


def main():
    mode = sys.argv[1]
    work = tempfile.mkdtemp(prefix="mfascope-bench-notify.")
    try:
        if mode == "latency":
            slos, cycles = int(sys.argv[2]), int(sys.argv[3])
            r = latency(work, slos, cycles)
            print(f"pages delivered to Alertmanager, ms from the episode's start "
                  f"({slos} SLOs x {cycles} outages):")
            for source, lags in r.items():
                if not lags:
                    print(f"  {source:<11} none seen")
                    continue
                print(f"  {source:<11} n={len(lags):<4} median {statistics.median(lags):>7.0f}  "
                      f"p99 {pct(lags, 0.99):>7.0f}  max {max(lags):>7.0f}")
            if r["mfascope"] and r["prometheus"]:
                print(f"  ratio (median mfascope / median Prometheus): "
                      f"{statistics.median(r['mfascope']) / statistics.median(r['prometheus']):.2f}x")
        else:
            rows, n, peer = throughput(work, sys.argv[2])
            print("outbox throughput to a receiver answering after 50 ms:")
            print(f"  peer: serial client  {peer:6.1f} requests/s")
            for fmt, (delivered, requests, elapsed) in rows.items():
                rate = delivered / elapsed
                print(f"  {fmt:<12} {delivered} notifications in {requests} requests over "
                      f"{elapsed:.1f} s: {rate:6.1f}/s = {rate / peer:.2f}x the peer")
    finally:
        shutil.rmtree(work, ignore_errors=True)


main()
