"""Mock vendor log APIs for mfascope's API sources, written from each vendor's published API
documentation: the Okta System Log API (/api/v1/logs: since/until, sortOrder, limit, Link
rel="next", X-Rate-Limit-Limit/Remaining/Reset, SSWS tokens), the Duo Admin API v2
authentication logs (/admin/v2/logs/authentication: mintime/maxtime/limit/sort/next_offset,
HMAC-SHA1 request signatures per Duo's "Authentication" section, 1 request a minute scaled to
--duo-every), Microsoft Graph audit logs (/v1.0/auditLogs/signIns and directoryAudits:
$filter ge/lt, $top, @odata.nextLink, client-credentials tokens, Retry-After on 429, 401
InvalidAuthenticationToken once a token expires) and the Google Workspace Reports API
(/admin/reports/v1/activity/users/all/applications/APP: startTime/endTime inclusive,
maxResults, nextPageToken, newest first; a service-account JWT grant whose RS256 signature,
subject and scope are verified).

Faults are injected on a schedule (every Nth data request a 503, every Mth a 429 with the
vendor's headers) and tokens expire after --token-life seconds. GET /_stats returns what the
mock counted: requests per vendor, injected faults, rate-limit violations (a request the
vendor would refuse because the client did not wait as told), signature failures, tokens
issued and expired tokens refused. POST /_add?vendor=V appends NDJSON records (late arrivals
in --follow). --served DIR writes the records each vendor serves, the test's ground truth.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import threading
import time
import urllib.parse
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

LOCK = threading.Lock()
STATS = {}


def count(key, n=1):
    with LOCK:
        STATS[key] = STATS.get(key, 0) + n


def parse_time(s):
    from datetime import datetime
    s = s.replace("Z", "+00:00")
    return int(datetime.fromisoformat(s).timestamp() * 1000)


def iso(ms):
    from datetime import datetime, timezone
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_jwt(token, public_pem):
    """RS256 signature check; returns the claims or None."""
    try:
        head, body, sig = token.split(".")
        key = serialization.load_pem_public_key(public_pem)
        key.verify(b64url_decode(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        header = json.loads(b64url_decode(head))
        if header.get("alg") != "RS256":
            return None
        return json.loads(b64url_decode(body))
    except Exception:
        return None


class Store:
    """Records of one stream, sorted by (time, id)."""

    def __init__(self, time_of, id_of):
        self.time_of, self.id_of, self.rows = time_of, id_of, []

    def add(self, raw):
        rec = json.loads(raw)
        with LOCK:
            self.rows.append((self.time_of(rec), self.id_of(rec), raw))
            self.rows.sort(key=lambda r: (r[0], r[1]))

    def between(self, lo, hi_exclusive):
        with LOCK:
            return [r for r in self.rows if lo <= r[0] < hi_exclusive]


def duo_time(r):
    return parse_time(r["isotimestamp"]) if "isotimestamp" in r else r["timestamp"] * 1000


STREAMS = {
    "okta": Store(lambda r: parse_time(r["published"]), lambda r: r["uuid"]),
    "duo": Store(duo_time, lambda r: r["txid"]),
    "signIns": Store(lambda r: parse_time(r["createdDateTime"]), lambda r: r["id"]),
    "directoryAudits": Store(lambda r: parse_time(r["activityDateTime"]), lambda r: r["id"]),
}
for app in ("login", "user_accounts", "admin"):
    STREAMS[app] = Store(lambda r: parse_time(r["id"]["time"]), lambda r: str(r["id"].get("uniqueQualifier")))


ENVELOPES = {"SignInLogs": "signIns", "AuditLogs": "directoryAudits"}


def route(vendor, rec):
    """The stream a record belongs to and the record as the API serves it (stream None: not
    served by the API the mock imitates). Entra records in the Event Hubs / diagnostic-archive
    envelope are served as Graph serves them: the object under `properties`."""
    if vendor == "okta":
        return "okta", rec
    if vendor == "duo":
        return "duo", rec
    if vendor == "entra":
        if "category" in rec and "properties" in rec:
            return ENVELOPES.get(rec["category"]), rec["properties"]
        if "createdDateTime" in rec and "activityDateTime" not in rec and "riskEventType" not in rec:
            return "signIns", rec
        if "activityDateTime" in rec:
            return "directoryAudits", rec
        return None, rec
    if vendor == "google":
        app = rec.get("id", {}).get("applicationName")
        return (app if app in ("login", "user_accounts", "admin") else None), rec
    return None, rec


def load(vendor, lines):
    n = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        rec = json.loads(line)
        stream, served = route(vendor, rec)
        if stream:
            STREAMS[stream].add(line if served is rec else json.dumps(served, separators=(",", ":")))
            n += 1
    return n


class Limits:
    """Per-vendor pacing state and the schedule of injected faults."""

    def __init__(self, a):
        self.a = a
        self.okta_window = (0, 0)  # (window start second, requests in it)
        self.duo_last = 0.0
        self.blocked_until = {}  # vendor -> monotonic time before which a request violates
        self.data_requests = {}

    def injected(self, vendor):
        """'503', '429' or None for this data request of `vendor`."""
        with LOCK:
            n = self.data_requests[vendor] = self.data_requests.get(vendor, 0) + 1
        if self.a.fail_every and n % self.a.fail_every == 0:
            return "503"
        if self.a.throttle_every and n % self.a.throttle_every == 3:
            return "429"
        return None

    def early(self, vendor):
        with LOCK:
            until = self.blocked_until.get(vendor, 0)
        if time.monotonic() < until:
            count(f"{vendor}.violations")
            return True
        return False

    def block(self, vendor, seconds):
        with LOCK:
            self.blocked_until[vendor] = time.monotonic() + seconds


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def query(self):
        u = urllib.parse.urlsplit(self.path)
        return u.path, dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True)), u.query

    def do_POST(self):
        path, q, _ = self.query()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        if path == "/_add":
            n = load(q["vendor"], body.splitlines())
            return self.reply(200, {"added": n})
        form = dict(urllib.parse.parse_qsl(body))
        a = self.server.args
        if path == "/graph-token":
            count("graph.token_requests")
            if form.get("client_id") != a.graph_client or form.get("client_secret") != a.graph_secret:
                return self.reply(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
            if form.get("grant_type") != "client_credentials" or not form.get("scope", "").endswith("/.default"):
                return self.reply(400, {"error": "invalid_request", "error_description": "bad grant or scope"})
            return self.issue("graph")
        if path == "/google-token":
            count("google.token_requests")
            claims = verify_jwt(form.get("assertion", ""), self.server.google_public)
            ok = (form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer" and claims
                  and claims.get("sub") == a.google_subject
                  and "admin.reports.audit.readonly" in claims.get("scope", ""))
            if not ok:
                count("google.bad_assertions")
                return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
            return self.issue("google")
        return self.reply(404, {"error": "not found"})

    def issue(self, vendor):
        token = base64.b16encode(os.urandom(16)).decode()
        with LOCK:
            self.server.tokens[token] = (vendor, time.monotonic() + self.server.args.token_life)
        count(f"{vendor}.tokens_issued")
        return self.reply(200, {"token_type": "Bearer", "expires_in": self.server.args.token_life, "access_token": token})

    def bearer_ok(self, vendor):
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with LOCK:
            found = self.server.tokens.get(token)
        if not found or found[0] != vendor:
            count(f"{vendor}.bad_tokens")
            self.reply(401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token validation failure."}})
            return False
        if time.monotonic() > found[1]:
            count(f"{vendor}.expired_tokens")
            self.reply(401, {"error": {"code": "InvalidAuthenticationToken", "message": "Lifetime validation failed, the token is expired."}})
            return False
        return True

    def do_GET(self):
        path, q, raw_query = self.query()
        if path == "/_stats":
            with LOCK:
                return self.reply(200, dict(STATS))
        if path == "/api/v1/logs":
            return self.okta(q)
        if path == "/admin/v2/logs/authentication":
            return self.duo(path, raw_query, q)
        if path.startswith("/v1.0/auditLogs/"):
            return self.graph(path.rsplit("/", 1)[1], q)
        prefix = "/admin/reports/v1/activity/users/all/applications/"
        if path.startswith(prefix):
            return self.google(path[len(prefix):], q)
        return self.reply(404, {"error": "not found"})

    # Okta ---------------------------------------------------------------------------------
    def okta(self, q):
        a, lim = self.server.args, self.server.limits
        count("okta.requests")
        if self.headers.get("Authorization") != f"SSWS {a.okta_token}":
            count("okta.bad_tokens")
            return self.reply(401, {"errorCode": "E0000011", "errorSummary": "Invalid token provided"})
        now = time.time()
        second = int(now // a.okta_window) * a.okta_window
        with LOCK:
            start, n = lim.okta_window
            if start != second:
                start, n = second, 0
            n += 1
            lim.okta_window = (start, n)
        reset = str(int(start + a.okta_window))
        remaining = max(a.okta_limit - n, 0)
        limit_headers = [("X-Rate-Limit-Limit", str(a.okta_limit)), ("X-Rate-Limit-Remaining", str(remaining)), ("X-Rate-Limit-Reset", reset)]
        if n > a.okta_limit:
            count("okta.violations")
            return self.reply(429, {"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."}, limit_headers)
        fault = lim.injected("okta")
        if fault == "503":
            count("okta.injected_503")
            return self.reply(503, {"errorSummary": "Service unavailable"})
        if fault == "429":
            count("okta.injected_429")
            with LOCK:
                lim.okta_window = (start, a.okta_limit)
            return self.reply(429, {"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."},
                              [("X-Rate-Limit-Limit", str(a.okta_limit)), ("X-Rate-Limit-Remaining", "0"), ("X-Rate-Limit-Reset", reset)])
        lo = parse_time(q["since"])
        hi = parse_time(q["until"]) if "until" in q else 1 << 62
        rows = STREAMS["okta"].between(lo, hi)
        if "after" in q:
            t, i = q["after"].split("|", 1)
            rows = [r for r in rows if (r[0], r[1]) > (int(t), i)]
        limit = min(int(q.get("limit", 100)), a.page)
        page = rows[:limit]
        headers = list(limit_headers)
        base = f"http://{self.headers['Host']}/api/v1/logs"
        if len(rows) > limit:
            nq = {k: v for k, v in q.items() if k != "after"}
            nq["after"] = f"{page[-1][0]}|{page[-1][1]}"
            headers.append(("Link", f"<{base}?{urllib.parse.urlencode(nq)}>; rel=\"next\""))
        count("okta.records_served", len(page))
        body = b"[" + b",".join(r[2].encode() for r in page) + b"]"
        return self.reply(200, body, headers)

    # Duo ----------------------------------------------------------------------------------
    def duo(self, path, raw_query, q):
        a, lim = self.server.args, self.server.limits
        count("duo.requests")
        params = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        canon_params = "&".join(
            f"{urllib.parse.quote(k, '~')}={urllib.parse.quote(v, '~')}" for k, v in sorted(params))
        date = self.headers.get("Date", "")
        canon = "\n".join([date, "GET", self.headers.get("Host", "").lower(), path, canon_params])
        sig = hmac.new(a.duo_skey.encode(), canon.encode(), hashlib.sha1).hexdigest()
        expected = "Basic " + base64.b64encode(f"{a.duo_ikey}:{sig}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            count("duo.bad_signatures")
            return self.reply(401, {"code": 40103, "message": "Invalid signature in request credentials", "stat": "FAIL"})
        count("duo.signatures_verified")
        now = time.monotonic()
        with LOCK:
            early = now - lim.duo_last < a.duo_every
            lim.duo_last = now
        if early:
            count("duo.violations")
            return self.reply(429, {"code": 42901, "message": "Too Many Requests", "stat": "FAIL"})
        fault = lim.injected("duo")
        if fault == "503":
            count("duo.injected_503")
            return self.reply(503, {"code": 50001, "message": "Service Unavailable", "stat": "FAIL"})
        if fault == "429":
            count("duo.injected_429")
            return self.reply(429, {"code": 42901, "message": "Too Many Requests", "stat": "FAIL"})
        for required in ("mintime", "maxtime"):
            if required not in q:
                return self.reply(400, {"code": 40002, "message": "Missing required request parameters", "message_detail": required, "stat": "FAIL"})
        rows = STREAMS["duo"].between(int(q["mintime"]), int(q["maxtime"]) + 1)
        if q.get("sort", "ts:desc") != "ts:asc":
            rows = rows[::-1]
        if "next_offset" in q:
            t, i = q["next_offset"].split(",", 1)
            rows = [r for r in rows if (r[0], r[1]) > (int(t), i)]
        limit = min(int(q.get("limit", 100)), a.page)
        page = rows[:limit]
        meta = {"total_objects": len(rows)}
        if len(rows) > limit:
            meta["next_offset"] = [str(page[-1][0]), page[-1][1]]
        count("duo.records_served", len(page))
        body = ('{"stat":"OK","response":{"authlogs":[' + ",".join(r[2] for r in page) + '],"metadata":' + json.dumps(meta) + "}}").encode()
        return self.reply(200, body)

    # Graph --------------------------------------------------------------------------------
    def graph(self, stream, q):
        a, lim = self.server.args, self.server.limits
        count("graph.requests")
        if lim.early("graph"):
            return self.reply(429, {"error": {"code": "TooManyRequests", "message": "Too many requests"}}, [("Retry-After", "1")])
        if not self.bearer_ok("graph"):
            return
        fault = lim.injected("graph")
        if fault == "503":
            count("graph.injected_503")
            return self.reply(503, {"error": {"code": "serviceNotAvailable", "message": "Service unavailable"}})
        if fault == "429":
            count("graph.injected_429")
            lim.block("graph", 1)
            return self.reply(429, {"error": {"code": "TooManyRequests", "message": "Too many requests"}}, [("Retry-After", "1")])
        field = "activityDateTime" if stream == "directoryAudits" else "createdDateTime"
        parts = q["$filter"].split(" and ")
        lo, hi = 0, 1 << 62
        for p in parts:
            f, op, value = p.split(" ", 2)
            assert f == field, f
            if op == "ge":
                lo = parse_time(value)
            elif op == "lt":
                hi = parse_time(value)
            elif op == "le":
                hi = parse_time(value) + 1
        rows = STREAMS[stream].between(lo, hi)[::-1]
        skip = int(q.get("$skiptoken", 0))
        top = min(int(q.get("$top", 100)), a.page)
        page = rows[skip:skip + top]
        body = {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#auditLogs/{stream}", "value": [json.loads(r[2]) for r in page]}
        if skip + top < len(rows):
            nq = dict(q)
            nq["$skiptoken"] = str(skip + top)
            body["@odata.nextLink"] = f"http://{self.headers['Host']}/v1.0/auditLogs/{stream}?{urllib.parse.urlencode(nq)}"
        count("graph.records_served", len(page))
        return self.reply(200, body)

    # Google -------------------------------------------------------------------------------
    def google(self, app, q):
        a, lim = self.server.args, self.server.limits
        count("google.requests")
        if lim.early("google"):
            return self.reply(429, {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}})
        if not self.bearer_ok("google"):
            return
        fault = lim.injected("google")
        if fault == "503":
            count("google.injected_503")
            return self.reply(503, {"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}})
        if fault == "429":
            count("google.injected_429")
            # Google asks for exponential backoff starting at one second.
            lim.block("google", 1)
            return self.reply(429, {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}})
        lo = parse_time(q["startTime"])
        hi = parse_time(q["endTime"]) + 1 if "endTime" in q else 1 << 62
        rows = STREAMS[app].between(lo, hi)[::-1]
        skip = int(q.get("pageToken", 0))
        size = min(int(q.get("maxResults", 1000)), a.page)
        page = rows[skip:skip + size]
        body = {"kind": "admin#reports#activities", "items": [json.loads(r[2]) for r in page]}
        if skip + size < len(rows):
            body["nextPageToken"] = str(skip + size)
        count("google.records_served", len(page))
        return self.reply(200, body)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    for v in ("okta", "duo", "entra", "google"):
        p.add_argument(f"--{v}", help=f"NDJSON records of {v}")
    p.add_argument("--served", help="write each stream's served records here (ground truth)")
    p.add_argument("--page", type=int, default=100)
    p.add_argument("--okta-token", default="okta-test-token")
    p.add_argument("--okta-limit", type=int, default=6)
    p.add_argument("--okta-window", type=int, default=1)
    p.add_argument("--duo-ikey", default="DIWJ8X6AEYOR5OMC6TQ1")
    p.add_argument("--duo-skey", default="Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep")
    p.add_argument("--duo-every", type=float, default=1.0)
    p.add_argument("--graph-client", default="graph-client")
    p.add_argument("--graph-secret", default="graph-secret")
    p.add_argument("--google-public", help="PEM public key of the service account")
    p.add_argument("--google-subject", default="admin@example.com")
    p.add_argument("--token-life", type=int, default=4)
    p.add_argument("--fail-every", type=int, default=7)
    p.add_argument("--throttle-every", type=int, default=5)
    a = p.parse_args()
    for v in ("okta", "duo", "entra", "google"):
        path = getattr(a, v)
        if path:
            with open(path) as f:
                load(v, f)
    if a.served:
        os.makedirs(a.served, exist_ok=True)
        for name, store in STREAMS.items():
            if store.rows:
                with open(os.path.join(a.served, f"{name}.ndjson"), "w") as f:
                    f.writelines(r[2] + "\n" for r in store.rows)
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.args, server.limits, server.tokens = a, Limits(a), {}
    server.google_public = open(a.google_public, "rb").read() if a.google_public else b""
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(a.port_file + ".tmp", a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
