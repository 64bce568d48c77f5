import Crypto
import SluiceCore
import SluiceFeatures

/// libFuzzer entry point for the bytes a client or a key server controls on the auth path:
/// the JWT decoder and verifier (segments, base64url, JSON), the JWKS parser, and credential
/// extraction from `Authorization`, cookies and the query. No input may trap.
enum Fixture {
  static let policy = JWTPolicy(
    issuer: "https://id", audiences: ["api"], algorithms: Set(JWTAlgorithm.allCases), clockSkewSeconds: 60,
    forwardClaims: [("sub", "x-user-id"), ("n", "x-n")])

  /// Made per input: LeakSanitizer counts keys held by a Swift global as leaked at exit.
  /// Fixed public keys (P-256's generator point; an Ed25519 point): no key generation.
  static func keys() -> KeySet {
    let p256 = hex(
      "6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"
        + "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5")
    let ed = hex("D75A980182B10AB7D54BFED3C964073A0EE172F3DAA62325AF021A68F707511A")
    return KeySet(keys: [
      .secret("0123456789abcdef0123456789abcdef", algorithms: [.HS256]),
      VerificationKey(kid: "e", algorithms: [.ES256], material: .p256(try! P256.Signing.PublicKey(rawRepresentation: p256))),
      VerificationKey(
        kid: "d", algorithms: [.EdDSA], material: .ed25519(try! Curve25519.Signing.PublicKey(rawRepresentation: ed))),
    ])
  }

  static func hex(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = text.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
      out.append(UInt8(PathNormalizer.hexValue(a)! << 4 | PathNormalizer.hexValue(b)!))
    }
    return out
  }
}

struct FuzzRequest: CredentialSource {
  let text: String
  func headerValues(_ name: String) -> [String] { [text] }
  var query: String? { text }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWT(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  _ = JWTVerifier.verify(bytes, keys: Fixture.keys(), policy: Fixture.policy, now: 1_800_000_000)
  _ = JWKSParser.parse(bytes, allowed: Set(JWTAlgorithm.allCases))
  _ = JSONParser.parse(bytes)
  _ = Base64URL.decode(bytes)
  let text = String(decoding: bytes, as: UTF8.self)
  let request = FuzzRequest(text: text)
  _ = Credentials.extract([.header("authorization"), .query("access_token"), .cookie("session")], from: request)
  _ = Credentials.bearer(text)
  _ = Credentials.queryParameter("access_token", in: text)
  _ = Credentials.removingQueryParameter("access_token", from: text)
  _ = TokenSource.parse(text)
  _ = HTTPURL.parse(text)
  return 0
}

#if SLUICE_FUZZ
  // SwiftPM links an executable's entry point as `FuzzJWT_main`; hand control to libFuzzer's driver.
  @_silgen_name("LLVMFuzzerRunDriver")
  func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
  ) -> CInt

  @_cdecl("FuzzJWT_main")
  public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var count = argc
    var vector: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&count, &vector) { fuzzJWT($0, $1) }
  }
#else
  @main struct Replay {
    static func main() {
      for path in CommandLine.arguments.dropFirst() {
        guard let text = ProcessFiles.read(path) else { continue }
        var bytes = Array(text.utf8)
        _ = fuzzJWT(&bytes, bytes.count)
      }
    }
  }
#endif
