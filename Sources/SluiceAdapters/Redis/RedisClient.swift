import NIOCore
import NIOPosix
import NIOSSL
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// A Redis store's client: one pipelined connection per event loop, so a request talks to
/// Redis from the loop it runs on, without locks or thread hops, and concurrent requests on a
/// loop share round trips (their commands go out back to back and the replies come back in
/// one read). Connects at start, and again after any failure with exponential backoff and
/// jitter (100 ms doubling to 5 s). While a loop's connection is not ready, its calls fail at
/// once as `disconnected`, so a dead Redis costs a request nothing but the `on_store_error`
/// decision; a slow one costs at most the store's `timeout`.
public final class RedisClient: SharedStoreClient, @unchecked Sendable {
  // Safe: `connections` is built in init and never changes; each connection's state is
  // confined to its loop.
  public let config: StoreConfig
  let connections: [ObjectIdentifier: LoopConnection]
  let ordered: [LoopConnection]
  let metrics: RedisMetrics

  public init(config: StoreConfig, loops: [any EventLoop], metrics registry: MetricsRegistry) {
    self.config = config
    let metrics = RedisMetrics(store: config.name, registry: registry)
    self.metrics = metrics
    var map: [ObjectIdentifier: LoopConnection] = [:]
    var ordered: [LoopConnection] = []
    for loop in loops {
      let c = LoopConnection(config: config, eventLoop: loop, metrics: metrics)
      map[ObjectIdentifier(loop)] = c
      ordered.append(c)
    }
    connections = map
    self.ordered = ordered
  }

  public func start() {
    for c in ordered { c.eventLoop.execute { c.connect() } }
  }

  public func stop() {
    for c in ordered { c.eventLoop.execute { c.shutdown() } }
  }

  /// The connection of the calling loop, or (off the loops, as in tests) the first one.
  func run(_ body: @escaping @Sendable (LoopConnection) -> Void) {
    if let loop = MultiThreadedEventLoopGroup.currentEventLoop, let c = connections[ObjectIdentifier(loop)] {
      body(c)
    } else if let c = ordered.first {
      c.eventLoop.execute { body(c) }
    }
  }

  public func takeLimits(
    _ keys: [String], rules: [GCRA], completion: @escaping @Sendable (Result<SharedLimitVerdict, StoreFailureError>) -> Void
  ) {
    var args: [String] = []
    args.reserveCapacity(rules.count * 2)
    for rule in rules {
      // Microseconds in Redis: validate keeps `per / limit` at 1 µs or more.
      args.append(String(max(1, rule.interval / 1000)))
      args.append(String(max(1, rule.tolerance / 1000)))
    }
    let argv = args
    run { c in
      c.evalScript(keys: keys, args: argv) { result in
        switch result {
        case .success(let value):
          if let verdict = Self.verdict(value) {
            completion(.success(verdict))
          } else {
            completion(.failure(StoreFailureError(.badReply)))
          }
        case .failure(let failure):
          completion(.failure(StoreFailureError(failure)))
        }
      }
    }
  }

  public func exists(_ key: String, completion: @escaping @Sendable (Result<Bool, StoreFailureError>) -> Void) {
    let bytes = RESPEncoder.command(["EXISTS", key])
    run { c in
      c.command(bytes) { result in
        switch result {
        case .success(.integer(let n)): completion(.success(n > 0))
        case .success:
          completion(.failure(StoreFailureError(.badReply)))
        case .failure(let failure): completion(.failure(StoreFailureError(failure)))
        }
      }
    }
  }

  /// `{admitted, refused_by, remaining, retry_after_us, reset_us}` from `script`.
  static func verdict(_ value: RESPValue) -> SharedLimitVerdict? {
    guard case .array(let items) = value, items.count == 5 else { return nil }
    var numbers: [Int64] = []
    for item in items {
      guard case .integer(let n) = item else { return nil }
      numbers.append(n)
    }
    guard numbers[0] == 0 || numbers[0] == 1 else { return nil }
    // The store is outside the process: its numbers are clamped before any arithmetic.
    func micros(_ n: Int64) -> Int64 { min(max(0, n), 1_000_000_000_000_000) * 1000 }
    return SharedLimitVerdict(
      admitted: numbers[0] == 1, refusedBy: Int(min(max(numbers[1], 1), 1 << 20)) - 1, remaining: max(0, numbers[2]),
      retryAfterNanos: micros(numbers[3]), resetNanos: micros(numbers[4]))
  }

  /// GCRA over every key at once, on Redis's clock (`TIME`), so processes with different clocks
  /// agree. All keys admit and are all charged, or the first that refuses is reported and none
  /// is charged. Keys are written with a TTL of the time until they are idle again, so no key
  /// lives longer than it matters. Times in microseconds (integers well inside a double's 2^53).
  /// ARGV per key: interval, tolerance (= interval × burst).
  static let script = """
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
    local tats = {}
    local remaining = -1
    local reset = 0
    for i = 1, #KEYS do
      local interval = tonumber(ARGV[2 * i - 1])
      local tolerance = tonumber(ARGV[2 * i])
      local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
      if tat < now then tat = now end
      local new = tat + interval
      local ahead = new - now
      if ahead > tolerance then
        return {0, i, 0, ahead - tolerance, tat - now}
      end
      tats[i] = new
      local r = math.floor((tolerance - ahead) / interval)
      if remaining < 0 or r < remaining then remaining = r end
      if ahead > reset then reset = ahead end
    end
    for i = 1, #KEYS do
      redis.call('SET', KEYS[i], string.format('%d', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
    end
    return {1, 0, remaining, 0, reset}
    """
}

/// The store's metrics: commands by result, round-trip latency, connections ready.
final class RedisMetrics: Sendable {
  let results: [StoreFailure?: Counter]
  let ok: Counter
  let roundTrip: Histogram
  let connected: Gauge
  let reconnects: Counter
  /// Writes to the store: commands per write above 1 is pipelining at work.
  let writes: Counter

  init(store: String, registry: MetricsRegistry) {
    func counter(_ result: String) -> Counter {
      registry.counter(
        "sluice_store_commands_total", help: "Commands sent to a store, by store and result.",
        labels: [("store", store), ("result", result)])
    }
    ok = counter("ok")
    var results: [StoreFailure?: Counter] = [:]
    for failure in StoreFailure.allCases { results[failure] = counter(failure.rawValue) }
    self.results = results
    roundTrip = registry.histogram(
      "sluice_store_round_trip_seconds", help: "Time from sending a store command to its reply.", labels: [("store", store)],
      bounds: Histogram.storeBounds)
    connected = registry.gauge(
      "sluice_store_connections", help: "Store connections that are ready (one per event loop).", labels: [("store", store)])
    writes = registry.counter(
      "sluice_store_writes_total", help: "Writes (batches of pipelined commands) sent to a store.", labels: [("store", store)])
    reconnects = registry.counter(
      "sluice_store_connects_total", help: "Connection attempts to a store.", labels: [("store", store)])
  }

  func result(_ failure: StoreFailure?) {
    if let failure { results[failure]?.increment() } else { ok.increment() }
  }
}

/// One loop's connection: connect, handshake (AUTH, SELECT, SCRIPT LOAD in one pipelined
/// burst), serve, and reconnect after failures. Confined to `eventLoop`.
final class LoopConnection: @unchecked Sendable {
  // Safe: every field is touched only on `eventLoop`.
  enum State {
    case idle
    case connecting
    case ready(RedisConnectionHandler)
    case waiting
    case stopped
  }

  let config: StoreConfig
  let eventLoop: any EventLoop
  let metrics: RedisMetrics
  var state = State.idle
  var failures = 0
  var scriptSHA = ""
  var lastError: String?
  var random = SystemRandomNumberGenerator()

  init(config: StoreConfig, eventLoop: any EventLoop, metrics: RedisMetrics) {
    self.config = config
    self.eventLoop = eventLoop
    self.metrics = metrics
  }

  var timeout: TimeAmount { .nanoseconds(config.timeout.nanoseconds) }

  func connect() {
    switch state {
    case .idle, .waiting: break
    case .connecting, .ready, .stopped: return
    }
    state = .connecting
    metrics.reconnects.increment()
    let handshakeTimeout = max(TimeAmount.seconds(1), timeout * 10)
    let handler = RedisConnectionHandler(
      timeout: timeout, maxPending: config.maxPending,
      onRoundTrip: { [metrics] rtt in metrics.roundTrip.observe(microseconds: Int(rtt.nanoseconds / 1000)) },
      onFlush: { [metrics] in metrics.writes.increment() },
      onClose: { [weak self] reason in self?.closed(reason) })
    ClientBootstrap(group: eventLoop)
      .connectTimeout(handshakeTimeout)
      .channelOption(.socketOption(.tcp_nodelay), value: 1)
      .channelInitializer { [config] channel in
        channel.eventLoop.makeCompletedFuture {
          if let tls = config.tls, let context = tls.context {
            // rediss://: commands written before the handshake ends wait inside the TLS handler.
            let name = tls.serverName ?? (IPAddress.parse(config.url.host) == nil ? config.url.host : nil)
            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: name))
          }
          try channel.pipeline.syncOperations.addHandler(handler)
        }
      }
      .connect(host: config.url.host, port: config.url.port)
      .whenComplete { [self] result in
        switch result {
        case .success:
          handshake(handler, timeout: handshakeTimeout)
        case .failure(let error):
          retry("cannot connect to \(config.url.host):\(config.url.port): \(error)")
        }
      }
  }

  func handshake(_ handler: RedisConnectionHandler, timeout: TimeAmount) {
    guard case .connecting = state else {
      handler.fail("stopped")
      return
    }
    var steps: [(String, [String])] = []
    if let password = config.url.password {
      steps.append(("AUTH", config.url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]))
    }
    if config.url.database != 0 { steps.append(("SELECT", ["SELECT", String(config.url.database)])) }
    steps.append(("SCRIPT LOAD", ["SCRIPT", "LOAD", RedisClient.script]))
    var remaining = steps.count
    var failed = false
    for (name, parts) in steps {
      handler.send(RESPEncoder.command(parts), timeout: timeout) { [self] result in
        guard !failed else { return }
        switch result {
        case .success(.bulk(let sha)) where name == "SCRIPT LOAD":
          scriptSHA = String(decoding: sha, as: UTF8.self)
        case .success(.simple) where name != "SCRIPT LOAD":
          break
        case .success(let other):
          failed = true
          // Never the password: only what Redis said.
          var said = "\(other)"
          if case .error(let text) = other { said = text }
          handler.fail("\(name) refused: \(said)")
          return
        case .failure(let failure):
          failed = true
          handler.fail("\(name): \(failure.rawValue)")
          return
        }
        remaining -= 1
        if remaining == 0 { ready(handler) }
      }
    }
  }

  func ready(_ handler: RedisConnectionHandler) {
    guard case .connecting = state else {
      handler.fail("stopped")
      return
    }
    state = .ready(handler)
    metrics.connected.add(1)
    if failures > 0 || lastError != nil {
      Log.info("store connected again", [("store", config.name), ("address", "\(config.url.host):\(config.url.port)")])
    }
    failures = 0
    lastError = nil
  }

  func closed(_ reason: String) {
    if case .ready = state { metrics.connected.add(-1) }
    if case .stopped = state { return }
    retry(reason)
  }

  func retry(_ reason: String) {
    if case .stopped = state { return }
    state = .waiting
    failures += 1
    // 100 ms doubling to 5 s, times 0.5-1.5 so a fleet does not reconnect in step.
    let base = min(5_000, 100 << min(failures - 1, 6))
    let delay = Int64(Double(base) * Double.random(in: 0.5...1.5, using: &random))
    if lastError != reason {
      Log.warning(
        "store connection failed; retrying",
        [("store", config.name), ("error", reason), ("retry_in_ms", String(delay))])
      lastError = reason
    }
    eventLoop.scheduleTask(in: .milliseconds(delay)) { [self] in connect() }
  }

  func shutdown() {
    if case .ready(let handler) = state {
      state = .stopped
      metrics.connected.add(-1)
      handler.fail("stopped")
    }
    state = .stopped
  }

  /// Sends one command on this loop's connection, or fails at once when it is not ready.
  func command(_ bytes: [UInt8], _ callback: @escaping (Result<RESPValue, StoreFailure>) -> Void) {
    guard case .ready(let handler) = state else {
      metrics.result(.disconnected)
      callback(.failure(.disconnected))
      return
    }
    handler.send(bytes) { [metrics] result in
      switch result {
      case .success(let value) where value.errorCode != nil: metrics.result(.badReply)
      case .success: metrics.result(nil)
      case .failure(let failure): metrics.result(failure)
      }
      callback(result)
    }
  }

  /// `EVALSHA` of the limit script; after a `NOSCRIPT` (the server's script cache was flushed or
  /// the server restarted), `EVAL` with the script text, which caches it again.
  func evalScript(keys: [String], args: [String], _ callback: @escaping (Result<RESPValue, StoreFailure>) -> Void) {
    let tail = [String(keys.count)] + keys + args
    command(RESPEncoder.command(["EVALSHA", scriptSHA] + tail)) { [self] result in
      if case .success(let value) = result, value.errorCode == "NOSCRIPT" {
        command(RESPEncoder.command(["EVAL", RedisClient.script] + tail), callback)
        return
      }
      callback(result)
    }
  }
}
