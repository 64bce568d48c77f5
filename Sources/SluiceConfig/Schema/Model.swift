import SluiceCore
import SluiceFeatures

/// The validated configuration: typed values with every default filled in. It is what
/// `GET /config` shows and what `Compile` turns into the runtime graph.
public struct SluiceConfiguration: Sendable {
  public var runtime = RuntimeSettings()
  public var admin = AdminSettings()
  public var listeners: [ListenerConfig] = []
  public var backends: [BackendConfig] = []
  public var observability = ObservabilitySettings()
  public var auth: [AuthProviderConfig] = []
  public var policies: [AccessPolicy] = []
  public var audit = AuditSettings()
  public var rateLimits: [RateLimitConfig] = []
  public var stores: [StoreConfig] = []

  public init() {}

  public func store(named name: String) -> StoreConfig? { stores.first { $0.name == name } }

  public func authProvider(named name: String) -> AuthProviderConfig? { auth.first { $0.name == name } }

  public func backend(named name: String) -> BackendConfig? { backends.first { $0.name == name } }
}

/// `host:port` as written; `ip` holds the parsed bytes when the host is an IP literal.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
  public var host: String
  public var port: Int

  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  /// `127.0.0.1:80`, `[::1]:80`, `localhost:80`.
  public static func parse(_ text: String) -> HostPort? {
    var hostPart: Substring
    let portPart: Substring
    if text.hasPrefix("[") {
      guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
      hostPart = text[text.index(after: text.startIndex)..<close]
      portPart = text[text.index(close, offsetBy: 2)...]
      guard IPAddress.parse(String(hostPart)) != nil else { return nil }
    } else {
      guard let colon = text.lastIndex(of: ":") else { return nil }
      hostPart = text[..<colon]
      portPart = text[text.index(after: colon)...]
      if hostPart.contains(":") { return nil }
    }
    guard !hostPart.isEmpty, portPart.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portPart),
      port >= 1, port <= 65535
    else { return nil }
    guard hostPart.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-.:".contains($0)) }) else { return nil }
    hostPart = Substring(hostPart.lowercased())
    return HostPort(host: String(hostPart), port: port)
  }

  public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public struct RuntimeSettings: Sendable {
  /// nil = `auto` (one per core).
  public var eventLoops: Int?
  public var drainTimeout = ConfigDuration.seconds(15)
}

public struct AdminSettings: Sendable {
  /// nil = admin API off (`listen: off`).
  public var listen: HostPort? = HostPort(host: "127.0.0.1", port: 9901)
  public var token: String?
}

public struct ListenerLimits: Sendable {
  public var maxConnections = 10_000
  public var maxRequestHeaderBytes = ByteSize(bytes: 32 * 1024)
  public var maxRequestURIBytes = ByteSize(bytes: 8 * 1024)
  public var maxRequestHeaders = 100
  public var maxRequestBodyBytes = ByteSize(bytes: 10 * 1024 * 1024)
  public var requestHeaderTimeout = ConfigDuration.seconds(10)
  public var idleTimeout = ConfigDuration.seconds(60)
  /// Longest pause between two pieces of a request body (a slow-body guard, 408).
  public var requestBodyTimeout = ConfigDuration.seconds(30)
  /// After this age a keep-alive connection is closed once its current response is written.
  public var maxConnectionAge = ConfigDuration.seconds(3600)
}

public struct ListenerConfig: Sendable {
  public var name: String
  public var listen: HostPort
  /// `http`, `https` (TLS terminated here) or `tls_passthrough` (routed by SNI, spliced).
  public var `protocol` = "http"
  public var tls: ListenerTLS?
  public var trustedProxies: [CIDR] = []
  public var limits = ListenerLimits()
  public var routes: [RouteConfig] = []
  public var location: SourceLocation
}

public struct DirectResponse: Sendable, Hashable {
  public var status: Int
  public var body: String
  public var headers: [HeaderPair]
  /// `echo: true`: answer with the request as the gateway saw it, as JSON (for debugging).
  public var echo = false

  public init(status: Int, body: String, headers: [HeaderPair], echo: Bool = false) {
    self.status = status
    self.body = body
    self.headers = headers
    self.echo = echo
  }
}

public enum RouteAction: Sendable {
  case backend(String)
  case split([(backend: String, weight: Int)])
  case directResponse(DirectResponse)
}

public struct RouteConfig: Sendable {
  public var name: String
  public var match: RouteMatch
  public var rewrite: PathRewrite?
  public var requestHeaders = HeaderMutation()
  public var responseHeaders = HeaderMutation()
  /// Unary request timeout: first byte sent upstream to last byte received.
  public var timeout = ConfigDuration.seconds(30)
  /// Providers from `auth`; any one that admits admits.
  public var auth: [String] = []
  /// A policy from `policies`, checked after authentication.
  public var authorize: String?
  public var cors: CORSPolicy?
  /// Limits from `rate_limits`; all must admit.
  public var rateLimit: [String] = []
  /// Idle limit of a streamed response (SSE): the route's `timeout` does not bound it.
  public var streamIdleTimeout = ConfigDuration.seconds(300)
  public var retries: RetryPolicy?
  public var fault: FaultConfig?
  public var mirror: MirrorConfig?
  /// Let `Upgrade: websocket` through and tunnel bytes after the upstream's 101.
  public var websocket = false
  public var action: RouteAction
  public var location: SourceLocation
}

public struct BackendConfig: Sendable {
  public var name: String
  /// `http1`, or `tcp` for tls_passthrough routes (bytes spliced).
  public var `protocol` = "http1"
  public var endpoints: [HostPort]
  /// TLS to the endpoints; nil: plain TCP.
  public var tls: BackendTLS?
  public var loadBalancing = LoadBalancingPolicy.roundRobin
  public var connectTimeout = ConfigDuration.seconds(2)
  /// Stop sending requests while too many fail (one breaker for the backend, for the process).
  public var circuitBreaker: CircuitBreakerPolicy?
  /// Requests in flight to the backend for the process; nil: unlimited.
  public var maxConcurrentRequests: Int?
  /// Requests that may wait for a slot beyond `maxConcurrentRequests`, and for how long.
  public var queueSize = 0
  public var queueTimeout = ConfigDuration.seconds(1)
  public var healthCheck: HealthCheckConfig?
  public var outlierDetection: OutlierConfig?
  public var location: SourceLocation
}

public enum AccessLogOutput: Sendable, Hashable, CustomStringConvertible {
  case stdout, stderr, none
  case file(String)

  public var description: String {
    switch self {
    case .stdout: "stdout"
    case .stderr: "stderr"
    case .none: "none"
    case .file(let p): p
    }
  }
}

public struct ObservabilitySettings: Sendable {
  public var accessLogOutput = AccessLogOutput.stdout
  public var requestIDHeader = "x-request-id"
  public var propagateTracing = true
}
