import NIOCore
import NIOPosix
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// A connection drained on SIGTERM (`LoopContext.connections`).
protocol DrainableConnection: AnyObject {
  /// SIGTERM: stop taking new work; close when idle.
  func drain()
  /// The drain timeout passed: close now.
  func closeNow()
}

/// The only handler of a `tls_passthrough` connection: reads the ClientHello without
/// terminating TLS (at most 16 KiB, within the listener's `request_header_timeout`), routes on
/// its server name, connects to an endpoint of the route's `protocol: tcp` backend, replays the
/// hello there and then splices bytes both ways (`Splice`). A hello that does not parse, or a
/// name no route takes, closes the connection.
final class PassthroughHandler: ChannelDuplexHandler, DrainableConnection, SpliceSide {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  let loop: LoopContext
  let listener: ListenerRuntime
  var context: ChannelHandlerContext?
  var spliceContext: ChannelHandlerContext? { closed ? nil : context }
  var hello: ByteBuffer?
  var splice: Splice?
  var connecting = false
  var timer: Scheduled<Void>?
  var closed = false
  var holdReads = false
  var pendingRead = false
  /// The client's address as a JSON literal for the log line (read at accept: a closed
  /// channel may no longer say).
  var peer: JSONString = .empty

  init(loop: LoopContext, listener: ListenerRuntime) {
    self.loop = loop
    self.listener = listener
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    peer = JSONString(ListenerServer.peer(context.channel.remoteAddress).0)
    loop.connections[ObjectIdentifier(self)] = self
    listener.activeConnections.add(1)
    let limit = listener.config.limits.requestHeaderTimeout.timeAmount
    timer = context.eventLoop.assumeIsolated().scheduleTask(in: limit) { [self] in
      if splice == nil {
        refuse("no ClientHello within \(listener.config.limits.requestHeaderTimeout)", code: "request_timeout")
      }
    }
  }

  /// Cuts the handler ↔ context cycle (see `ServerHandler.handlerRemoved`).
  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  func channelInactive(context: ChannelHandlerContext) {
    closed = true
    timer?.cancel()
    splice?.clientClosed()
    splice = nil
    loop.connections[ObjectIdentifier(self)] = nil
    listener.activeConnections.add(-1)
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }

  func drain() {
    // A spliced stream gets the drain timeout to finish; one still choosing its route closes.
    if splice == nil { context?.close(promise: nil) }
  }

  func closeNow() {
    if let splice {
      splice.closeBoth()
    } else {
      context?.close(promise: nil)
    }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var incoming = unwrapInboundIn(data)
    if let splice {
      splice.fromClient(incoming)
      return
    }
    if connecting {
      hello!.writeBuffer(&incoming)
      return
    }
    if hello == nil {
      hello = incoming
    } else {
      hello!.writeBuffer(&incoming)
    }
    switch hello!.withUnsafeReadableBytes({ ClientHelloParser.parse($0) }) {
    case .needMore:
      if hello!.readableBytes > ClientHelloParser.maxBytes + 1024 { refuse("ClientHello larger than 16 KiB") }
    case .invalid(let why):
      refuse(why)
    case .hello(let info):
      route(info.serverName)
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    splice?.flushUpstream()
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    splice?.clientWritabilityChanged(context.channel.isWritable)
  }

  func read(context: ChannelHandlerContext) {
    if holdReads || connecting {
      pendingRead = true
    } else {
      context.read()
    }
  }

  func setHoldReads(_ hold: Bool) {
    holdReads = hold
    if !hold && !connecting && pendingRead, let context {
      pendingRead = false
      context.read()
    }
  }

  /// Closes a connection that gets no splice; `code` is the access log's `error` (SPEC §5
  /// codes: `bad_request` for bytes that are not a ClientHello, `no_route`, `request_timeout`).
  func refuse(_ why: String, code: String = "bad_request", serverName: String? = nil) {
    guard let context, !closed else { return }
    listener.tcp[""]?.refused.increment()
    if Log.enabled(.debug) { Log.debug("tls_passthrough connection refused", [("listener", listener.name), ("reason", why)]) }
    hello = nil
    logLine(route: nil, backend: nil, endpoint: nil, serverName: serverName, error: code)
    context.close(promise: nil)
  }

  /// `match.server_name` over the listener's routes (a route without it takes every name, and
  /// a hello without a name).
  func route(_ serverName: String?) {
    let request = RouteRequest(method: "", host: "", path: "/", headers: HeaderList([]), serverName: serverName)
    guard let route = listener.router.payload(request) else {
      refuse("no route for server name \(serverName ?? "(none)")", code: "no_route", serverName: serverName)
      return
    }
    let target: BackendTarget
    switch route.target {
    case .backend(let t): target = t
    case .split(let choice, let targets): target = targets[choice.pick(roll: loop.random.next())]
    case .direct:
      refuse("route '\(route.name)' has no backend", code: "no_route", serverName: serverName)
      return
    }
    let backend = target.backend
    let index: Int
    if backend.checksAvailability {
      guard
        let found = backend.picker.pickAvailable(
          hashKey: nil, avoid: nil, now: { Int64(WallClock.monotonicNanoseconds()) }, using: &loop.random)
      else {
        refuse("no endpoint of backend '\(backend.name)' is available", code: "unavailable", serverName: serverName)
        return
      }
      index = found
    } else {
      index = backend.picker.pick(hashKey: nil, using: &loop.random)
    }
    let endpoint = backend.endpoints[index]
    connect(route: route, backend: backend, endpoint: endpoint, serverName: serverName)
  }

  func connect(route: RouteRuntime, backend: BackendRuntime, endpoint: EndpointRuntime, serverName: String?) {
    guard let context else { return }
    connecting = true
    let metrics = listener.tcp[backend.name]
    let started = WallClock.monotonicNanoseconds()
    endpoint.stats.inFlight.wrappingIncrement(ordering: .relaxed)
    endpoint.stats.requests.wrappingIncrement(ordering: .relaxed)
    let bootstrap = ClientBootstrap(group: context.eventLoop)
      .connectTimeout(backend.config.connectTimeout.timeAmount)
      .channelOption(.tcpOption(.tcp_nodelay), value: 1)
    let connected: EventLoopFuture<any Channel>
    if let ip = IPAddress.parse(endpoint.address.host),
      let address = try? SocketAddress(ipAddress: IPAddress.format(ip), port: endpoint.address.port)
    {
      connected = bootstrap.connect(to: address)
    } else {
      connected = bootstrap.connect(host: endpoint.address.host, port: endpoint.address.port)
    }
    connected.hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
      connecting = false
      switch result {
      case .failure(let error):
        endpoint.stats.inFlight.wrappingDecrement(ordering: .relaxed)
        backend.connectFailures.increment()
        metrics?.connectFailed.increment()
        Log.warning(
          "tls_passthrough: cannot connect upstream",
          [("listener", listener.name), ("backend", backend.name), ("endpoint", endpoint.key), ("error", "\(error)")])
        logLine(route: route, backend: backend, endpoint: endpoint, serverName: serverName, error: "bad_gateway")
        self.context?.close(promise: nil)
      case .success(let channel):
        guard !closed, let context = self.context else {
          endpoint.stats.inFlight.wrappingDecrement(ordering: .relaxed)
          channel.close(promise: nil)
          return
        }
        timer?.cancel()
        timer = nil
        metrics?.spliced.increment()
        let splice = Splice(
          client: self, clientContext: context, idle: route.streamIdleNanos, metrics: metrics,
          onEnd: { [self] bytesUp, bytesDown in
            endpoint.stats.inFlight.wrappingDecrement(ordering: .relaxed)
            logLine(
              route: route, backend: backend, endpoint: endpoint, serverName: serverName, error: nil,
              bytesIn: bytesUp, bytesOut: bytesDown, micros: Int((WallClock.monotonicNanoseconds() &- started) / 1000))
          })
        self.splice = splice
        do {
          try channel.pipeline.syncOperations.addHandler(SpliceUpstreamHandler(splice: splice))
        } catch {
          channel.close(promise: nil)
          return
        }
        if let first = hello {
          hello = nil
          splice.fromClient(first)
          splice.flushUpstream()
        }
        setHoldReads(false)
      }
    }
  }

  func logLine(
    route: RouteRuntime?, backend: BackendRuntime?, endpoint: EndpointRuntime?, serverName: String?, error: String?,
    bytesIn: Int = 0, bytesOut: Int = 0, micros: Int = 0
  ) {
    guard loop.accessLog.enabled else { return }
    var record = AccessLogRecord()
    record.timeMilliseconds = WallClock.nowMilliseconds() - Int64(micros / 1000)
    record.requestID = RequestID(random: &loop.random)
    record.clientIP = peer
    record.protocol = .tlsPassthrough
    record.route = route?.jsonName
    record.backend = backend?.jsonName
    record.endpoint = endpoint?.jsonKey
    record.bytesIn = bytesIn
    record.bytesOut = bytesOut
    record.durationMicroseconds = micros
    record.error = error
    record.serverName = serverName
    loop.accessLog.append(record)
  }
}
