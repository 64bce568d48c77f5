import Atomics
import Dispatch
import NIOCore
import NIOPosix
import SluiceAdapters
import SluiceConfig
import SluiceCore
import SluiceFeatures
import SluiceProxy

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The composition root of `sluice serve`: loads the config, builds the event loops, binds the
/// listeners and the admin API, and runs the control plane (reload on SIGHUP, POST /reload and
/// file change; drain on SIGTERM/SIGINT). Control-plane work runs on one serial queue, never on
/// an event loop.
public final class Gateway: @unchecked Sendable {
  // Safe: mutable state below is only touched on `control` (a serial queue), except the
  // atomics and the immutable `let`s.
  public struct Options: Sendable {
    public var configPath: String?
    public init(configPath: String?) { self.configPath = configPath }
  }

  let options: Options
  let control = DispatchQueue(label: "sluice.control")
  let state = PersistentState()
  let ready = ManagedAtomic<Bool>(false)
  let draining = ManagedAtomic<Bool>(false)
  let done = DispatchSemaphore(value: 0)

  var group: MultiThreadedEventLoopGroup?
  var contexts: LoopContexts?
  /// The newest graph. Written on `control`, read by admin handlers on event loops through
  /// `graphLock` — never with `control.sync` from a loop: a reload on `control` waits for every
  /// loop to take the new graph, so a loop blocked on `control` would deadlock it.
  var graph: RuntimeGraph? {
    get { graphLock.withLock { _graph } }
    set { graphLock.withLock { _graph = newValue } }
  }
  private var _graph: RuntimeGraph?
  private let graphLock = Mutex()
  var listenerChannels: [String: (address: HostPort, channel: any Channel)] = [:]
  var adminChannel: (any Channel)?
  var sink: FileLogWriter?
  var sinkOutput: AccessLogOutput = .none
  var watcher: FileWatcher?
  var signalSources: [any DispatchSourceSignal] = []
  /// Long-running clients of the outside world, kept across reloads by stable keys: one JWKS
  /// fetcher per (provider, URL), one webhook sink per sink config. Touched on `control`.
  var fetchers: [String: JWKSFetcher] = [:]
  var sinks: [String: WebhookSink] = [:]
  /// One Redis client per store definition (name and fingerprint).
  var redisClients: [String: RedisClient] = [:]
  /// One health prober per backend with `health_check`, keyed by `HealthProber.key`.
  var probers: [String: HealthProber] = [:]
  /// The fetchers for /metrics, read from event loops (never `control.sync` from a loop).
  var fetcherSnapshot: [JWKSFetcher] {
    get { graphLock.withLock { _fetcherSnapshot } }
    set { graphLock.withLock { _fetcherSnapshot = newValue } }
  }
  private var _fetcherSnapshot: [JWKSFetcher] = []
  let reloadSuccess: Counter
  let reloadFailure: Counter
  var exitCode: Int32 = 0

  public init(options: Options) {
    self.options = options
    let metrics = state.metrics
    reloadSuccess = metrics.counter(
      "sluice_config_reloads_total", help: "Configuration reloads by result.", labels: [("result", "success")])
    reloadFailure = metrics.counter(
      "sluice_config_reloads_total", help: "Configuration reloads by result.", labels: [("result", "failure")])
    metrics.gauge("sluice_build_info", help: "Build information.", labels: [("version", BuildInfo.version)]).set(1)
  }

  var fileName: String { options.configPath ?? EmbeddedConfig.fileName }

  func loadConfig() -> LoadResult {
    let env = ProcessFiles.environment()
    if let path = options.configPath { return ConfigLoader.load(file: path, environment: env) }
    return ConfigLoader.load(text: EmbeddedConfig.yaml, file: EmbeddedConfig.fileName, environment: env)
  }

  /// Runs until drained. Returns the process exit code (SPEC section 1).
  public func run() -> Int32 {
    let result = loadConfig()
    for diagnostic in result.diagnostics { printError(diagnostic.description) }
    guard let config = result.configuration else {
      printError("sluice: the configuration is invalid (\(result.errors.count) error(s))")
      return 1
    }
    let loops = config.runtime.eventLoops ?? System.coreCount
    let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
    self.group = group
    let graph = Compiler.compile(config, state: state, audit: auditRoutes(config, group: group))
    syncFetchers(graph, group: group)
    syncStores(graph, group: group)
    syncProbers(graph, group: group)
    let sink = makeSink(config.observability.accessLogOutput)
    self.sink = sink
    sinkOutput = config.observability.accessLogOutput
    let contexts = LoopContexts(group: group, graph: graph, sink: sink)
    self.contexts = contexts
    self.graph = graph
    registerCollectors()

    for listener in config.listeners {
      do {
        let channel = try ListenerServer.bind(listener, group: group, contexts: contexts).wait()
        listenerChannels[listener.name] = (listener.listen, channel)
      } catch {
        printError("sluice: cannot listen on \(listener.listen) for listener '\(listener.name)': \(Self.describe(error))")
        try? group.syncShutdownGracefully()
        return 2
      }
    }
    if let admin = config.admin.listen {
      do {
        adminChannel = try AdminServer.bind(admin, group: group, control: self).wait()
      } catch {
        printError("sluice: cannot listen on \(admin) for the admin API: \(Self.describe(error))")
        try? group.syncShutdownGracefully()
        return 2
      }
    }
    ready.store(true, ordering: .relaxed)
    Log.info(
      "sluice started",
      [
        ("version", BuildInfo.version), ("config", fileName), ("event_loops", String(loops)),
        ("listeners", config.listeners.map { "\($0.name)=\($0.listen)" }.joined(separator: ",")),
        ("admin", config.admin.listen?.description ?? "off"),
      ])
    installSignals()
    if let path = options.configPath {
      watcher = FileWatcher(paths: [path] + Self.loadedFiles(config), queue: control) { [weak self] in
        guard let self else { return }
        _ = self.reloadNow(trigger: "file change")
      }
    }
    done.wait()
    return exitCode
  }

  func makeSink(_ output: AccessLogOutput) -> FileLogWriter? {
    switch output {
    case .none: return nil
    case .stdout: return FileLogWriter(fd: 1, ownsFD: false)
    case .stderr: return FileLogWriter(fd: 2, ownsFD: false)
    case .file(let path):
      if let writer = FileLogWriter.open(path: path) { return writer }
      Log.error("cannot open the access log file; access logging is off", [("path", path)])
      return nil
    }
  }

  /// Webhook sinks for the config's `audit.sinks`: kept when unchanged, started when new,
  /// stopped when gone.
  func auditRoutes(_ config: SluiceConfiguration, group: MultiThreadedEventLoopGroup) -> [AuditRoute] {
    var next: [String: WebhookSink] = [:]
    var routes: [AuditRoute] = []
    for sinkConfig in config.audit.sinks {
      let key = [
        sinkConfig.name, sinkConfig.url, String(sinkConfig.queue), String(sinkConfig.batch),
        sinkConfig.timeout.description, String(sinkConfig.retries),
      ].joined(separator: "|")
      guard
        let sink = sinks[key] ?? next[key]
          ?? WebhookSink(config: sinkConfig, eventLoop: group.next(), metrics: state.metrics)
      else { continue }
      next[key] = sink
      routes.append(AuditRoute(events: sinkConfig.events, sink: sink))
    }
    for (key, old) in sinks where next[key] == nil { old.stop() }
    sinks = next
    return routes
  }

  /// One JWKS fetcher per (provider, URL) of the graph.
  func syncFetchers(_ graph: RuntimeGraph, group: MultiThreadedEventLoopGroup) {
    var next: [String: JWKSFetcher] = [:]
    for fetch in graph.keyFetches {
      let key = fetch.provider + "|" + fetch.url.description
      if let existing = fetchers[key] {
        existing.update(fetch)
        next[key] = existing
      } else {
        let fetcher = JWKSFetcher(fetch: fetch, eventLoop: group.next(), metrics: state.metrics)
        fetcher.start()
        next[key] = fetcher
      }
    }
    for (key, old) in fetchers where next[key] == nil { old.stop() }
    fetchers = next
    fetcherSnapshot = next.values.sorted { $0.provider < $1.provider }
  }

  /// One Redis client per store of the graph, attached to the store's handle; a store whose
  /// definition is unchanged keeps its client (and connections) across a reload.
  func syncStores(_ graph: RuntimeGraph, group: MultiThreadedEventLoopGroup) {
    var next: [String: RedisClient] = [:]
    for (config, store) in graph.stores {
      let key = config.name + "|" + config.fingerprint
      if let existing = redisClients[key] {
        next[key] = existing
        if store.client == nil { store.client = existing }
      } else {
        let client = RedisClient(config: config, loops: Array(group.makeIterator()), metrics: state.metrics)
        store.client = client
        client.start()
        next[key] = client
      }
    }
    for (key, old) in redisClients where next[key] == nil { old.stop() }
    redisClients = next
  }

  /// One prober per backend with `health_check`; a backend whose endpoints and checks are
  /// unchanged keeps its prober (and its probes' schedule) across a reload.
  func syncProbers(_ graph: RuntimeGraph, group: MultiThreadedEventLoopGroup) {
    var next: [String: HealthProber] = [:]
    for name in graph.backendOrder {
      guard let backend = graph.backends[name], let check = backend.config.healthCheck else { continue }
      let key = HealthProber.key(backend, check)
      if let existing = probers[key] {
        existing.update(backend)
        next[key] = existing
      } else {
        let prober = HealthProber(backend: backend, config: check, eventLoop: group.next(), metrics: state.metrics)
        prober.start()
        next[key] = prober
      }
    }
    for (key, old) in probers where next[key] == nil { old.stop() }
    probers = next
  }

  func registerCollectors() {
    state.metrics.addCollector { [weak self] in
      guard let self else { return "" }
      let fetchers = self.fetcherSnapshot
      guard !fetchers.isEmpty else { return "" }
      var out = "# HELP sluice_jwks_keys_age_seconds Age of the JWKS keys in use (-1: none fetched yet).\n"
      out += "# TYPE sluice_jwks_keys_age_seconds gauge\n"
      for f in fetchers {
        out += "sluice_jwks_keys_age_seconds{provider=\"\(f.provider)\"} \(f.keysAge.map { String($0) } ?? "-1")\n"
      }
      out += "# HELP sluice_jwks_waiting_for_keys 1 while a provider has no keys yet (its routes answer 503).\n"
      out += "# TYPE sluice_jwks_waiting_for_keys gauge\n"
      for f in fetchers {
        out += "sluice_jwks_waiting_for_keys{provider=\"\(f.provider)\"} \(f.keysAge == nil ? 1 : 0)\n"
      }
      return out
    }
    state.metrics.addCollector { [weak self] in
      let dropped = self?.sink?.droppedLines ?? 0
      return "# HELP sluice_access_log_dropped_lines_total Access log lines dropped because the output was too slow.\n"
        + "# TYPE sluice_access_log_dropped_lines_total counter\nsluice_access_log_dropped_lines_total \(dropped)\n"
        + ProcessMetrics.render()
    }
  }

  func installSignals() {
    for sig in [SIGHUP, SIGTERM, SIGINT] { signal(sig, SIG_IGN) }
    signal(SIGPIPE, SIG_IGN)
    for sig in [SIGHUP, SIGTERM, SIGINT] {
      let source = DispatchSource.makeSignalSource(signal: sig, queue: control)
      source.setEventHandler { [weak self] in
        guard let self else { return }
        if sig == SIGHUP {
          _ = self.reloadNow(trigger: "SIGHUP")
        } else {
          self.drainAndExit(signal: sig == SIGTERM ? "SIGTERM" : "SIGINT")
        }
      }
      source.resume()
      signalSources.append(source)
    }
  }

  // MARK: - Reload

  /// Files a config reads at load time besides itself (TLS certificates, keys, CA bundles):
  /// a change to one reloads the config like a change to the config file.
  static func loadedFiles(_ config: SluiceConfiguration) -> [String] {
    var files = config.listeners.flatMap { $0.tls?.files ?? [] } + config.backends.flatMap { $0.tls?.files ?? [] }
    var seen: Set<String> = []
    files.removeAll { !seen.insert($0).inserted }
    return files
  }

  /// Loads, validates and compiles the config source, then swaps it in atomically on every
  /// event loop. On any error the running config stays. Runs on `control`.
  func reloadNow(trigger: String) -> (status: Int, body: String) {
    guard !draining.load(ordering: .relaxed), let group, let contexts, let old = graph else {
      return (503, "{\"result\":\"failure\",\"errors\":[\"draining\"]}\n")
    }
    watcher?.markSeen()
    let result = loadConfig()
    guard let config = result.configuration else {
      reloadFailure.increment()
      for diagnostic in result.errors {
        Log.error("config reload rejected", [("trigger", trigger), ("error", diagnostic.description)])
      }
      let errors = JSONValue.array(result.errors.map { .string($0.description) })
      return (
        400,
        JSONValue.object([("result", .string("failure")), ("errors", errors), ("generation", .int(old.generation))]).rendered() + "\n"
      )
    }
    var notes: [String] = []
    if config.runtime.eventLoops != old.configuration.runtime.eventLoops {
      notes.append("runtime.event_loops changes at the next restart")
    }
    if config.admin.listen != old.configuration.admin.listen {
      notes.append("admin.listen changes at the next restart")
    }
    // Bind listeners that are new or moved before the swap, so a bind error rejects the reload.
    var newChannels: [String: (HostPort, any Channel)] = [:]
    for listener in config.listeners where listenerChannels[listener.name]?.address != listener.listen {
      do {
        newChannels[listener.name] = (listener.listen, try ListenerServer.bind(listener, group: group, contexts: contexts).wait())
      } catch {
        for (_, (_, channel)) in newChannels { try? channel.close().wait() }
        reloadFailure.increment()
        let message = "cannot listen on \(listener.listen) for listener '\(listener.name)': \(Self.describe(error))"
        Log.error("config reload rejected", [("trigger", trigger), ("error", message)])
        return (400, JSONValue.object([("result", .string("failure")), ("errors", .array([.string(message)]))]).rendered() + "\n")
      }
    }
    let graph = Compiler.compile(config, state: state, audit: auditRoutes(config, group: group))
    syncFetchers(graph, group: group)
    syncStores(graph, group: group)
    syncProbers(graph, group: group)
    if config.observability.accessLogOutput != sinkOutput {
      sinkOutput = config.observability.accessLogOutput
      let newSink = makeSink(sinkOutput)
      sink?.sync()
      sink = newSink
      contexts.setSink(newSink)
    }
    try? contexts.install(graph).wait()
    self.graph = graph
    if let path = options.configPath { watcher?.watch([path] + Self.loadedFiles(config)) }
    var removed: [String] = []
    for (name, entry) in listenerChannels {
      let keep = config.listeners.contains { $0.name == name && $0.listen == entry.address }
      if !keep {
        entry.channel.close(promise: nil)
        listenerChannels[name] = nil
        if newChannels[name] == nil { removed.append(name) }
      }
    }
    for (name, (address, channel)) in newChannels { listenerChannels[name] = (address, channel) }
    reloadSuccess.increment()
    let oldBackends = Set(old.backendOrder)
    let newBackends = Set(graph.backendOrder)
    let summary = JSONValue.object([
      ("result", .string("success")),
      ("generation", .int(graph.generation)),
      ("trigger", .string(trigger)),
      ("listeners", .int(config.listeners.count)),
      ("routes", .int(config.listeners.reduce(0) { $0 + $1.routes.count })),
      ("backends_added", .array(newBackends.subtracting(oldBackends).sorted().map { .string($0) })),
      ("backends_removed", .array(oldBackends.subtracting(newBackends).sorted().map { .string($0) })),
      ("listeners_added_or_moved", .array(newChannels.keys.sorted().map { .string($0) })),
      ("listeners_removed", .array(removed.sorted().map { .string($0) })),
      ("notes", .array(notes.map { .string($0) })),
    ])
    Log.info("config reloaded", [("trigger", trigger), ("generation", String(graph.generation))])
    graph.audit.publish(
      AuditEvent(kind: .configReloaded, detail: [("trigger", trigger), ("generation", String(graph.generation))]))
    for note in notes { Log.warning(note) }
    return (200, summary.rendered() + "\n")
  }

  // MARK: - Drain

  func drainAndExit(signal name: String) {
    guard !draining.exchange(true, ordering: .relaxed), let group, let contexts else { return }
    ready.store(false, ordering: .relaxed)
    let timeout = graph?.configuration.runtime.drainTimeout ?? .seconds(15)
    Log.info("draining", [("signal", name), ("drain_timeout", timeout.description)])
    watcher?.stop()
    for (_, entry) in listenerChannels { try? entry.channel.close().wait() }
    listenerChannels = [:]
    try? contexts.beginDrain().wait()
    let deadline = WallClock.monotonicNanoseconds() + UInt64(max(0, timeout.nanoseconds))
    var open = (try? contexts.openConnections().wait()) ?? 0
    while open > 0 && WallClock.monotonicNanoseconds() < deadline {
      usleep(20_000)
      open = (try? contexts.openConnections().wait()) ?? 0
    }
    if open > 0 {
      Log.warning("drain timeout: closing connections still open", [("open", String(open))])
      try? contexts.closeOpenConnections().wait()
      // Their closes finish on the loops (tunnels write their access log lines then).
      let closing = WallClock.monotonicNanoseconds() + 200_000_000
      while (try? contexts.openConnections().wait()) ?? 0 > 0 && WallClock.monotonicNanoseconds() < closing {
        usleep(10_000)
      }
    }
    try? contexts.flushLogs().wait()
    sink?.sync()
    for (_, fetcher) in fetchers { fetcher.stop() }
    for (_, webhook) in sinks { webhook.stop() }
    for (_, client) in redisClients { client.stop() }
    try? adminChannel?.close().wait()
    try? group.syncShutdownGracefully()
    Log.info("stopped")
    exitCode = 0
    done.signal()
  }

  func printError(_ text: String) {
    let line = text + "\n"
    line.withCString { _ = write(2, $0, strlen($0)) }
  }

  static func describe(_ error: any Error) -> String {
    if let io = error as? IOError {
      return String(cString: strerror(io.errnoCode)).lowercased()
    }
    return "\(error)"
  }
}

extension Gateway: AdminControl {
  public var isReady: Bool { ready.load(ordering: .relaxed) && !draining.load(ordering: .relaxed) }

  public var adminToken: String? { graph?.configuration.admin.token }

  public func metricsText() -> String { state.metrics.render() }

  public func configJSON() -> String {
    guard let config = graph?.configuration else { return "{}" }
    return ConfigJSON.render(config).rendered(pretty: true) + "\n"
  }

  public func backendsJSON(_ done: @escaping @Sendable (String) -> Void) {
    control.async {
      guard let graph = self.graph, let contexts = self.contexts else { return done("{\"backends\":[]}\n") }
      let idle = (try? contexts.idleUpstreamConnections().wait()) ?? [:]
      let backends: [JSONValue] = graph.backendOrder.compactMap { name in
        guard let backend = graph.backends[name] else { return nil }
        let now = Int64(WallClock.monotonicNanoseconds())
        let endpoints: [JSONValue] = backend.endpoints.map { endpoint in
          let until = endpoint.stats.ejectedUntil.load(ordering: .relaxed)
          var fields: [(String, JSONValue)] = [
            ("address", .string(endpoint.key)),
            ("healthy", .bool(!endpoint.stats.unhealthy.load(ordering: .relaxed))),
            ("ejected", .bool(until > now)),
          ]
          if until > now { fields.append(("ejected_for_ms", .int(Int((until - now) / 1_000_000)))) }
          return .object(
            fields + [
              ("in_flight", .int(endpoint.stats.inFlight.load(ordering: .relaxed))),
              ("requests", .int(endpoint.stats.requests.load(ordering: .relaxed))),
              ("idle_connections", .int(idle[endpoint.poolKey] ?? 0)),
            ])
        }
        let inFlight = backend.endpoints.reduce(0) { $0 + $1.stats.inFlight.load(ordering: .relaxed) }
        let queued = backend.gate?.queued ?? 0
        return .object([
          ("name", .string(name)), ("protocol", .string(backend.config.protocol)),
          ("load_balancing", .string(backend.config.loadBalancing.description)),
          ("circuit", .string(backend.breaker?.state.name ?? "closed")), ("in_flight", .int(inFlight)), ("queued", .int(queued)),
          ("healthy_endpoints", .int(backend.availableCount(now: now))),
          ("endpoints", .array(endpoints)),
        ])
      }
      done(JSONValue.object([("generation", .int(graph.generation)), ("backends", .array(backends))]).rendered(pretty: true) + "\n")
    }
  }

  public func reload(_ done: @escaping @Sendable (Int, String) -> Void) {
    control.async {
      let (status, body) = self.reloadNow(trigger: "POST /reload")
      done(status, body)
    }
  }
}
