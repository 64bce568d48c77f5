import SluiceCore

/// One entry of a route's `auth` list.
public enum AuthProvider: Sendable {
  case jwt(JWTProvider)
  case apiKey(APIKeyProvider)

  public var name: String {
    switch self {
    case .jwt(let p): p.name
    case .apiKey(let p): p.name
    }
  }
}

/// Who the request is, once a provider admitted it.
public struct Identity: Sendable {
  public var provider: String
  /// The access log's `user`: the JWT `sub`, or the API key's name.
  public var user: String?
  public var claims: VerifiedClaims?
  public var forwardedHeaders: [HeaderPair]
  /// A query parameter holding the credential, to drop from the upstream query.
  public var removeQueryParameter: String?
  /// The deny-list lookup still to do: the provider's rule and the key (`prefix + jti`). A
  /// token without `jti` cannot be on the list and has none.
  public var revocation: (rule: RevocationRule, key: String)?
}

public enum AuthDecision: Sendable {
  case admitted(Identity)
  /// 401: `provider` is the first provider that saw a credential (or the first provider when
  /// none did); `tokenSent` adds `error="invalid_token"` (RFC 6750 §3).
  case denied(providerIndex: Int, failure: AuthFailure, tokenSent: Bool)
  /// 503: the provider that saw the credential has no keys to check it with (never fetched,
  /// or `on_jwks_unavailable: deny` after a failed refresh).
  case unavailable(providerIndex: Int)
  /// The token names a `kid` the provider does not know: refresh its keys once, then decide.
  case refreshKeys(KeyStore)
}

/// The authenticate step: any provider that admits admits (`auth: [a, b]`). Pure apart from
/// the loop's token cache; synchronous on the event loop.
public enum Authentication {
  public static func authenticate(
    _ providers: [AuthProvider], request: some CredentialSource, cache: TokenCache, now: Int64, refreshed: Bool
  ) -> AuthDecision {
    var firstFailure: (index: Int, failure: AuthFailure)?
    for (index, provider) in providers.enumerated() {
      switch provider {
      case .apiKey(let p):
        guard let presented = Credentials.value(p.source, from: request) else { continue }
        if !presented.isEmpty, let name = p.identify(presented) {
          var removeQuery: String?
          if !p.forwardKey, case .query(let q) = p.source { removeQuery = q }
          return .admitted(
            Identity(provider: p.name, user: name, claims: nil, forwardedHeaders: [], removeQueryParameter: removeQuery))
        }
        if firstFailure == nil { firstFailure = (index, .invalidKey) }
      case .jwt(let p):
        guard let (source, bytes) = Credentials.extractBytes(p.sources, from: request) else { continue }
        var verdict: JWTVerdict
        if bytes.isEmpty {
          verdict = .invalid(.malformed)
        } else if bytes.count > JWTVerifier.maxTokenBytes {
          verdict = .invalid(.tooLarge)
        } else {
          let key = TokenCache.key(provider: p.name, token: bytes)
          let version = p.keys.version
          if let claims = cache.lookup(key, token: bytes, now: now, keysVersion: version) {
            verdict = .valid(claims)
          } else {
            // No keys: never fetched yet, or `on_jwks_unavailable: deny` after a failed refresh.
            let (keys, _) = p.keys.current()
            if let keys {
              verdict = JWTVerifier.verify(bytes, keys: keys, policy: p.policy, now: now)
              if case .valid(let claims) = verdict {
                cache.insert(key, token: bytes, claims: claims, now: now, clockSkew: p.policy.clockSkewSeconds, keysVersion: version)
              }
            } else {
              verdict = .invalid(.keysUnavailable)
            }
          }
        }
        switch verdict {
        case .valid(let claims):
          var removeQuery: String?
          if !p.forwardToken, case .query(let q) = source { removeQuery = q }
          var revocation: (rule: RevocationRule, key: String)?
          if let rule = p.revocation, let jti = claims.payload["jti"]?.stringValue, !jti.isEmpty {
            revocation = (rule, rule.keyPrefix + jti)
          }
          return .admitted(
            Identity(
              provider: p.name, user: claims.subject, claims: claims, forwardedHeaders: claims.forwardedHeaders,
              removeQueryParameter: removeQuery, revocation: revocation))
        case .unknownKID:
          if !refreshed && p.keys.refresher != nil { return .refreshKeys(p.keys) }
          if firstFailure == nil { firstFailure = (index, .unknownKID) }
        case .invalid(let failure):
          if firstFailure == nil { firstFailure = (index, failure) }
        }
      }
    }
    guard let firstFailure else { return .denied(providerIndex: 0, failure: .missing, tokenSent: false) }
    if firstFailure.failure == .keysUnavailable { return .unavailable(providerIndex: firstFailure.index) }
    return .denied(providerIndex: firstFailure.index, failure: firstFailure.failure, tokenSent: true)
  }
}
