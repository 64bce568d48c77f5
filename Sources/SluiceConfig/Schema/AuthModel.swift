import SluiceCore
import SluiceFeatures

/// Where a JWT provider's keys come from.
public enum JWTKeySource: Sendable {
  /// Fetched at start and refreshed in the background (SluiceAdapters/JWKS).
  case url(String)
  /// Read (and parsed) when the config is validated, so a reload re-reads it.
  case file(path: String, keys: KeySet)
  /// A shared secret for HS* (`secret: ${env:…}`).
  case secret(String)
}

public enum JWKSUnavailablePolicy: String, Sendable {
  case useCached = "use_cached"
  case deny
}

/// `auth.<name>` with `type: jwt`.
public struct JWTProviderConfig: Sendable {
  public var issuer: String?
  public var audiences: [String] = []
  public var algorithms: [JWTAlgorithm] = []
  public var keySource: JWTKeySource
  public var jwksRefresh = ConfigDuration.seconds(600)
  /// A CA bundle (PEM) for an https `jwks_url`, instead of the system's.
  public var jwksCA: String?
  public var jwksTimeout = ConfigDuration.seconds(5)
  public var onJWKSUnavailable = JWKSUnavailablePolicy.useCached
  public var clockSkew = ConfigDuration.seconds(60)
  public var tokenFrom: [TokenSource] = [.header("authorization")]
  public var forwardClaims: [(claim: String, header: String)] = []
  /// Forward the token to the upstream (Envoy's `forward`, default false: removed).
  public var forwardToken = false
  /// A `jti` deny-list in Redis, checked on every request (cache hits too).
  public var revocation: RevocationConfig?
}

/// `auth.<name>` with `type: api_key`.
public struct APIKeyProviderConfig: Sendable {
  public var source: TokenSource = .header("x-api-key")
  public var keys: [(name: String, key: String)] = []
  public var forwardKey = false
}

public enum AuthProviderKind: Sendable {
  case jwt(JWTProviderConfig)
  case apiKey(APIKeyProviderConfig)
}

public struct AuthProviderConfig: Sendable {
  public var name: String
  public var kind: AuthProviderKind
  public var location: SourceLocation
}

/// `audit.sinks[]`.
public struct AuditSinkConfig: Sendable {
  public var url: String
  public var events: Set<AuditEventKind> = Set(AuditEventKind.allCases)
  /// Bounded queue; overflow is dropped and counted.
  public var queue = 1000
  /// Events per POST: 1 sends one JSON object, more send a JSON array.
  public var batch = 1
  public var timeout = ConfigDuration.seconds(5)
  public var retries = 3
  public var name: String
}

public struct AuditSettings: Sendable {
  public var sinks: [AuditSinkConfig] = []
}
