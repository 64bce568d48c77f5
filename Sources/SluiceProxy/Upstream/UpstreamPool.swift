import NIOCore
import NIOPosix
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// A request that waits in an endpoint's queue for a connection (`UpstreamPool.acquire`).
protocol UpstreamWaiter: AnyObject {
  /// Whether the request `exchange` still wants a connection (it has not finished and its
  /// client is still there). The pool skips waiters that no longer do.
  func wantsConnection(for exchange: Exchange) -> Bool
  /// A connection for `exchange`; `reused` when it served an earlier request.
  func upstreamReady(_ connection: UpstreamConnection, for exchange: Exchange, reused: Bool)
  /// No connection could be opened for `exchange`.
  func upstreamConnectFailed(_ error: any Error, for exchange: Exchange)
}

/// Keep-alive connections to upstream endpoints, one pool per event loop, keyed by endpoint
/// address. Keyed by address (not by backend) so pools survive a reload that renames or
/// re-weights backends, and a request never crosses threads to use one.
///
/// A request that finds no idle connection waits in its endpoint's queue for the first
/// connection that comes free, new or returning; `ConnectPolicy` says how many connects are
/// opened for the queue and who fails when they cannot be.
final class UpstreamPool {
  /// One endpoint's connections on this loop. A class so that taking and returning a connection
  /// mutates the lists in place: a dictionary of arrays copied the array on every request
  /// (3 of ~14 allocations per proxied request in the malloc profile).
  final class EndpointConnections {
    /// Idle keep-alive connections, most recently used last.
    var idle: [UpstreamConnection] = []
    /// Established and not yet closed: idle or serving a request.
    var open = 0
    /// Connects in flight.
    var connecting = 0
    /// The fastest connect so far: tells a near endpoint from a far one (`ConnectPolicy`).
    var fastestConnectNanos: UInt64?
    /// Requests waiting for a connection, oldest first from `head`.
    var waiters: [(waiter: any UpstreamWaiter, exchange: Exchange)] = []
    var head = 0
    var waiting: Int { waiters.count - head }
    /// The endpoint and backend of the latest request that waited: what new connects are opened
    /// with (its connect timeout, the backend's connect-failure counter and idle gauge).
    var target: (endpoint: EndpointRuntime, backend: BackendRuntime)?

    func popWaiter() -> (waiter: any UpstreamWaiter, exchange: Exchange)? {
      guard head < waiters.count else { return nil }
      let first = waiters[head]
      head += 1
      if head == waiters.count {
        waiters.removeAll(keepingCapacity: true)
        head = 0
      }
      return first
    }
  }

  let eventLoop: any EventLoop
  var endpoints: [String: EndpointConnections] = [:]
  /// The endpoint `take` found last: with one backend endpoint (a sidecar) every request asks
  /// for the same key, and comparing a string to itself skips the dictionary's hashing.
  private var lastKey = ""
  private var lastEndpoint: EndpointConnections?
  var addresses: [String: SocketAddress] = [:]
  /// One bootstrap per connect timeout, reused for every connection: building one per
  /// connection (the object and its option storage) was part of what a new upstream connection
  /// costs in user space, which bursts pay many times over (bench/RESULTS.md).
  var bootstraps: [Int64: ClientBootstrap] = [:]
  static let maxIdlePerEndpoint = 512

  init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

  func state(_ key: String) -> EndpointConnections {
    if let last = lastEndpoint, key == lastKey { return last }
    let found: EndpointConnections
    if let existing = endpoints[key] {
      found = existing
    } else {
      found = EndpointConnections()
      endpoints[key] = found
    }
    lastKey = key
    lastEndpoint = found
    return found
  }

  /// An idle, still-open connection to `key`, most recently used first.
  func take(_ key: String) -> UpstreamConnection? {
    let list = state(key)
    while let connection = list.idle.popLast() {
      leaveIdle(connection)
      if connection.isActive { return connection }
    }
    return nil
  }

  /// An idle connection for `exchange` at once, or nil: then the request waits in the
  /// endpoint's queue and `waiter` hears of it (`upstreamReady` or `upstreamConnectFailed`).
  func acquire(
    _ endpoint: EndpointRuntime, backend: BackendRuntime, waiter: any UpstreamWaiter, exchange: Exchange
  ) -> UpstreamConnection? {
    if let connection = take(endpoint.poolKey) { return connection }
    let state = state(endpoint.poolKey)
    state.waiters.append((waiter, exchange))
    state.target = (endpoint, backend)
    startConnects(state)
    return nil
  }

  /// Opens the connects `ConnectPolicy` allows for the endpoint's queue. Called after every
  /// change of the queue or the connection counts while requests wait, so that a waiting
  /// request always has a connect in flight or a connection in use ahead of it.
  func startConnects(_ state: EndpointConnections) {
    guard let (endpoint, backend) = state.target else { return }
    // Asked again after each connect: one that fails at once (a refused loopback connect) has
    // already failed waiting requests and changed the counts by the time `connect` returns.
    while ConnectPolicy.connectsToStart(
      waiting: state.waiting, connecting: state.connecting, open: state.open,
      fastestConnectNanos: state.fastestConnectNanos) > 0
    {
      state.connecting += 1
      connect(state, endpoint: endpoint, backend: backend)
    }
  }

  /// Whether a queue entry still waits here: its request wants a connection, and for this
  /// endpoint (a retry may have moved it to another one, leaving this entry behind).
  static func stillWaiting(_ entry: (waiter: any UpstreamWaiter, exchange: Exchange), in state: EndpointConnections) -> Bool {
    entry.exchange.endpoint?.poolKey == state.target?.endpoint.poolKey && entry.waiter.wantsConnection(for: entry.exchange)
  }

  /// Hands `connection` to the oldest request still waiting for one; false when none is.
  private func handOver(_ connection: UpstreamConnection, reused: Bool) -> Bool {
    let state = connection.endpoint
    while let next = state.popWaiter() {
      if Self.stillWaiting(next, in: state) {
        next.waiter.upstreamReady(connection, for: next.exchange, reused: reused)
        return true
      }
    }
    return false
  }

  /// A connection whose request ended: to the next waiting request, else back into the idle
  /// list (or closed when it cannot be reused or the list is full).
  func release(_ connection: UpstreamConnection, idleGauge: Gauge?, now: NIODeadline = .now()) {
    guard connection.isActive, connection.reusable else {
      connection.close()
      return
    }
    if connection.endpoint.waiting > 0, handOver(connection, reused: true) { return }
    park(connection, idleGauge: idleGauge, now: now)
  }

  /// Into the idle list. The `sluice_upstream_connections{state="idle"}` gauge is kept here,
  /// in one place.
  private func park(_ connection: UpstreamConnection, idleGauge: Gauge?, now: NIODeadline) {
    let list = connection.endpoint
    guard list.idle.count < Self.maxIdlePerEndpoint else {
      connection.close()
      return
    }
    connection.idleSince = now
    connection.setHoldReads(false)
    list.idle.append(connection)
    connection.idleGauge = idleGauge
    idleGauge?.add(1)
  }

  func leaveIdle(_ connection: UpstreamConnection) {
    connection.idleGauge?.add(-1)
    connection.idleGauge = nil
  }

  /// The connection closed: it no longer counts as open, and leaves the idle list if it was there.
  func forget(_ connection: UpstreamConnection) {
    let state = connection.endpoint
    state.open -= 1
    if let index = state.idle.firstIndex(where: { $0 === connection }) {
      state.idle.remove(at: index)
      leaveIdle(connection)
    }
    startConnects(state)
  }

  func closeIdle(olderThan age: TimeAmount) {
    let cutoff = NIODeadline.now() - age
    for state in endpoints.values where state.idle.contains(where: { $0.idleSince < cutoff }) {
      let old = state.idle.filter { $0.idleSince < cutoff }
      state.idle.removeAll { $0.idleSince < cutoff }
      for connection in old {
        leaveIdle(connection)
        connection.close()
      }
    }
  }

  func idleCounts() -> [String: Int] {
    var out: [String: Int] = [:]
    for (key, state) in endpoints { out[key] = state.idle.count }
    return out
  }

  /// Opens a new connection to `endpoint` on this loop, for the endpoint's queue.
  private func connect(_ state: EndpointConnections, endpoint: EndpointRuntime, backend: BackendRuntime) {
    let key = endpoint.poolKey
    let timeout = backend.config.connectTimeout.timeAmount
    let bootstrap: ClientBootstrap
    if let existing = bootstraps[timeout.nanoseconds] {
      bootstrap = existing
    } else {
      bootstrap = ClientBootstrap(group: eventLoop)
        .connectTimeout(timeout)
        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
      bootstraps[timeout.nanoseconds] = bootstrap
    }
    let started = WallClock.monotonicNanoseconds()
    let connected: EventLoopFuture<any Channel>
    if let address = addresses[key] {
      connected = bootstrap.connect(to: address)
    } else if let ip = IPAddress.parse(endpoint.address.host) {
      do {
        let address = try SocketAddress(ipAddress: IPAddress.format(ip), port: endpoint.address.port)
        addresses[key] = address
        connected = bootstrap.connect(to: address)
      } catch {
        connected = eventLoop.makeFailedFuture(error)
      }
    } else {
      connected = bootstrap.connect(host: endpoint.address.host, port: endpoint.address.port)
    }
    let ready: EventLoopFuture<any Channel>
    if let tls = endpoint.tls {
      // TLS to the upstream: the connection counts as made once the handshake is done, so a
      // wrong name or an untrusted chain fails like a refused connect (502, retried as one).
      ready = connected.flatMap { channel in
        UpstreamTLS.handshake(channel, tls.context, serverName: tls.serverName, timeout: timeout)
      }
    } else {
      ready = connected
    }
    ready.hop(to: eventLoop).assumeIsolated().whenComplete { [self] result in
      state.connecting -= 1
      switch result {
      case .success(let channel):
        let connection = UpstreamConnection(endpoint: state, pool: self)
        do {
          try channel.pipeline.syncOperations.addHandler(connection)
          // Closed before the handler was there: it would never hear `channelInactive`.
          guard channel.isActive else { throw ChannelError.alreadyClosed }
        } catch {
          channel.close(promise: nil)
          connectFailed(state, error, endpoint: endpoint, backend: backend)
          return
        }
        state.open += 1
        let took = WallClock.monotonicNanoseconds() &- started
        if took < state.fastestConnectNanos ?? .max { state.fastestConnectNanos = took }
        if !handOver(connection, reused: false) {
          park(connection, idleGauge: backend.idleConnections, now: .now())
        }
        startConnects(state)
      case .failure(let error):
        if let tlsError = error as? UpstreamTLS.Failure {
          Log.warning(
            "upstream TLS handshake failed",
            [("backend", backend.name), ("endpoint", endpoint.key), ("reason", tlsError.reason)])
        }
        connectFailed(state, error, endpoint: endpoint, backend: backend)
      }
    }
  }

  private func connectFailed(
    _ state: EndpointConnections, _ error: any Error, endpoint: EndpointRuntime, backend: BackendRuntime
  ) {
    backend.connectFailures.increment()
    var failures = ConnectPolicy.failuresAfterConnectError(
      waiting: state.waiting, connecting: state.connecting, open: state.open)
    while failures > 0, let next = state.popWaiter() {
      guard Self.stillWaiting(next, in: state) else { continue }
      failures -= 1
      next.waiter.upstreamConnectFailed(error, for: next.exchange)
    }
    startConnects(state)
  }
}
