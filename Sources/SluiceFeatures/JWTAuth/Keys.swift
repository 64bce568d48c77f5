import Crypto
import SluiceCore
import _CryptoExtras

/// JWS algorithms Sluice verifies. `none` is not a case, so no spelling of it parses.
public enum JWTAlgorithm: String, CaseIterable, Sendable, Hashable {
  case HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA

  public enum Family: Sendable { case hmac, rsa, p256, p384, ed25519 }

  public var family: Family {
    switch self {
    case .HS256, .HS384, .HS512: .hmac
    case .RS256, .RS384, .RS512, .PS256, .PS384, .PS512: .rsa
    case .ES256: .p256
    case .ES384: .p384
    case .EdDSA: .ed25519
    }
  }
}

/// One key, pinned to the algorithms it may verify. The token's `alg` header only selects among
/// those; it never decides what kind of key is used (no RS/HS key confusion).
public struct VerificationKey: Sendable {
  public enum Material: Sendable {
    case hmac(SymmetricKey)
    case rsa(_RSA.Signing.PublicKey)
    case p256(P256.Signing.PublicKey)
    case p384(P384.Signing.PublicKey)
    case ed25519(Curve25519.Signing.PublicKey)
  }

  public let kid: String?
  public let algorithms: Set<JWTAlgorithm>
  public let material: Material

  public init(kid: String?, algorithms: Set<JWTAlgorithm>, material: Material) {
    self.kid = kid
    self.algorithms = algorithms
    self.material = material
  }

  /// A shared secret for the provider's HS* algorithms.
  public static func secret(_ secret: String, algorithms: Set<JWTAlgorithm>) -> VerificationKey {
    VerificationKey(
      kid: nil, algorithms: algorithms.filter { $0.family == .hmac }, material: .hmac(SymmetricKey(data: Array(secret.utf8))))
  }
}

/// The keys one provider verifies with, from one JWKS document (or one secret).
public struct KeySet: Sendable {
  public var keys: [VerificationKey]
  public init(keys: [VerificationKey]) { self.keys = keys }

  public var kids: [String] { keys.compactMap(\.kid) }
}

public enum JWKSError: Error, Sendable, Equatable, CustomStringConvertible {
  case notJSON(String)
  case noKeysArray
  case noUsableKeys(skipped: [String])

  public var description: String {
    switch self {
    case .notJSON(let why): "the key set is not valid JSON (\(why))"
    case .noKeysArray: "the key set has no \"keys\" array"
    case .noUsableKeys(let skipped):
      "the key set has no key for the provider's algorithms" + (skipped.isEmpty ? "" : ": " + skipped.joined(separator: "; "))
    }
  }
}

/// RFC 7517 key sets, parsed from untrusted bytes (a key server's answer). Pure: no I/O, no
/// traps on any input (`Fuzz/FuzzJWT`). Keys the provider cannot use (another `use`, an
/// algorithm it does not allow, a malformed key) are skipped with a reason, so one odd key in
/// a rotating set does not take the others down; a set with no usable key is an error, and the
/// caller keeps its last good keys.
public enum JWKSParser {
  /// Key sets larger than this are refused before parsing.
  public static let maxBytes = 1 << 20

  public static func parse(_ bytes: some Collection<UInt8>, allowed: Set<JWTAlgorithm>) -> Result<KeySet, JWKSError> {
    guard bytes.count <= maxBytes else { return .failure(.notJSON("larger than 1 MiB")) }
    let document: JSONValue
    switch JSONParser.parse(bytes) {
    case .success(let v): document = v
    case .failure(let f): return .failure(.notJSON("\(f)"))
    }
    guard case .array(let items)? = document["keys"] else { return .failure(.noKeysArray) }
    var keys: [VerificationKey] = []
    var skipped: [String] = []
    for (index, item) in items.prefix(256).enumerated() {
      switch key(item, allowed: allowed) {
      case .success(let k): keys.append(k)
      case .failure(let why): skipped.append("key \(index): \(why.text)")
      }
    }
    if keys.isEmpty { return .failure(.noUsableKeys(skipped: skipped)) }
    return .success(KeySet(keys: keys))
  }

  struct Skip: Error { let text: String }

  static func bytes(_ value: JSONValue?, _ name: String) -> Result<[UInt8], Skip> {
    guard let text = value?.stringValue else { return .failure(Skip(text: "'\(name)' missing")) }
    guard let decoded = Base64URL.decode(Array(text.utf8)), !decoded.isEmpty else {
      return .failure(Skip(text: "'\(name)' is not base64url"))
    }
    return .success(decoded)
  }

  static func key(_ jwk: JSONValue, allowed: Set<JWTAlgorithm>) -> Result<VerificationKey, Skip> {
    guard case .object = jwk else { return .failure(Skip(text: "not an object")) }
    if let use = jwk["use"] {
      guard use.stringValue == "sig" else { return .failure(Skip(text: "use is not 'sig'")) }
    }
    var kid: String?
    if let k = jwk["kid"] {
      guard let s = k.stringValue else { return .failure(Skip(text: "kid is not a string")) }
      kid = s
    }
    guard let kty = jwk["kty"]?.stringValue else { return .failure(Skip(text: "kty missing")) }
    var pinned: JWTAlgorithm?
    if let a = jwk["alg"] {
      guard let text = a.stringValue, let alg = JWTAlgorithm(rawValue: text) else {
        return .failure(Skip(text: "alg '\(a.stringValue ?? "?")' is not supported"))
      }
      pinned = alg
    }
    func algorithms(_ family: JWTAlgorithm.Family) -> Result<Set<JWTAlgorithm>, Skip> {
      let candidates: Set<JWTAlgorithm> = pinned.map { [$0] } ?? Set(JWTAlgorithm.allCases.filter { $0.family == family })
      let out = candidates.filter { $0.family == family && allowed.contains($0) }
      if out.isEmpty { return .failure(Skip(text: "its algorithm is not among the provider's algorithms")) }
      return .success(out)
    }
    do {
      switch kty {
      case "RSA":
        let algs = try algorithms(.rsa).get()
        let n = try bytes(jwk["n"], "n").get()
        let e = try bytes(jwk["e"], "e").get()
        guard n.count >= 256 else { return .failure(Skip(text: "RSA keys under 2048 bits are refused")) }
        guard n.count <= 1024, e.count <= 8 else { return .failure(Skip(text: "RSA key too large")) }
        let key = try _RSA.Signing.PublicKey(n: n, e: e)
        return .success(VerificationKey(kid: kid, algorithms: algs, material: .rsa(key)))
      case "EC":
        let crv = jwk["crv"]?.stringValue
        let x = try bytes(jwk["x"], "x").get()
        let y = try bytes(jwk["y"], "y").get()
        switch crv {
        case "P-256":
          let algs = try algorithms(.p256).get()
          guard x.count == 32, y.count == 32 else { return .failure(Skip(text: "P-256 coordinates must be 32 bytes")) }
          let key = try P256.Signing.PublicKey(rawRepresentation: x + y)
          return .success(VerificationKey(kid: kid, algorithms: algs, material: .p256(key)))
        case "P-384":
          let algs = try algorithms(.p384).get()
          guard x.count == 48, y.count == 48 else { return .failure(Skip(text: "P-384 coordinates must be 48 bytes")) }
          let key = try P384.Signing.PublicKey(rawRepresentation: x + y)
          return .success(VerificationKey(kid: kid, algorithms: algs, material: .p384(key)))
        default:
          return .failure(Skip(text: "curve '\(crv ?? "?")' is not supported"))
        }
      case "OKP":
        guard jwk["crv"]?.stringValue == "Ed25519" else { return .failure(Skip(text: "only the Ed25519 curve is supported")) }
        let algs = try algorithms(.ed25519).get()
        let x = try bytes(jwk["x"], "x").get()
        guard x.count == 32 else { return .failure(Skip(text: "Ed25519 keys are 32 bytes")) }
        let key = try Curve25519.Signing.PublicKey(rawRepresentation: x)
        return .success(VerificationKey(kid: kid, algorithms: algs, material: .ed25519(key)))
      case "oct":
        let algs = try algorithms(.hmac).get()
        let k = try bytes(jwk["k"], "k").get()
        guard k.count >= 32 else { return .failure(Skip(text: "HMAC keys under 256 bits are refused")) }
        return .success(VerificationKey(kid: kid, algorithms: algs, material: .hmac(SymmetricKey(data: k))))
      default:
        return .failure(Skip(text: "kty '\(kty)' is not supported"))
      }
    } catch let skip as Skip {
      return .failure(skip)
    } catch {
      return .failure(Skip(text: "the key material is invalid"))
    }
  }
}
