"""Every Google credential path of src/gcp, against talos-gcp-emu's real token endpoint and
metadata server, with --require-auth so that the Compute API checks the token it is given.

Driven through tests/tools/gcp-token (loads credentials the ADC way, lists instances).
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from emu import Emu

GCP_TOKEN = os.environ.get("GCP_TOKEN")
# Variables that would let a run pick up credentials from outside the test.
CREDENTIAL_VARS = ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
                   "CLOUDSDK_CONFIG", "GCE_METADATA_HOST", "GCE_METADATA_ROOT", "NO_GCE_CHECK",
                   "TALOS_GCP_COMPUTE_ENDPOINT", "http_proxy", "https_proxy", "HTTP_PROXY",
                   "HTTPS_PROXY", "ALL_PROXY")


def parse_output(out):
    """'key=value' words of gcp-token's stdout lines into a dict."""
    fields = {}
    for line in out.splitlines():
        for word in line.split():
            if "=" in word:
                k, v = word.split("=", 1)
                fields[k] = v
        if line.startswith("described "):
            fields["described"] = line[len("described "):]
    return fields


@unittest.skipUnless(GCP_TOKEN, "GCP_TOKEN (tests/tools/gcp-token) not built")
class Credentials(unittest.TestCase):
    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="credentials-")
        cls.sa_key = os.path.join(cls.tmp, "sa.json")
        cls.adc_user = os.path.join(cls.tmp, "adc.json")
        cls.emu = Emu(cls.tmp, kube=False,
                      extra=["--require-auth", "--sa-key-out", cls.sa_key,
                             "--adc-user-out", cls.adc_user] + list(cls.extra)).start()
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def env(self, **extra):
        """A clean environment: an empty HOME, no credential variables, no metadata server."""
        Credentials.n += 1
        home = os.path.join(self.tmp, f"home{Credentials.n}")
        os.makedirs(home)
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
        env["HOME"] = home
        env["NO_GCE_CHECK"] = "true"
        env.update(extra)
        return env

    def run_tool(self, env, *args):
        cmd = [GCP_TOKEN, "--compute-endpoint", self.emu.compute_endpoint, *args]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        return p.returncode, parse_output(p.stdout), p.stderr

    def assert_ok(self, env, kind, *args):
        rc, out, err = self.run_tool(env, *args)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out["kind"], kind)
        self.assertEqual(err, "")
        return out

    def metadata_token(self):
        """A token the emulator issued (from its metadata server), for token-file tests."""
        status, body = self.emu.request(
            "GET", self.emu.cloud_url + "/computeMetadata/v1/instance/service-accounts/default/token",
            headers={"Metadata-Flavor": "Google"})
        self.assertEqual(status, 200)
        return body["access_token"]

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    # --- no credentials, or credentials the API refuses ---
    def test_no_credentials_is_a_clear_error(self):
        rc, out, err = self.run_tool(self.env())
        self.assertEqual(rc, 2)
        self.assertEqual(err.count("\n"), 1)
        self.assertTrue(err.startswith("gcp-token: ENOENT: no Google credentials: "), err)
        self.assertIn("GOOGLE_APPLICATION_CREDENTIALS unset", err)

    def test_compute_refuses_requests_without_a_valid_token(self):
        status, body = self.emu.compute("GET", "projects/demo-project/aggregated/instances")
        self.assertEqual(status, 401)
        tok = self.write("garbage-token", "ya29.not-issued-here\n")
        rc, out, err = self.run_tool(self.env(), "--access-token-file", tok)
        self.assertEqual(rc, 1)
        self.assertIn("gcp-token: EACCES: HTTP 401 ", err)
        self.assertIn("/compute/v1/projects/demo-project/aggregated/instances", err)

    # --- 1. the explicit token file ---
    def test_access_token_file_flag(self):
        tok = self.write("token-flag", self.metadata_token() + "\n")
        out = self.assert_ok(self.env(), "token_file", "--access-token-file", tok)
        self.assertEqual(out["token_requests"], "0")
        self.assertEqual(out["compute_requests"], "1")

    def test_access_token_file_env(self):
        tok = self.write("token-env", self.metadata_token())
        self.assert_ok(self.env(CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=tok), "token_file")

    def test_token_file_comes_first(self):
        tok = self.write("token-first", self.metadata_token())
        self.assert_ok(self.env(GOOGLE_APPLICATION_CREDENTIALS=self.sa_key), "token_file",
                       "--access-token-file", tok)

    # --- 2. GOOGLE_APPLICATION_CREDENTIALS ---
    def test_service_account_key(self):
        out = self.assert_ok(self.env(GOOGLE_APPLICATION_CREDENTIALS=self.sa_key),
                             "service_account", "--calls", "3")
        # One JWT exchange, then the cached token for every call.
        self.assertEqual(out["token_requests"], "1")
        self.assertEqual(out["compute_requests"], "3")
        with open(self.sa_key) as f:
            email = json.load(f)["client_email"]
        self.assertIn(f"token issued to {email} (jwt-bearer)", self.emu.stderr())

    def test_authorized_user(self):
        self.assert_ok(self.env(GOOGLE_APPLICATION_CREDENTIALS=self.adc_user), "authorized_user")
        self.assertIn("(refresh_token)", self.emu.stderr())

    def test_service_account_key_signed_by_another_key(self):
        with open(self.sa_key) as f:
            key = json.load(f)
        other = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA",
                                "-pkeyopt", "rsa_keygen_bits:2048"],
                               capture_output=True, text=True, check=True).stdout
        key["private_key"] = other
        forged = self.write("forged.json", json.dumps(key))
        rc, out, err = self.run_tool(self.env(GOOGLE_APPLICATION_CREDENTIALS=forged))
        self.assertEqual(rc, 1)
        self.assertIn(f"gcp-token: EACCES: token endpoint {key['token_uri']} (credentials "
                      f"{forged}): HTTP 400 invalid_grant: Invalid JWT Signature.", err)

    def test_revoked_refresh_token(self):
        with open(self.adc_user) as f:
            user = json.load(f)
        user["refresh_token"] = "1//revoked"
        revoked = self.write("revoked.json", json.dumps(user))
        rc, out, err = self.run_tool(self.env(GOOGLE_APPLICATION_CREDENTIALS=revoked))
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 400 invalid_grant: Token has been expired or revoked.", err)

    def test_malformed_key_file_names_file_and_field(self):
        bad = self.write("bad.json", '{"type": "service_account", "client_email": 7}')
        rc, out, err = self.run_tool(self.env(GOOGLE_APPLICATION_CREDENTIALS=bad))
        self.assertEqual(rc, 2)
        self.assertEqual(err, f'gcp-token: EINVAL: {bad}: field "client_email": expected a string\n')

    # --- 3. gcloud's well-known file ---
    def test_well_known_file_in_home(self):
        env = self.env()
        gcloud = os.path.join(env["HOME"], ".config", "gcloud")
        os.makedirs(gcloud)
        shutil.copy(self.adc_user, os.path.join(gcloud, "application_default_credentials.json"))
        out = self.assert_ok(env, "authorized_user")
        self.assertIn(".config/gcloud/application_default_credentials.json", out["described"])

    def test_well_known_file_in_cloudsdk_config(self):
        cfg = os.path.join(self.tmp, "cloudsdk")
        os.makedirs(cfg, exist_ok=True)
        shutil.copy(self.sa_key, os.path.join(cfg, "application_default_credentials.json"))
        self.assert_ok(self.env(CLOUDSDK_CONFIG=cfg), "service_account")
        # GOOGLE_APPLICATION_CREDENTIALS comes before it.
        self.assert_ok(self.env(CLOUDSDK_CONFIG=cfg, GOOGLE_APPLICATION_CREDENTIALS=self.adc_user),
                       "authorized_user")

    # --- 4. the metadata server ---
    def test_metadata_server(self):
        host = self.emu.cloud_url.split("//", 1)[1]
        env = self.env(GCE_METADATA_HOST=host)
        del env["NO_GCE_CHECK"]
        out = self.assert_ok(env, "metadata", "--calls", "2")
        self.assertEqual(out["token_requests"], "1")
        self.assertEqual(out["described"], f"metadata server {host}")


@unittest.skipUnless(GCP_TOKEN, "GCP_TOKEN (tests/tools/gcp-token) not built")
class ShortLivedTokens(Credentials):
    """Tokens that live 2 s (expires_in 1): refreshed before expiry, without a 401."""
    extra = ("--token-lifetime", "2s")

    def test_refreshed_before_expiry(self):
        out = self.assert_ok(self.env(GOOGLE_APPLICATION_CREDENTIALS=self.sa_key),
                             "service_account", "--calls", "3", "--interval-ms", "900")
        self.assertEqual(out["compute_requests"], "3")
        self.assertEqual(out["token_requests"], "3")


# The inherited tests need not run twice.
for _name in [n for n in dir(Credentials) if n.startswith("test_")]:
    setattr(ShortLivedTokens, _name, None)


if __name__ == "__main__":
    unittest.main()
