"""Bench helper: `mint.py DIR ALG [N]` writes DIR/jwks.json (one key per algorithm) and
prints one token (or N distinct tokens, one per line) signed with ALG's key."""
import json
import sys
import time
import os

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "integration"))
from authkit import KeyPair  # noqa: E402

out, alg = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1
keys = {a: KeyPair(a, "k-" + a) for a in ["RS256", "ES256", "EdDSA"]}
with open(os.path.join(out, "jwks.json"), "w") as f:
    json.dump({"keys": [k.jwk for k in keys.values()]}, f)
now = int(time.time())
for i in range(n):
    print(keys[alg].token({"sub": f"user-{i}", "iss": "https://id.bench", "aud": "api", "iat": now, "exp": now + 7200}))
