"""Canonical NDJSON for the benchmarks: N events from 2024-05-01, one per 10 ms of event time,
over U users (each user's events spread over the whole stream), with IPs, devices, failures and
pushes so that the per-user history and the correlation rules hold state.

    python3 scripts/lib/canonical_stream.py EVENTS USERS > events.ndjson
"""
import sys
n, users = int(sys.argv[1]), int(sys.argv[2])
kinds = [("primary_auth", "password", "success"), ("mfa_challenge", "push", "success"),
         ("mfa_verify", "push", "success"), ("mfa_verify", "push", "failure"),
         ("mfa_verify", "totp", "success"), ("mfa_verify", "totp", "failure"),
         ("mfa_challenge", "sms", "success"), ("mfa_verify", "webauthn", "success")]
out = sys.stdout.write
step = 1_000_003 % users or 1
chunk = []
for i in range(n):
    s, ms = divmod(i * 10, 1000)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    a, f, o = kinds[i % 8]
    u = (i * step) % users
    chunk.append(
        f'{{"event_id":"m{i}","time":"2024-05-{1 + d:02d}T{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z",'
        f'"source":"canonical","user":"user{u}@acme.example","action":"{a}","factor":"{f}",'
        f'"outcome":"{o}","src_ip":"10.{u % 251}.{i % 253}.{u % 199}","device_id":"d{u % 977}",'
        f'"vendor_event_type":"bench"}}\n')
    if len(chunk) == 20000:
        out("".join(chunk))
        chunk.clear()
out("".join(chunk))
