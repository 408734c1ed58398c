"""Drive a known mix of logins against a real Keycloak (scripts/keycloak) and print, as JSON,
what was done: the browser login form with its OTP step (as a person signs in; requests plays
the browser), the CONFIGURE_TOTP required action (an enrolment), and the admin REST API (an
admin removing that OTP credential).

Usage: keycloak_driver.py CREDENTIALS_JSON

Failures of one user are spaced by 1.1 s: Keycloak's brute-force detection locks a user after
two failures closer than its quick-login check (1 s), and the mix wants exactly one lockout,
from bob's third wrong code (the realm's failure factor).
"""
import base64
import html
import json
import re
import sys
import time

import pyotp
import requests

creds = json.load(open(sys.argv[1]))
url, realm = creds["url"], creds["realm"]
oidc = f"{url}/realms/{realm}/protocol/openid-connect"
done = {"mfa_success": 0, "mfa_failure": 0, "lockouts": 0, "refused_locked": 0,
        "enrolled": 0, "removed_by_admin": 0, "admin_logins": 0}
used_steps = {}  # user -> TOTP time steps already accepted (Keycloak takes a code once)


def form_action(page):
    m = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    if not m:
        sys.exit(f"no form on {page.url} ({page.status_code})")
    return html.unescape(m.group(1))


class Browser:
    """One login attempt: Keycloak's auth cookies are `Secure`, which requests would not send
    back over plain HTTP on 127.0.0.1, so they are unmarked before each request."""

    def __init__(self):
        self.s = requests.Session()

    def request(self, method, target, **kw):
        for c in self.s.cookies:
            c.secure = False
        return self.s.request(method, target, allow_redirects=False, **kw)

    def start(self, user, password):
        page = self.request("GET", f"{oidc}/auth", params={
            "client_id": creds["client_id"], "response_type": "code", "scope": "openid",
            "redirect_uri": "http://127.0.0.1/callback"})
        page = self.request("POST", form_action(page),
                            data={"username": user, "password": password})
        if page.status_code == 302 and "required-action" in page.headers["location"]:
            page = self.request("GET", page.headers["location"])
        return page

    def otp(self, page, code):
        return self.request("POST", form_action(page), data={"otp": code})


def fresh_code(user):
    """A code of a time step within Keycloak's look-around window (±1) not used yet."""
    totp = pyotp.TOTP(creds["users"][user]["totp_secret"])
    while True:
        now = int(time.time())
        for step in (now // 30, now // 30 + 1, now // 30 - 1):
            if step not in used_steps.setdefault(user, set()):
                used_steps[user].add(step)
                return totp.at(step * 30)
        time.sleep(30 - now % 30 + 0.2)


def wrong_code(user):
    totp = pyotp.TOTP(creds["users"][user]["totp_secret"])
    now = int(time.time())
    near = {totp.at(now + k * 30) for k in range(-3, 4)}
    return next(c for c in (f"{(int(totp.now()) + 500000 + i) % 1000000:06d}" for i in range(50))
                if c not in near)


def signed_in(page):
    return page.status_code == 302 and page.headers["location"].startswith(
        "http://127.0.0.1/callback")


def login(user, codes):
    """Password, then each code in turn on the OTP form (failures spaced)."""
    b = Browser()
    page = b.start(user, creds["users"][user]["password"])
    for k, code in enumerate(codes):
        if k:
            time.sleep(1.1)
        page = b.otp(page, code)
        if signed_in(page):
            done["mfa_success"] += 1
        else:
            done["mfa_failure"] += 1
    return page


# alice: two wrong codes, then the right one (the success resets her failure count) …
page = login("alice", [wrong_code("alice"), wrong_code("alice"), fresh_code("alice")])
assert signed_in(page), "alice's right code was refused"
# … and two more sign-ins.
for _ in range(2):
    page = login("alice", [fresh_code("alice")])
    assert signed_in(page), "alice's sign-in was refused"

# bob: three wrong codes lock him (failure factor 3); his right password is then refused.
time.sleep(1.1)
page = login("bob", [wrong_code("bob") for _ in range(3)])
done["lockouts"] += 1
time.sleep(1.1)
page = Browser().start("bob", creds["users"]["bob"]["password"])
assert not signed_in(page) and 'name="otp"' not in page.text, "bob was not locked"
done["refused_locked"] += 1

# carol: must configure OTP (required action), enrols on first sign-in …
b = Browser()
page = b.start("carol", creds["users"]["carol"]["password"])
raw = re.search(r'name="totpSecret" value="([^"]+)"', page.text).group(1)
key = base64.b32encode(raw.encode()).decode()
page = b.request("POST", form_action(page), data={
    "totp": pyotp.TOTP(key).now(), "totpSecret": raw, "userLabel": "carol's phone"})
assert signed_in(page), f"carol's enrolment failed ({page.status_code})"
done["enrolled"] += 1
done["mfa_success"] += 1  # the sign-in that completes the enrolment checked the code

# … and an admin removes that OTP credential.
token = requests.post(f"{url}/realms/master/protocol/openid-connect/token", data={
    "grant_type": "password", "client_id": "admin-cli", "username": "admin",
    "password": creds["admin"]["password"]}).json()["access_token"]
done["admin_logins"] += 1
admin = {"Authorization": f"Bearer {token}"}
carol = requests.get(f"{url}/admin/realms/{realm}/users",
                     params={"username": "carol", "exact": "true"}, headers=admin).json()[0]
otp = [c for c in requests.get(f"{url}/admin/realms/{realm}/users/{carol['id']}/credentials",
                               headers=admin).json() if c["type"] == "otp"][0]
r = requests.delete(f"{url}/admin/realms/{realm}/users/{carol['id']}/credentials/{otp['id']}",
                    headers=admin)
assert r.status_code == 204, r.status_code
done["removed_by_admin"] += 1
print(json.dumps(done))
