import Crypto
import SluiceCore
import XCTest
import _CryptoExtras

@testable import SluiceFeatures

/// Tokens made here with swift-crypto's signing keys; interop with PyJWT is covered by the
/// integration suite (tests/integration/test_auth.py).
final class JWTVerifierTests: XCTestCase {
  let now: Int64 = 1_800_000_000

  func b64(_ s: String) -> String { Base64URL.encode(Array(s.utf8)) }

  func payload(_ extra: String = "") -> String {
    "{\"sub\":\"alice\",\"iss\":\"https://id\",\"aud\":\"api\",\"exp\":\(now + 300),\"iat\":\(now),\"role\":\"admin\"\(extra)}"
  }

  func policy(_ algs: Set<JWTAlgorithm>) -> JWTPolicy {
    JWTPolicy(
      issuer: "https://id", audiences: ["api"], algorithms: algs, clockSkewSeconds: 60,
      forwardClaims: [("sub", "x-user-id"), ("role", "x-role")])
  }

  func token(header: String, payload: String, sign: ([UInt8]) -> [UInt8]) -> [UInt8] {
    let input = b64(header) + "." + b64(payload)
    return Array((input + "." + Base64URL.encode(sign(Array(input.utf8)))).utf8)
  }

  func es256() -> (P256.Signing.PrivateKey, KeySet) {
    let key = P256.Signing.PrivateKey()
    return (key, KeySet(keys: [VerificationKey(kid: "e1", algorithms: [.ES256], material: .p256(key.publicKey))]))
  }

  func es256Token(_ key: P256.Signing.PrivateKey, payload: String? = nil, header: String? = nil) -> [UInt8] {
    token(header: header ?? "{\"alg\":\"ES256\",\"kid\":\"e1\"}", payload: payload ?? self.payload()) { input in
      Array(try! key.signature(for: input).rawRepresentation)
    }
  }

  func assertValid(_ verdict: JWTVerdict, file: StaticString = #filePath, line: UInt = #line) {
    guard case .valid = verdict else { return XCTFail("expected valid, got \(verdict)", file: file, line: line) }
  }

  func assertInvalid(_ verdict: JWTVerdict, _ reason: AuthFailure, file: StaticString = #filePath, line: UInt = #line) {
    guard case .invalid(let got) = verdict, got == reason else {
      return XCTFail("expected \(reason), got \(verdict)", file: file, line: line)
    }
  }

  func testES256AndForwardedClaims() {
    let (key, keys) = es256()
    let verdict = JWTVerifier.verify(es256Token(key), keys: keys, policy: policy([.ES256]), now: now)
    guard case .valid(let claims) = verdict else { return XCTFail("\(verdict)") }
    XCTAssertEqual(claims.subject, "alice")
    XCTAssertEqual(claims.forwardedHeaders, [HeaderPair(name: "x-user-id", value: "alice"), HeaderPair(name: "x-role", value: "admin")])
    XCTAssertEqual(claims.expiresAt, now + 300)
  }

  func testEdDSAHmacRSAAndPSS() throws {
    let ed = Curve25519.Signing.PrivateKey()
    let edKeys = KeySet(keys: [VerificationKey(kid: "d", algorithms: [.EdDSA], material: .ed25519(ed.publicKey))])
    assertValid(
      JWTVerifier.verify(
        token(header: "{\"alg\":\"EdDSA\"}", payload: payload()) { Array(try! ed.signature(for: $0)) }, keys: edKeys,
        policy: policy([.EdDSA]), now: now))

    let secret = "0123456789abcdef0123456789abcdef"
    let hs = KeySet(keys: [.secret(secret, algorithms: [.HS384])])
    let mac = token(header: "{\"alg\":\"HS384\"}", payload: payload()) {
      Array(HMAC<SHA384>.authenticationCode(for: $0, using: SymmetricKey(data: Array(secret.utf8))))
    }
    assertValid(JWTVerifier.verify(mac, keys: hs, policy: policy([.HS384]), now: now))
    // The secret is pinned to HS384: an HS256 provider list refuses it.
    assertInvalid(JWTVerifier.verify(mac, keys: hs, policy: policy([.HS256]), now: now), .badAlgorithm)

    let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
    let rsKeys = KeySet(keys: [VerificationKey(kid: "r", algorithms: [.RS256, .PS256], material: .rsa(rsa.publicKey))])
    let rs = token(header: "{\"alg\":\"RS256\",\"kid\":\"r\"}", payload: payload()) {
      Array(try! rsa.signature(for: SHA256.hash(data: $0), padding: .insecurePKCS1v1_5).rawRepresentation)
    }
    assertValid(JWTVerifier.verify(rs, keys: rsKeys, policy: policy([.RS256, .PS256]), now: now))
    let ps = token(header: "{\"alg\":\"PS256\",\"kid\":\"r\"}", payload: payload()) {
      Array(try! rsa.signature(for: SHA256.hash(data: $0), padding: .PSS).rawRepresentation)
    }
    assertValid(JWTVerifier.verify(ps, keys: rsKeys, policy: policy([.RS256, .PS256]), now: now))
    // A PKCS#1 signature presented as PS256 fails.
    let swapped = token(header: "{\"alg\":\"PS256\",\"kid\":\"r\"}", payload: payload()) {
      Array(try! rsa.signature(for: SHA256.hash(data: $0), padding: .insecurePKCS1v1_5).rawRepresentation)
    }
    assertInvalid(JWTVerifier.verify(swapped, keys: rsKeys, policy: policy([.RS256, .PS256]), now: now), .badSignature)
  }

  func testKeyConfusionAndNone() {
    let (key, keys) = es256()
    // HS256 with the public key's bytes as the secret: the ES key never verifies an HS token.
    let pub = Array(key.publicKey.x963Representation)
    let confused = token(header: "{\"alg\":\"HS256\",\"kid\":\"e1\"}", payload: payload()) {
      Array(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: pub)))
    }
    assertInvalid(JWTVerifier.verify(confused, keys: keys, policy: policy([.ES256, .HS256]), now: now), .badAlgorithm)
    for none in ["none", "None", "NONE", "nOnE", ""] {
      let t = Array((b64("{\"alg\":\"\(none)\",\"kid\":\"e1\"}") + "." + b64(payload()) + ".").utf8)
      assertInvalid(JWTVerifier.verify(t, keys: keys, policy: policy([.ES256]), now: now), .badAlgorithm)
    }
  }

  func testKidRules() {
    let (key, keys) = es256()
    let other = P256.Signing.PrivateKey()
    let two = KeySet(keys: keys.keys + [VerificationKey(kid: "e2", algorithms: [.ES256], material: .p256(other.publicKey))])
    guard
      case .unknownKID = JWTVerifier.verify(
        es256Token(key, header: "{\"alg\":\"ES256\",\"kid\":\"zz\"}"), keys: keys, policy: policy([.ES256]), now: now)
    else { return XCTFail("unknown kid must ask for a refresh") }
    // Without a kid: fine with one key, refused with several.
    assertValid(
      JWTVerifier.verify(es256Token(key, header: "{\"alg\":\"ES256\"}"), keys: keys, policy: policy([.ES256]), now: now))
    assertInvalid(
      JWTVerifier.verify(es256Token(key, header: "{\"alg\":\"ES256\"}"), keys: two, policy: policy([.ES256]), now: now),
      .unknownKID)
    // The right kid with another key's signature.
    assertInvalid(
      JWTVerifier.verify(es256Token(other, header: "{\"alg\":\"ES256\",\"kid\":\"e1\"}"), keys: two, policy: policy([.ES256]), now: now),
      .badSignature)
    assertInvalid(
      JWTVerifier.verify(es256Token(key, header: "{\"alg\":\"ES256\",\"kid\":5}"), keys: keys, policy: policy([.ES256]), now: now),
      .malformed)
  }

  func testCritAndECDSAScalars() {
    let (key, keys) = es256()
    assertInvalid(
      JWTVerifier.verify(
        es256Token(key, header: "{\"alg\":\"ES256\",\"kid\":\"e1\",\"crit\":[\"b64\"],\"b64\":true}"), keys: keys,
        policy: policy([.ES256]), now: now), .malformed)
    let input = b64("{\"alg\":\"ES256\",\"kid\":\"e1\"}") + "." + b64(payload())
    let order = JWTVerifier.p256Order
    for sig in [
      [UInt8](repeating: 0, count: 64), order + [UInt8](repeating: 1, count: 32), [UInt8](repeating: 1, count: 32) + order,
      [UInt8](repeating: 0xFF, count: 64), [UInt8](repeating: 1, count: 63),
    ] {
      let t = Array((input + "." + Base64URL.encode(sig)).utf8)
      assertInvalid(JWTVerifier.verify(t, keys: keys, policy: policy([.ES256]), now: now), .badSignature)
    }
    XCTAssertFalse(JWTVerifier.scalarsInRange([UInt8](repeating: 0, count: 32) + [1] + [UInt8](repeating: 0, count: 31), order: order))
    XCTAssertTrue(
      JWTVerifier.scalarsInRange([1] + [UInt8](repeating: 0, count: 31) + [1] + [UInt8](repeating: 0, count: 31), order: order))
  }

  func testClaims() {
    let (key, keys) = es256()
    func check(_ extraPayload: String, _ reason: AuthFailure?) {
      let text = "{\"iss\":\"https://id\",\"aud\":\"api\"\(extraPayload)}"
      let verdict = JWTVerifier.verify(es256Token(key, payload: text), keys: keys, policy: policy([.ES256]), now: now)
      if let reason { assertInvalid(verdict, reason) } else { assertValid(verdict) }
    }
    check(",\"exp\":\(now - 61)", .expired)
    check(",\"exp\":\(now - 59)", nil)  // within clock skew
    check(",\"exp\":\"\(now + 10)\"", .invalidClaims)
    check(",\"exp\":1.8e9", nil)
    check(",\"nbf\":\(now + 61)", .notYetValid)
    check(",\"nbf\":\(now + 59)", nil)
    check(",\"iat\":\(now + 3600)", .notYetValid)
    check(",\"iat\":true", .invalidClaims)
    check(",\"sub\":[1]", .invalidClaims)
    let noAud = "{\"iss\":\"https://id\"}"
    assertInvalid(JWTVerifier.verify(es256Token(key, payload: noAud), keys: keys, policy: policy([.ES256]), now: now), .wrongAudience)
    let list = "{\"iss\":\"https://id\",\"aud\":[\"x\",\"api\"]}"
    assertValid(JWTVerifier.verify(es256Token(key, payload: list), keys: keys, policy: policy([.ES256]), now: now))
    let badList = "{\"iss\":\"https://id\",\"aud\":[\"x\",7]}"
    assertInvalid(JWTVerifier.verify(es256Token(key, payload: badList), keys: keys, policy: policy([.ES256]), now: now), .invalidClaims)
    let wrongIss = "{\"iss\":\"https://id/\",\"aud\":\"api\"}"
    assertInvalid(JWTVerifier.verify(es256Token(key, payload: wrongIss), keys: keys, policy: policy([.ES256]), now: now), .wrongIssuer)
  }

  func testMalformedInputNeverTraps() {
    let (_, keys) = es256()
    let cases: [String] = [
      "", ".", "..", "a.b", "a.b.c.d", "====.====.====", "eyJ.eyJ.", b64("{") + "." + b64("{}") + ".",
      b64("[]") + "." + b64("{}") + ".", b64("{\"alg\":\"ES256\"}") + "." + b64("[" + String(repeating: "[", count: 100)) + ".",
      b64("{\"alg\":\"ES256\",\"alg\":\"none\"}") + "." + b64("{}") + ".", String(repeating: "a", count: 9000),
      b64("{\"alg\":\"ES256\"}") + "." + Base64URL.encode([0xFF, 0xFE]) + ".",
    ]
    for text in cases {
      let verdict = JWTVerifier.verify(Array(text.utf8), keys: keys, policy: policy([.ES256]), now: now)
      guard case .invalid = verdict else { return XCTFail("\(text.prefix(40)) → \(verdict)") }
    }
  }

  func testBase64URLIsStrict() {
    XCTAssertEqual(Base64URL.decode(Array("aGk".utf8)), Array("hi".utf8))
    XCTAssertNil(Base64URL.decode(Array("aGk=".utf8)))
    XCTAssertNil(Base64URL.decode(Array("aGl".utf8)))  // non-zero trailing bits
    XCTAssertNil(Base64URL.decode(Array("a+/=".utf8)))
    XCTAssertNil(Base64URL.decode(Array("a".utf8)))
    for n in 0..<40 {
      let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
      XCTAssertEqual(Base64URL.decode(Array(Base64URL.encode(bytes).utf8)), bytes)
    }
  }

  func testJSONParser() {
    XCTAssertEqual(
      JSONParser.parse(Array("{\"a\":[1,-2.5e3,true,null,\"\\u00e9\\ud83d\\ude00\"]}".utf8)),
      .success(
        .object([
          ("a", .array([.int(1), .double(-2500), .bool(true), .null, .string("é😀")]))
        ])))
    for bad in [
      "{\"a\":1,\"a\":2}", "[1,]", "{\"a\"}", "01", "1.", "\"\\ud800\"", "\"\u{1}\"", "[1] x", "{'a':1}", "nul",
      "\"\\x\"", "1e", "-",
    ] {
      guard case .failure = JSONParser.parse(Array(bad.utf8)) else { return XCTFail(bad) }
    }
    XCTAssertEqual(JSONParser.parse([0x22, 0xC0, 0xAE, 0x22]), .failure(.invalidUTF8))
    XCTAssertEqual(
      JSONParser.parse(Array((String(repeating: "[", count: 33) + String(repeating: "]", count: 33)).utf8)), .failure(.tooDeep))
    if case .failure = JSONParser.parse(Array((String(repeating: "[", count: 32) + String(repeating: "]", count: 32)).utf8)) {
      XCTFail("32 levels are allowed")
    }
  }
}
