import SluiceCore
import SluiceFeatures

/// `retries:` of a route. Defaults follow Envoy's and nginx's: two tries (one retry) on a
/// connect failure or a reset, a 20 % budget, 25 ms base backoff with full jitter.
public struct RetryPolicy: Sendable, Hashable {
  /// Total tries, the first included.
  public var attempts = 2
  public var onConnectFailure = true
  public var onReset = true
  public var onTimeout = false
  /// Upstream statuses that are retried (`"503"`, or `"5xx"` for 500–599).
  public var statuses: Set<Int> = []
  /// One try's limit; nil: only the route's `timeout` bounds the tries together.
  public var perTryTimeout: ConfigDuration?
  public var budget = 0.2
  public var backoffBase = ConfigDuration.milliseconds(25)
  public var backoffMax = ConfigDuration.milliseconds(250)
  /// Request bodies up to this size are kept so a retry can send them again; a larger body is
  /// never retried once its first byte left.
  public var replayBuffer = ByteSize(bytes: 64 * 1024)
  /// Retry POST and PATCH too after their bytes may have reached the upstream.
  public var nonIdempotent = false

  public init() {}

  /// The `on:` list as written.
  public var conditions: [String] {
    var out: [String] = []
    if onConnectFailure { out.append("connect-failure") }
    if onReset { out.append("reset") }
    if onTimeout { out.append("timeout") }
    out += statuses.sorted().map(String.init)
    return out
  }
}

/// `health_check:` of a backend: one prober per backend for the process.
public struct HealthCheckConfig: Sendable, Hashable {
  public var path = "/healthz"
  public var interval = ConfigDuration.seconds(15)
  public var timeout = ConfigDuration.seconds(2)
  public var healthyThreshold = 2
  public var unhealthyThreshold = 3
  /// Each interval is lengthened by a random share of this, so probers of a fleet spread out.
  public var jitter = ConfigDuration.seconds(1)
  /// The probe's `Host`; nil: the endpoint's address.
  public var host: String?

  public init() {}
}

/// `outlier_detection:` of a backend.
public struct OutlierConfig: Sendable, Hashable {
  public var consecutiveFailures = 5
  public var ejectFor = ConfigDuration.seconds(30)
  /// At most this share of the endpoints is ejected at once (one always may be).
  public var maxEjected = 0.5

  public init() {}
}

/// `fault:` of a route: chaos testing without touching the upstream.
public struct FaultConfig: Sendable, Hashable {
  /// Share of requests delayed (0…1) and by how much.
  public var delayShare = 0.0
  public var delay = ConfigDuration.seconds(0)
  /// Share of requests answered with `abortStatus` by the gateway itself.
  public var abortShare = 0.0
  public var abortStatus = 503

  public init() {}
}

/// `mirror:` of a route: a fire-and-forget copy to another backend.
public struct MirrorConfig: Sendable, Hashable {
  public var backend: String
  public var share = 1.0

  public init(backend: String) { self.backend = backend }
}
