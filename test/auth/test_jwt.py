"""OIDC/JWT bearer tokens over a real server: a test RSA key, a JWKS file, forgeries."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://idp.example.org"


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def keys(tmp_path):
    signing = _key()
    jwk = json.loads(RSAAlgorithm.to_jwk(signing.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return signing, path


@pytest.fixture
def jwt_server(keys, make_config, start_server):
    _, path = keys
    config = make_config(
        jwt_issuers=[
            {
                "issuer": ISSUER,
                "jwks_file": str(path),
                "audience": "hatrac",
                "identity_prefix": ISSUER + "/",
                "groups_claim": "groups",
                "group_prefix": "idp:",
            }
        ]
    )
    return start_server(config)


def claims(**overrides) -> dict:
    now = int(time.time())
    values = {"iss": ISSUER, "sub": "u1", "aud": "hatrac", "iat": now, "exp": now + 300}
    values["groups"] = ["lab"]
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def hmac_token(payload: dict, secret: bytes) -> str:
    """The classic algorithm-confusion forgery: HS256 keyed with the RSA public key."""
    import hashlib
    import hmac

    def part(value: dict) -> str:
        return jwt.utils.base64url_encode(json.dumps(value).encode()).decode()

    signed = part({"alg": "HS256", "typ": "JWT", "kid": "k1"}) + "." + part(payload)
    mac = hmac.new(secret, signed.encode(), hashlib.sha256).digest()
    return signed + "." + jwt.utils.base64url_encode(mac).decode()


def _get(server, token: str, path: str = "/authn/session"):
    return requests.get(server.url + path, headers={"Authorization": f"Bearer {token}"})


def test_valid_jwt_maps_identity_and_groups(jwt_server, keys):
    signing, _ = keys
    token = jwt.encode(claims(name="User One"), signing, algorithm="RS256", headers={"kid": "k1"})
    reply = _get(jwt_server, token)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["client"]["id"] == ISSUER + "/u1"
    assert body["client"]["display_name"] == "User One"
    assert {a["id"] for a in body["attributes"]} == {ISSUER + "/u1", "idp:lab"}
    # and the group is a role on the store: create a namespace readable by idp:lab
    ns = f"/hatrac/jwt_{time.time_ns()}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-hatrac-namespace"}
    assert requests.put(jwt_server.url + ns, headers=headers).status_code == 201
    # a key without a kid is accepted while the JWKS has a single key
    token = jwt.encode(claims(), signing, algorithm="RS256")
    assert _get(jwt_server, token).status_code == 200


def test_forged_and_invalid_jwts_are_401(jwt_server, keys):
    signing, path = keys
    other = _key()
    public_pem = signing.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = {
        "alg none": jwt.encode(claims(), None, algorithm="none"),
        "wrong key": jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "k1"}),
        "unknown kid": jwt.encode(claims(), signing, algorithm="RS256", headers={"kid": "k9"}),
        "expired": jwt.encode(
            claims(exp=int(time.time()) - 3600), signing, algorithm="RS256", headers={"kid": "k1"}
        ),
        "wrong issuer": jwt.encode(
            claims(iss="https://evil.example"), signing, algorithm="RS256", headers={"kid": "k1"}
        ),
        "wrong audience": jwt.encode(
            claims(aud="other"), signing, algorithm="RS256", headers={"kid": "k1"}
        ),
        "no exp": jwt.encode(claims(exp=None), signing, algorithm="RS256", headers={"kid": "k1"}),
        "no subject": jwt.encode(
            claims(sub=None), signing, algorithm="RS256", headers={"kid": "k1"}
        ),
        "hmac with public key": hmac_token(claims(), public_pem),
        "garbage": "a.b.c",
        "not base64": "!!!.???.***",
    }
    good = jwt.encode(claims(), signing, algorithm="RS256", headers={"kid": "k1"})
    head, payload, signature = good.split(".")
    tampered_claims = jwt.utils.base64url_encode(json.dumps(claims(sub="admin")).encode()).decode()
    forged["tampered payload"] = f"{head}.{tampered_claims}.{signature}"
    for label, token in forged.items():
        for path_ in ("/authn/session", "/hatrac/"):
            reply = _get(jwt_server, token, path_)
            expected = 404 if path_ == "/authn/session" else 401
            assert reply.status_code == expected, (label, path_, reply.status_code, reply.text)


@pytest.mark.parametrize(
    "entry",
    [
        {"issuer": ISSUER},
        {"issuer": ISSUER, "jwks_file": "/x", "algorithms": ["HS256"]},
        {"issuer": ISSUER, "jwks_file": "/x", "algorithms": ["none"]},
        {"issuer": ISSUER, "jwks_file": "/x", "colour": "blue"},
        "https://idp.example.org",
    ],
)
def test_bad_issuer_settings_are_config_errors(entry):
    from hatrac.config import ConfigError, build_config

    with pytest.raises(ConfigError, match="jwt_issuers"):
        build_config({"jwt_issuers": [entry]})
