"""talos-gcp-emu: OAuth2 token endpoint, metadata server and --require-auth."""
import base64
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from emu import Emu

P = "projects/demo-project"
PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
OPENSSL = shutil.which("openssl")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw(method, url, data=None, headers=None):
    """(status, headers, body bytes) without raising on HTTP errors."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@unittest.skipUnless(OPENSSL, "openssl (the command) is not installed: JWTs cannot be signed")
class AuthWorld(unittest.TestCase):
    extra = ("--require-auth",)

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-auth-")
        cls.sa_path = os.path.join(cls.tmp, "sa.json")
        cls.user_path = os.path.join(cls.tmp, "adc.json")
        cls.emu = Emu(cls.tmp, kube=False, extra=("--sa-key-out", cls.sa_path, "--adc-user-out",
                                                    cls.user_path) + cls.extra).start()
        with open(cls.sa_path) as f:
            cls.sa = json.load(f)
        cls.key_path = os.path.join(cls.tmp, "sa.pem")
        with open(cls.key_path, "w") as f:
            f.write(cls.sa["private_key"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def sign(self, claims=None, header=None, key=None):
        now = int(time.time())
        c = {"iss": self.sa["client_email"], "scope": PLATFORM, "aud": self.sa["token_uri"],
             "iat": now, "exp": now + 3600}
        c.update(claims or {})
        h = {"alg": "RS256", "typ": "JWT", "kid": self.sa["private_key_id"]}
        h.update(header or {})
        seg = b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(c).encode())
        sig = subprocess.run([OPENSSL, "dgst", "-sha256", "-sign", key or self.key_path],
                             input=seg.encode(), capture_output=True, check=True).stdout
        return seg + "." + b64url(sig)

    def exchange(self, form):
        status, _, body = raw("POST", self.sa["token_uri"], urllib.parse.urlencode(form).encode(),
                              {"Content-Type": "application/x-www-form-urlencoded"})
        return status, json.loads(body)

    def jwt_token(self, **claims):
        status, body = self.exchange({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                      "assertion": self.sign(claims)})
        self.assertEqual(status, 200, body)
        return body["access_token"]

    def compute_get(self, token=None, path="zones/us-central1-a"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, hdrs, body = raw("GET", f"{self.emu.compute_endpoint}{P}/{path}", headers=headers)
        return status, hdrs, json.loads(body)


class TestServiceAccount(AuthWorld):
    def test_key_file(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.sa_path).st_mode), 0o600)
        self.assertEqual(self.sa["type"], "service_account")
        self.assertEqual(self.sa["project_id"], "demo-project")
        self.assertEqual(self.sa["token_uri"], self.emu.cloud_url + "/token")
        self.assertTrue(self.sa["private_key"].startswith("-----BEGIN PRIVATE KEY-----"))
        self.assertTrue(self.sa["client_email"].endswith("@demo-project.iam.gserviceaccount.com"))
        for k in ("private_key_id", "client_id"):
            self.assertTrue(self.sa[k])

    def test_jwt_grant_and_use(self):
        status, body = self.exchange({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                      "assertion": self.sign()})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertTrue(3500 <= body["expires_in"] <= 3600)
        status, _, zone = self.compute_get(body["access_token"])
        self.assertEqual((status, zone["name"]), (200, "us-central1-a"))

    def test_operation_user_is_the_caller(self):
        token = self.jwt_token()
        url = f"{self.emu.compute_endpoint}{P}/global/networks"
        status, _, op = raw("POST", url, json.dumps({"name": "authnet"}).encode(),
                            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(op)["user"], self.sa["client_email"])

    def test_signature_from_another_key(self):
        other = os.path.join(self.tmp, "other.pem")
        subprocess.run([OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", other], check=True, capture_output=True)
        status, body = self.exchange({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                      "assertion": self.sign(key=other)})
        self.assertEqual((status, body["error"]), (400, "invalid_grant"))
        self.assertEqual(body["error_description"], "Invalid JWT Signature.")

    def test_tampered_claims(self):
        jwt = self.sign()
        h, c, s = jwt.split(".")
        claims = json.loads(base64.urlsafe_b64decode(c + "=="))
        claims["exp"] += 10
        forged = ".".join([h, b64url(json.dumps(claims).encode()), s])
        status, body = self.exchange({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                      "assertion": forged})
        self.assertEqual((status, body["error"]), (400, "invalid_grant"))

    def test_claims_checked(self):
        now = int(time.time())
        cases = [({"aud": "https://example.com/token"}, "invalid_grant", "audience"),
                 ({"iat": now, "exp": now + 7200}, "invalid_grant", "short-lived"),
                 ({"iat": now - 7200, "exp": now - 3600}, "invalid_grant", "short-lived"),
                 ({"iss": "someone@else.iam.gserviceaccount.com"}, "invalid_grant", "account"),
                 ({"scope": ""}, "invalid_scope", "scope")]
        for claims, error, words in cases:
            with self.subTest(claims=claims):
                status, body = self.exchange({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                              "assertion": self.sign(claims)})
                self.assertEqual((status, body["error"]), (400, error))
                self.assertIn(words, body["error_description"])
        status, body = self.exchange({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                      "assertion": self.sign(header={"alg": "HS256"})})
        self.assertEqual((status, body["error"]), (400, "invalid_grant"))
        status, body = self.exchange({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                      "assertion": "a.b"})
        self.assertEqual(status, 400)

    def test_google_audience_accepted(self):
        # Google's libraries may sign for the well-known token URI whatever the file says.
        self.jwt_token(aud="https://oauth2.googleapis.com/token")

    def test_unsupported_grant(self):
        status, body = self.exchange({"grant_type": "password", "username": "x"})
        self.assertEqual((status, body["error"]), (400, "unsupported_grant_type"))

    def test_insufficient_scope_is_403(self):
        token = self.jwt_token(scope="https://www.googleapis.com/auth/devstorage.read_only")
        status, _, body = self.compute_get(token)
        self.assertEqual(status, 403)
        self.assertEqual(body["error"]["status"], "PERMISSION_DENIED")
        token = self.jwt_token(scope="https://www.googleapis.com/auth/compute.readonly")
        self.assertEqual(self.compute_get(token)[0], 200)


class TestRequireAuth(AuthWorld):
    def test_missing_token_is_401(self):
        status, hdrs, body = self.compute_get()
        self.assertEqual(status, 401)
        self.assertEqual(body["error"]["code"], 401)
        self.assertEqual(body["error"]["status"], "UNAUTHENTICATED")
        self.assertEqual(body["error"]["errors"][0]["reason"], "required")
        self.assertIn("Bearer", hdrs["WWW-Authenticate"])

    def test_unknown_token_is_401(self):
        status, _, body = self.compute_get("ya29.not-one-of-ours")
        self.assertEqual(status, 401)
        self.assertEqual(body["error"]["errors"][0]["reason"], "authError")

    def test_token_and_metadata_need_no_token(self):
        status, _, _ = raw("GET", self.emu.cloud_url + "/computeMetadata/v1/project/project-id",
                           headers={"Metadata-Flavor": "Google"})
        self.assertEqual(status, 200)


class TestAuthorizedUser(AuthWorld):
    def test_refresh_grant(self):
        with open(self.user_path) as f:
            u = json.load(f)
        self.assertEqual(stat.S_IMODE(os.stat(self.user_path).st_mode), 0o600)
        self.assertEqual(u["type"], "authorized_user")
        self.assertEqual(u["token_uri"], self.emu.cloud_url + "/token")
        form = {"grant_type": "refresh_token", "client_id": u["client_id"],
                "client_secret": u["client_secret"], "refresh_token": u["refresh_token"]}
        status, body = self.exchange(form)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.compute_get(body["access_token"])[0], 200)
        status, body = self.exchange(dict(form, client_secret="wrong"))
        self.assertEqual((status, body["error"]), (401, "invalid_client"))
        status, body = self.exchange(dict(form, refresh_token="1//nope"))
        self.assertEqual((status, body["error"]), (400, "invalid_grant"))


class TestMetadataServer(AuthWorld):
    def md(self, path, flavor=True, extra=None):
        headers = {"Metadata-Flavor": "Google"} if flavor else {}
        headers.update(extra or {})
        return raw("GET", self.emu.cloud_url + path, headers=headers)

    def test_flavor_header_required(self):
        status, hdrs, _ = self.md("/computeMetadata/v1/project/project-id", flavor=False)
        self.assertEqual(status, 403)
        status, _, _ = self.md("/computeMetadata/v1/project/project-id", extra={"X-Forwarded-For": "1.2.3.4"})
        self.assertEqual(status, 403)

    def test_project_and_root(self):
        status, hdrs, body = self.md("/computeMetadata/v1/project/project-id")
        self.assertEqual((status, body), (200, b"demo-project"))
        self.assertEqual(hdrs["Metadata-Flavor"], "Google")
        status, hdrs, _ = self.md("/")
        self.assertEqual((status, hdrs["Metadata-Flavor"]), (200, "Google"))
        status, _, body = self.md("/computeMetadata/v1/project/numeric-project-id")
        self.assertTrue(body.isdigit())

    def test_default_service_account_token(self):
        status, hdrs, body = self.md("/computeMetadata/v1/instance/service-accounts/default/token")
        self.assertEqual(status, 200)
        tok = json.loads(body)
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertGreater(tok["expires_in"], 0)
        self.assertEqual(self.compute_get(tok["access_token"])[0], 200)
        status, _, email = self.md("/computeMetadata/v1/instance/service-accounts/default/email")
        self.assertTrue(email.endswith(b"-compute@developer.gserviceaccount.com"))
        status, _, info = self.md("/computeMetadata/v1/instance/service-accounts/default/?recursive=true")
        self.assertEqual(json.loads(info)["email"], email.decode())
        status, _, _ = self.md("/computeMetadata/v1/instance/nothing-here")
        self.assertEqual(status, 404)


class TestTokenExpiry(AuthWorld):
    extra = ("--require-auth", "--token-lifetime", "1s")

    def test_expired_token_is_401(self):
        token = self.jwt_token()
        self.assertEqual(self.compute_get(token)[0], 200)
        time.sleep(1.3)
        status, _, body = self.compute_get(token)
        self.assertEqual(status, 401)


@unittest.skipUnless(OPENSSL, "openssl (the command) is not installed: JWTs cannot be signed")
class TestCredentialsSurviveState(unittest.TestCase):
    def test_restart_keeps_keys_and_tokens(self):
        tmp = tempfile.mkdtemp(prefix="emu-auth-state-")
        try:
            state = os.path.join(tmp, "state.json")
            sa = os.path.join(tmp, "sa.json")
            args = ("--state", state, "--sa-key-out", sa, "--require-auth")
            emu = Emu(tmp, kube=False, extra=args).start()
            with open(sa) as f:
                first = json.load(f)
            status, _, body = raw("GET", emu.cloud_url + "/computeMetadata/v1/instance/service-accounts/default/token",
                                  headers={"Metadata-Flavor": "Google"})
            token = json.loads(body)["access_token"]
            emu.stop()
            self.assertEqual(stat.S_IMODE(os.stat(state).st_mode), 0o600)
            emu = Emu(tmp, kube=False, extra=args).start()
            try:
                with open(sa) as f:
                    second = json.load(f)
                for k in ("private_key_id", "private_key", "client_email", "client_id"):
                    self.assertEqual(first[k], second[k], k)
                status, _, _ = raw("GET", f"{emu.compute_endpoint}{P}/zones",
                                   headers={"Authorization": f"Bearer {token}"})
                self.assertEqual(status, 200)
            finally:
                emu.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
