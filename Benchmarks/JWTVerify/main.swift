import Crypto
import SluiceCore
import SluiceFeatures
import _CryptoExtras

#if canImport(Glibc)
  import Glibc
#endif

// JWT verifications per second on one core, through Sluice's whole verifier (base64url,
// JSON, claims, signature), cache off: the figure bench/RESULTS.md puts beside
// `openssl speed` for the same algorithms. Run with `swift run -c release JWTVerifyBench`.

func now() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

let nowSeconds: Int64 = WallClock.nowMilliseconds() / 1000
let payload =
  "{\"sub\":\"alice\",\"iss\":\"https://id\",\"aud\":\"api\",\"exp\":\(nowSeconds + 3600),\"iat\":\(nowSeconds),\"role\":\"admin\"}"

func token(_ alg: String, _ sign: ([UInt8]) -> [UInt8]) -> [UInt8] {
  let input =
    Base64URL.encode(Array("{\"alg\":\"\(alg)\",\"kid\":\"k\",\"typ\":\"JWT\"}".utf8)) + "."
    + Base64URL.encode(Array(payload.utf8))
  return Array((input + "." + Base64URL.encode(sign(Array(input.utf8)))).utf8)
}

func measure(_ name: String, _ alg: JWTAlgorithm, _ key: VerificationKey.Material, _ tok: [UInt8], seconds: Double = 3) {
  let keys = KeySet(keys: [VerificationKey(kid: "k", algorithms: [alg], material: key)])
  let policy = JWTPolicy(issuer: "https://id", audiences: ["api"], algorithms: [alg], clockSkewSeconds: 60)
  guard case .valid = JWTVerifier.verify(tok, keys: keys, policy: policy, now: nowSeconds) else {
    fatalError("\(name): token does not verify")
  }
  var count = 0
  let start = now()
  var elapsed = 0.0
  while elapsed < seconds {
    for _ in 0..<100 {
      if case .valid = JWTVerifier.verify(tok, keys: keys, policy: policy, now: nowSeconds) { count += 1 }
    }
    elapsed = now() - start
  }
  print("\(name)\t\(Int(Double(count) / elapsed)) verifications/s")
}

let seconds = Double(CommandLine.arguments.dropFirst().first ?? "3") ?? 3
let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
measure(
  "RS256", .RS256, .rsa(rsa.publicKey),
  token("RS256") { Array(try! rsa.signature(for: SHA256.hash(data: $0), padding: .insecurePKCS1v1_5).rawRepresentation) },
  seconds: seconds)
measure(
  "PS256", .PS256, .rsa(rsa.publicKey),
  token("PS256") { Array(try! rsa.signature(for: SHA256.hash(data: $0), padding: .PSS).rawRepresentation) }, seconds: seconds)
let p256 = P256.Signing.PrivateKey()
measure(
  "ES256", .ES256, .p256(p256.publicKey), token("ES256") { Array(try! p256.signature(for: $0).rawRepresentation) },
  seconds: seconds)
let p384 = P384.Signing.PrivateKey()
measure(
  "ES384", .ES384, .p384(p384.publicKey), token("ES384") { Array(try! p384.signature(for: $0).rawRepresentation) },
  seconds: seconds)
let ed = Curve25519.Signing.PrivateKey()
measure("EdDSA", .EdDSA, .ed25519(ed.publicKey), token("EdDSA") { Array(try! ed.signature(for: $0)) }, seconds: seconds)
let secret = SymmetricKey(size: .bits256)
measure(
  "HS256", .HS256, .hmac(secret),
  token("HS256") { Array(HMAC<SHA256>.authenticationCode(for: $0, using: secret)) }, seconds: seconds)
