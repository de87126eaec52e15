#!/bin/sh
# TEST-ONLY keys for the bearer-token tests (api/src/tokens.rs, tests/tests/tokens.rs). Never
# configure them anywhere else: their private halves are public, here. Regenerate with
# `sh tests/keys/generate.sh` (needs openssl and python3); every test reads them from this folder.
set -eu
cd "$(dirname "$0")"
for name in rsa-1 rsa-2; do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $name.pem 2>/dev/null
done
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec-1.pem
openssl genpkey -algorithm ED25519 -out ed-1.pem
for name in rsa-1 rsa-2 ec-1 ed-1; do
    openssl pkey -in $name.pem -pubout -out $name.pub.pem
done
# jwks.json: the public halves of rsa-2 (RS256), ec-1 (ES256) and ed-1 (EdDSA), kid = file name.
python3 - <<'PY'
import base64, json, subprocess

def der(name):
    return subprocess.run(["openssl", "pkey", "-pubin", "-in", f"{name}.pub.pem", "-outform",
                           "DER"], check=True, capture_output=True).stdout

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def rsa(name):
    text = subprocess.run(["openssl", "rsa", "-pubin", "-in", f"{name}.pub.pem", "-noout",
                           "-modulus"], check=True, capture_output=True, text=True).stdout
    n = bytes.fromhex(text.strip().split("=", 1)[1])
    return {"kty": "RSA", "kid": name, "alg": "RS256", "use": "sig", "n": b64(n), "e": "AQAB"}

point = der("ec-1")[-64:]  # SubjectPublicKeyInfo ends with the uncompressed point's x and y
ed = der("ed-1")[-32:]
keys = [
    rsa("rsa-2"),
    {"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64(point[:32]), "y": b64(point[32:])},
    {"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "alg": "EdDSA", "x": b64(ed)},
]
json.dump({"keys": keys}, open("jwks.json", "w"), indent=2)
PY
