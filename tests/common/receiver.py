"""A webhook receiver for delivery tests: records each request as a JSON line (path, headers
that matter, whether the HMAC signature verified, the body) in OUT, answers 503 with
Retry-After: 1 while the file DOWN exists, and 200 otherwise. Prints its port on stdout."""
import hashlib, hmac, http.server, json, os, sys

out_path, key_path, down = sys.argv[1], sys.argv[2], sys.argv[3]
key = open(key_path, "rb").read().strip() if os.path.exists(key_path) else b""
out = open(out_path, "a")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if os.path.exists(down):
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.end_headers()
            return
        sig = self.headers.get("X-Mfascope-Signature")
        verified = None
        if sig:
            parts = dict(p.split("=", 1) for p in sig.split(","))
            mac = hmac.new(key, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
            verified = hmac.compare_digest(mac, parts["v1"])
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body.decode()
        out.write(json.dumps({"path": self.path, "key": self.headers.get("Idempotency-Key"),
                              "auth": self.headers.get("Authorization"),
                              "verified": verified, "body": parsed}) + "\n")
        out.flush()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
