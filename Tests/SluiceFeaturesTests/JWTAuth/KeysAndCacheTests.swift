import Crypto
import SluiceCore
import XCTest
import _CryptoExtras

@testable import SluiceFeatures

final class KeysAndCacheTests: XCTestCase {
  func jwk(_ pairs: [String: String]) -> String {
    "{" + pairs.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",") + "}"
  }

  func testJWKSParserPinsAndSkips() throws {
    let p256 = P256.Signing.PrivateKey().publicKey.rawRepresentation
    let x = Base64URL.encode(Array(p256.prefix(32)))
    let y = Base64URL.encode(Array(p256.suffix(32)))
    let ed = Base64URL.encode(Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation))
    let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048).publicKey
    // n and e from the PKCS#1 DER of the public key: SEQUENCE { INTEGER n, INTEGER e }
    let der = Array(rsa.pkcs1DERRepresentation)
    let (n, e) = Self.rsaNE(der)
    let doc =
      "{\"keys\":["
      + [
        jwk(["kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "ec"]),
        jwk(["kty": "OKP", "crv": "Ed25519", "x": ed, "kid": "ed", "alg": "EdDSA"]),
        jwk(["kty": "RSA", "n": Base64URL.encode(n), "e": Base64URL.encode(e), "kid": "rsa", "alg": "PS256"]),
        jwk(["kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"]),
        jwk(["kty": "EC", "crv": "P-521", "x": x, "y": y, "kid": "p521"]),
        jwk(["kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "enc", "use": "enc"]),
        jwk(["kty": "oct", "k": "c2hvcnQ", "kid": "short-hmac"]),
        "42",
      ].joined(separator: ",") + "]}"
    guard case .success(let set) = JWKSParser.parse(Array(doc.utf8), allowed: Set(JWTAlgorithm.allCases)) else {
      return XCTFail("parse failed")
    }
    XCTAssertEqual(set.kids, ["ec", "ed", "rsa"])
    XCTAssertEqual(set.keys[0].algorithms, [.ES256])
    XCTAssertEqual(set.keys[2].algorithms, [.PS256])  // pinned by its alg
    // Only RS256 allowed: the PS256-pinned key is skipped, the others too → no usable keys.
    guard case .failure(.noUsableKeys(let skipped)) = JWKSParser.parse(Array(doc.utf8), allowed: [.RS256]) else {
      return XCTFail("expected no usable keys")
    }
    XCTAssertEqual(skipped.count, 8)
    XCTAssertEqual(JWKSParser.parse(Array("{}".utf8), allowed: [.ES256]).failureValue, .noKeysArray)
    XCTAssertNotNil(JWKSParser.parse(Array("{\"keys\":".utf8), allowed: [.ES256]).failureValue)
  }

  /// Reads n and e out of a PKCS#1 RSAPublicKey DER (test helper).
  static func rsaNE(_ der: [UInt8]) -> ([UInt8], [UInt8]) {
    var i = 0
    func length() -> Int {
      let first = Int(der[i])
      i += 1
      if first < 0x80 { return first }
      var n = 0
      for _ in 0..<(first & 0x7F) {
        n = n << 8 | Int(der[i])
        i += 1
      }
      return n
    }
    i += 1  // SEQUENCE
    _ = length()
    i += 1  // INTEGER
    var nLen = length()
    var n = Array(der[i..<(i + nLen)])
    i += nLen
    if n.first == 0 {
      n.removeFirst()
      nLen -= 1
    }
    i += 1
    let eLen = length()
    return (n, Array(der[i..<(i + eLen)]))
  }

  func testTokenCacheBoundExpiryAndVersion() {
    let cache = TokenCache(capacity: 3)
    let claims = VerifiedClaims(subject: "a", payload: .object([]), expiresAt: 1_000, forwardedHeaders: [])
    var keys: [TokenCache.Key] = []
    let tokens = (0..<5).map { Array("token-\($0)".utf8) }
    for token in tokens {
      let key = TokenCache.key(provider: "p", token: token)
      keys.append(key)
      cache.insert(key, token: token, claims: claims, now: 900, clockSkew: 60, keysVersion: 1)
    }
    XCTAssertEqual(cache.count, 3)  // bounded, first in first out
    XCTAssertNil(cache.lookup(keys[0], token: tokens[0], now: 900, keysVersion: 1))
    XCTAssertNotNil(cache.lookup(keys[4], token: tokens[4], now: 900, keysVersion: 1))
    // The same key with other bytes (a forged collision) is a miss: a hit needs the exact bytes.
    XCTAssertNil(cache.lookup(keys[4], token: Array("token-X".utf8), now: 900, keysVersion: 1))
    XCTAssertNotNil(cache.lookup(keys[4], token: tokens[4], now: 1_059, keysVersion: 1))  // exp + skew
    XCTAssertNil(cache.lookup(keys[4], token: tokens[4], now: 1_060, keysVersion: 1))
    XCTAssertNil(cache.lookup(keys[3], token: tokens[3], now: 900, keysVersion: 2))  // keys changed
    XCTAssertNotEqual(TokenCache.key(provider: "p", token: [1]), TokenCache.key(provider: "q", token: [1]))
    // An already expired verdict is not cached.
    let old = VerifiedClaims(subject: nil, payload: .null, expiresAt: 10, forwardedHeaders: [])
    let k = TokenCache.key(provider: "p", token: [9])
    cache.insert(k, token: [9], claims: old, now: 900, clockSkew: 60, keysVersion: 1)
    XCTAssertNil(cache.lookup(k, token: [9], now: 900, keysVersion: 1))
  }

  func testKeyStoreVersionsAndDeny() {
    let store = KeyStore(keys: nil, denyWhenStale: true)
    XCTAssertEqual(store.current().availability, .waiting)
    store.install(KeySet(keys: [.secret("0123456789abcdef0123456789abcdef", algorithms: [.HS256])]))
    let v1 = store.version
    XCTAssertEqual(store.current().availability, .ready)
    store.refreshFailed("down")
    XCTAssertEqual(store.current().availability, .unavailable)
    XCTAssertNotEqual(store.version, v1)  // cached verdicts stop admitting
    store.install(KeySet(keys: [.secret("0123456789abcdef0123456789abcdef", algorithms: [.HS256])]))
    XCTAssertEqual(store.current().availability, .ready)
  }

  struct Request: CredentialSource {
    var headers: [String: [String]] = [:]
    var query: String?
    func headerValues(_ name: String) -> [String] { headers[name] ?? [] }
  }

  func testCredentialExtraction() {
    XCTAssertEqual(Credentials.bearer("Bearer abc.def.ghi"), "abc.def.ghi")
    XCTAssertEqual(Credentials.bearer("bEaReR   abc"), "abc")
    XCTAssertNil(Credentials.bearer("Basic abc"))
    XCTAssertNil(Credentials.bearer("Bearer"))
    XCTAssertNil(Credentials.bearer("Bearerabc"))
    XCTAssertEqual(Credentials.bearer("Bearer abc=="), "abc==")
    // Bytes outside the token alphabet are left to the strict JWT decoder (→ malformed).
    XCTAssertEqual(Credentials.bearer("Bearer a b"), "a b")
    let sources: [TokenSource] = [.header("authorization"), .query("access_token"), .cookie("session")]
    var r = Request(headers: ["cookie": ["a=1; session=tok; b=2"]], query: "x=1&access_token=q%2Etok")
    XCTAssertEqual(Credentials.extract(sources, from: r)?.1, "q.tok")
    r.query = nil
    XCTAssertEqual(Credentials.extract(sources, from: r)?.1, "tok")
    r.headers["authorization"] = ["Bearer h", "Bearer i"]
    XCTAssertEqual(Credentials.extract(sources, from: r)?.1, "")  // two copies: ambiguous
    XCTAssertEqual(Credentials.removingQueryParameter("access_token", from: "a=1&access_token=x&b=2"), "a=1&b=2")
    XCTAssertNil(Credentials.removingQueryParameter("access_token", from: "access_token=x"))
    XCTAssertEqual(TokenSource.parse("header:X-Token"), .header("x-token"))
    XCTAssertNil(TokenSource.parse("body:x"))
    XCTAssertNil(TokenSource.parse("header:"))
  }
}

extension Result {
  var failureValue: Failure? {
    if case .failure(let f) = self { return f }
    return nil
  }
}
