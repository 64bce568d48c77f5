import Crypto
import SluiceCore
import _CryptoExtras

/// Why a credential was refused: the `reason` label of `sluice_auth_failures_total`, a small
/// fixed set so the metric's series stay bounded.
public enum AuthFailure: String, Error, Sendable, CaseIterable {
  case missing
  case malformed
  case tooLarge = "too_large"
  case badAlgorithm = "bad_algorithm"
  case unknownKID = "unknown_kid"
  case badSignature = "bad_signature"
  case expired
  case notYetValid = "not_yet_valid"
  case wrongIssuer = "wrong_issuer"
  case wrongAudience = "wrong_audience"
  case invalidClaims = "invalid_claims"
  case invalidKey = "invalid_key"
  case keysUnavailable = "keys_unavailable"
  /// The token's `jti` is on the revocation list.
  case revoked
  /// The revocation list could not be read (`on_store_error: deny`: 503).
  case revocationUnavailable = "revocation_unavailable"

  /// The `error_description` of the 401 (RFC 6750 §3): short, fixed, never the token.
  public var description: String {
    switch self {
    case .missing: "no credentials"
    case .malformed: "the token is malformed"
    case .tooLarge: "the token is too large"
    case .badAlgorithm: "the token's algorithm is not accepted"
    case .unknownKID: "the token's key is not known"
    case .badSignature: "the token's signature is invalid"
    case .expired: "the token has expired"
    case .notYetValid: "the token is not valid yet"
    case .wrongIssuer: "the token's issuer is not accepted"
    case .wrongAudience: "the token's audience is not accepted"
    case .invalidClaims: "the token's claims are invalid"
    case .invalidKey: "the API key is not valid"
    case .keysUnavailable: "the signing keys are not available"
    case .revoked: "the token has been revoked"
    case .revocationUnavailable: "the revocation list is not reachable"
    }
  }
}

/// What a provider checks beyond the signature: the registered claims (RFC 7519 §4.1), with
/// the configured clock skew, and which claims go upstream as headers.
public struct JWTPolicy: Sendable {
  public var issuer: String?
  public var audiences: [String]
  public var algorithms: Set<JWTAlgorithm>
  public var clockSkewSeconds: Int64
  /// (claim, header name), header names lower-case.
  public var forwardClaims: [(claim: String, header: String)]

  public init(
    issuer: String?, audiences: [String], algorithms: Set<JWTAlgorithm>, clockSkewSeconds: Int64,
    forwardClaims: [(claim: String, header: String)] = []
  ) {
    self.issuer = issuer
    self.audiences = audiences
    self.algorithms = algorithms
    self.clockSkewSeconds = clockSkewSeconds
    self.forwardClaims = forwardClaims
  }
}

/// A verified token's claims, with what the request path needs precomputed: the access log's
/// `user`, the forwarded claim headers. Shared by every cache hit of the token.
public final class VerifiedClaims: Sendable {
  public let subject: String?
  public let payload: JSONValue
  /// `exp` in seconds since the epoch, when the token has one.
  public let expiresAt: Int64?
  public let forwardedHeaders: [HeaderPair]

  public init(subject: String?, payload: JSONValue, expiresAt: Int64?, forwardedHeaders: [HeaderPair]) {
    self.subject = subject
    self.payload = payload
    self.expiresAt = expiresAt
    self.forwardedHeaders = forwardedHeaders
  }
}

public enum JWTVerdict: Sendable {
  case valid(VerifiedClaims)
  case invalid(AuthFailure)
  /// The token names a `kid` the key set does not hold: refresh the keys (rate-limited) and
  /// try once more, then 401.
  case unknownKID
}

/// Compact-serialised JWS verification (RFC 7515/7519) with the rules of SECURITY.md rule 8:
/// the key decides the algorithm family, `none` never parses, `crit` is refused, ECDSA r and s
/// must lie in [1, n-1], registered claims are type-checked (a string `exp` is invalid, not
/// ignored). Pure and synchronous: it runs on the event loop.
public enum JWTVerifier {
  /// Tokens longer than this are refused before any decoding.
  public static let maxTokenBytes = 8192

  public struct Parts {
    public var header: JSONValue
    public var payload: JSONValue
    public var signingInputLength: Int
    public var signature: [UInt8]
  }

  /// Splits and decodes a token without checking its signature.
  public static func decode(_ token: [UInt8]) -> Result<Parts, AuthFailure> {
    guard token.count <= maxTokenBytes else { return .failure(.tooLarge) }
    guard !token.isEmpty else { return .failure(.malformed) }
    var dots: [Int] = []
    for (i, b) in token.enumerated() where b == UInt8(ascii: ".") {
      dots.append(i)
      if dots.count > 2 { return .failure(.malformed) }
    }
    guard dots.count == 2 else { return .failure(.malformed) }
    guard let headerBytes = Base64URL.decode(token[0..<dots[0]]),
      let payloadBytes = Base64URL.decode(token[(dots[0] + 1)..<dots[1]]),
      let signature = Base64URL.decode(token[(dots[1] + 1)...])
    else { return .failure(.malformed) }
    guard case .success(let header) = JSONParser.parse(headerBytes, maxDepth: 8), case .object = header,
      case .success(let payload) = JSONParser.parse(payloadBytes, maxDepth: 16), case .object = payload
    else { return .failure(.malformed) }
    return .success(Parts(header: header, payload: payload, signingInputLength: dots[1], signature: signature))
  }

  public static func verify(_ token: [UInt8], keys: KeySet, policy: JWTPolicy, now: Int64) -> JWTVerdict {
    let parts: Parts
    switch decode(token) {
    case .success(let p): parts = p
    case .failure(let f): return .invalid(f)
    }
    // `crit` (RFC 7515 §4.1.11): Sluice understands no extension, so any is refused.
    if parts.header["crit"] != nil { return .invalid(.malformed) }
    guard let algText = parts.header["alg"]?.stringValue, let alg = JWTAlgorithm(rawValue: algText),
      policy.algorithms.contains(alg)
    else { return .invalid(.badAlgorithm) }
    var kid: String?
    if let k = parts.header["kid"] {
      guard let s = k.stringValue else { return .invalid(.malformed) }
      kid = s
    }
    // The key: by kid when the token names one; without a kid only when one key could apply.
    let key: VerificationKey
    if let kid {
      let named = keys.keys.filter { $0.kid == kid }
      if named.isEmpty {
        // A secret-only provider has keys without kids: a kid then names nothing to look up.
        if keys.keys.count == 1 && keys.keys[0].kid == nil && keys.keys[0].algorithms.contains(alg) {
          key = keys.keys[0]
        } else {
          return .unknownKID
        }
      } else {
        guard let k = named.first(where: { $0.algorithms.contains(alg) }) else { return .invalid(.badAlgorithm) }
        key = k
      }
    } else {
      // RFC 7515 leaves `kid` optional; with several keys Sluice requires it rather than try each.
      guard keys.keys.count == 1 else { return .invalid(.unknownKID) }
      guard keys.keys[0].algorithms.contains(alg) else { return .invalid(.badAlgorithm) }
      key = keys.keys[0]
    }
    let input = token[0..<parts.signingInputLength]
    guard signatureValid(parts.signature, input: input, alg: alg, key: key.material) else {
      return .invalid(.badSignature)
    }
    return checkClaims(parts.payload, policy: policy, now: now)
  }

  static func signatureValid(_ signature: [UInt8], input: ArraySlice<UInt8>, alg: JWTAlgorithm, key: VerificationKey.Material)
    -> Bool
  {
    switch (alg, key) {
    case (.HS256, .hmac(let k)): return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: k)
    case (.HS384, .hmac(let k)): return HMAC<SHA384>.isValidAuthenticationCode(signature, authenticating: input, using: k)
    case (.HS512, .hmac(let k)): return HMAC<SHA512>.isValidAuthenticationCode(signature, authenticating: input, using: k)
    case (.RS256, .rsa(let k)):
      return k.isValidSignature(.init(rawRepresentation: signature), for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)
    case (.RS384, .rsa(let k)):
      return k.isValidSignature(.init(rawRepresentation: signature), for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5)
    case (.RS512, .rsa(let k)):
      return k.isValidSignature(.init(rawRepresentation: signature), for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5)
    case (.PS256, .rsa(let k)):
      return k.isValidSignature(.init(rawRepresentation: signature), for: SHA256.hash(data: input), padding: .PSS)
    case (.PS384, .rsa(let k)):
      return k.isValidSignature(.init(rawRepresentation: signature), for: SHA384.hash(data: input), padding: .PSS)
    case (.PS512, .rsa(let k)):
      return k.isValidSignature(.init(rawRepresentation: signature), for: SHA512.hash(data: input), padding: .PSS)
    case (.ES256, .p256(let k)):
      guard signature.count == 64, scalarsInRange(signature, order: p256Order),
        let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
      else { return false }
      return k.isValidSignature(sig, for: SHA256.hash(data: input))
    case (.ES384, .p384(let k)):
      guard signature.count == 96, scalarsInRange(signature, order: p384Order),
        let sig = try? P384.Signing.ECDSASignature(rawRepresentation: signature)
      else { return false }
      return k.isValidSignature(sig, for: SHA384.hash(data: input))
    case (.EdDSA, .ed25519(let k)):
      guard signature.count == 64 else { return false }
      return k.isValidSignature(signature, for: input)
    default:
      return false
    }
  }

  static let p256Order: [UInt8] = hex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551")
  static let p384Order: [UInt8] = hex(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973")

  static func hex(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = text.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
      func v(_ c: UInt8) -> UInt8 { c <= UInt8(ascii: "9") ? c - UInt8(ascii: "0") : c - UInt8(ascii: "A") + 10 }
      out.append(v(a) << 4 | v(b))
    }
    return out
  }

  /// r and s (big-endian halves of the raw signature) in [1, n-1] (CVE-2022-21449: r = s = 0
  /// verified any message in Java's ECDSA).
  static func scalarsInRange(_ signature: [UInt8], order: [UInt8]) -> Bool {
    let size = order.count
    for half in 0..<2 {
      let scalar = signature[(half * size)..<((half + 1) * size)]
      if scalar.allSatisfy({ $0 == 0 }) { return false }
      // scalar < order, compared big-endian
      var less = false
      for (a, b) in zip(scalar, order) where a != b {
        less = a < b
        break
      }
      if !less { return false }
    }
    return true
  }

  /// Registered claims with types checked; then the forwarded headers are prepared.
  public static func checkClaims(_ payload: JSONValue, policy: JWTPolicy, now: Int64) -> JWTVerdict {
    let skew = policy.clockSkewSeconds
    var expiresAt: Int64?
    if let v = payload["exp"] {
      guard let exp = v.numericDate else { return .invalid(.invalidClaims) }
      if now >= exp &+ skew { return .invalid(.expired) }
      expiresAt = exp
    }
    if let v = payload["nbf"] {
      guard let nbf = v.numericDate else { return .invalid(.invalidClaims) }
      if now &+ skew < nbf { return .invalid(.notYetValid) }
    }
    if let v = payload["iat"] {
      guard let iat = v.numericDate else { return .invalid(.invalidClaims) }
      if iat > now &+ skew { return .invalid(.notYetValid) }
    }
    if let issuer = policy.issuer {
      guard let v = payload["iss"] else { return .invalid(.wrongIssuer) }
      guard let iss = v.stringValue else { return .invalid(.invalidClaims) }
      if iss != issuer { return .invalid(.wrongIssuer) }
    }
    if !policy.audiences.isEmpty {
      var tokenAudiences: [String] = []
      switch payload["aud"] {
      case .string(let s)?: tokenAudiences = [s]
      case .array(let items)?:
        for item in items {
          guard let s = item.stringValue else { return .invalid(.invalidClaims) }
          tokenAudiences.append(s)
        }
      case nil: return .invalid(.wrongAudience)
      default: return .invalid(.invalidClaims)
      }
      if !tokenAudiences.contains(where: { policy.audiences.contains($0) }) { return .invalid(.wrongAudience) }
    }
    var subject: String?
    if let v = payload["sub"] {
      guard let s = v.stringValue else { return .invalid(.invalidClaims) }
      subject = s
    }
    var headers: [HeaderPair] = []
    for (claim, header) in policy.forwardClaims {
      guard let text = payload[claim]?.headerText, HeaderRules.isValidValue(text) else { continue }
      headers.append(HeaderPair(name: header, value: text))
    }
    return .valid(VerifiedClaims(subject: subject, payload: payload, expiresAt: expiresAt, forwardedHeaders: headers))
  }
}

extension JSONValue {
  /// Strings and numbers as header text; other values have none (they are not forwarded).
  public var headerText: String? {
    switch self {
    case .string(let s): return s
    case .int(let i): return String(i)
    case .double(let d): return d.isFinite ? (d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)) : nil
    default: return nil
    }
  }
}
