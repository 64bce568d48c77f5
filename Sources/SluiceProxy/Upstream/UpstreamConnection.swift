import NIOCore
import NIOHTTP1
import NIOPosix
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// What an upstream connection reports to the request that is using it. Both sides live on
/// the same event loop, so these are plain synchronous calls.
protocol UpstreamDelegate: AnyObject {
  func upstreamResponseHead(_ head: HTTPResponseHead)
  func upstreamResponseBody(_ body: ByteBuffer)
  func upstreamResponseEnd(_ trailers: HTTPHeaders?)
  func upstreamReadComplete()
  func upstreamWritabilityChanged(writable: Bool)
  /// The connection failed or closed before the response ended.
  func upstreamFailed(_ error: (any Error)?)
}

/// The handler at the end of an upstream channel's pipeline, and the pool's handle on it.
/// It forwards response parts to its current delegate and holds reads while the client side
/// cannot take more (backpressure).
final class UpstreamConnection: ChannelDuplexHandler {
  typealias InboundIn = HTTPClientResponsePart
  typealias OutboundIn = HTTPClientRequestPart
  typealias OutboundOut = HTTPClientRequestPart

  let key: String
  let backendName: String
  weak var pool: UpstreamPool?
  weak var delegate: (any UpstreamDelegate)?
  var context: ChannelHandlerContext?
  var holdReads = false
  var pendingRead = false
  /// Upstream asked to close after this response (or spoke HTTP/1.0 without keep-alive).
  var reusable = true
  var idleSince: NIODeadline = .now()
  var closed = false
  /// While the connection sits idle in the pool: the gauge it counts in.
  var idleGauge: Gauge?

  init(key: String, backendName: String, pool: UpstreamPool) {
    self.key = key
    self.backendName = backendName
    self.pool = pool
  }

  var isWritable: Bool { context?.channel.isWritable ?? false }
  var isActive: Bool { !closed && (context?.channel.isActive ?? false) }

  func handlerAdded(context: ChannelHandlerContext) { self.context = context }

  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard delegate != nil else {
      // Bytes from an upstream nobody asked (an idle pooled connection, or after a request
      // gave up on it): the connection's state is unknown, so it must never be reused.
      close()
      return
    }
    switch unwrapInboundIn(data) {
    case .head(let head):
      if head.headers.contains(name: "connection") {
        for token in HeaderRules.connectionTokens(head.headers["connection"]) where token == "close" {
          reusable = false
        }
      }
      if head.version.major == 1 && head.version.minor == 0 && !head.isKeepAlive { reusable = false }
      delegate?.upstreamResponseHead(head)
    case .body(let body):
      delegate?.upstreamResponseBody(body)
    case .end(let trailers):
      let delegate = self.delegate
      self.delegate = nil
      delegate?.upstreamResponseEnd(trailers)
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    delegate?.upstreamReadComplete()
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    delegate?.upstreamWritabilityChanged(writable: context.channel.isWritable)
    context.fireChannelWritabilityChanged()
  }

  func channelInactive(context: ChannelHandlerContext) {
    closed = true
    pool?.forget(self)
    if let delegate = self.delegate {
      self.delegate = nil
      delegate.upstreamFailed(nil)
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    closed = true
    if let delegate = self.delegate {
      self.delegate = nil
      delegate.upstreamFailed(error)
    }
    context.close(promise: nil)
  }

  func read(context: ChannelHandlerContext) {
    if holdReads {
      pendingRead = true
    } else {
      context.read()
    }
  }

  func setHoldReads(_ hold: Bool) {
    holdReads = hold
    if !hold && pendingRead, let context {
      pendingRead = false
      context.read()
    }
  }

  func write(_ part: HTTPClientRequestPart, flush: Bool = false) {
    guard let context else { return }
    if flush {
      context.writeAndFlush(wrapOutboundOut(part), promise: nil)
    } else {
      context.write(wrapOutboundOut(part), promise: nil)
    }
  }

  func flush() { context?.flush() }

  func close() {
    closed = true
    delegate = nil
    context?.close(promise: nil)
  }
}

/// Keep-alive connections to upstream endpoints, one pool per event loop, keyed by endpoint
/// address. Keyed by address (not by backend) so pools survive a reload that renames or
/// re-weights backends, and a request never crosses threads to use one.
final class UpstreamPool {
  let eventLoop: any EventLoop
  var idle: [String: [UpstreamConnection]] = [:]
  var addresses: [String: SocketAddress] = [:]
  static let maxIdlePerEndpoint = 512

  init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

  /// An idle, still-open connection to `key`, most recently used first.
  func take(_ key: String) -> UpstreamConnection? {
    while var list = idle[key], let connection = list.popLast() {
      idle[key] = list
      leaveIdle(connection)
      if connection.isActive { return connection }
    }
    return nil
  }

  /// Back into the pool (or closed when it cannot be reused or the pool is full). The
  /// `sluice_upstream_connections{state="idle"}` gauge is kept here, in one place.
  func release(_ connection: UpstreamConnection, idleGauge: Gauge?) {
    guard connection.isActive, connection.reusable else {
      connection.close()
      return
    }
    connection.idleSince = .now()
    connection.setHoldReads(false)
    var list = idle[connection.key, default: []]
    if list.count >= Self.maxIdlePerEndpoint {
      connection.close()
      return
    }
    list.append(connection)
    idle[connection.key] = list
    connection.idleGauge = idleGauge
    idleGauge?.add(1)
  }

  func leaveIdle(_ connection: UpstreamConnection) {
    connection.idleGauge?.add(-1)
    connection.idleGauge = nil
  }

  /// The connection closed: drop it from the idle list if it was there.
  func forget(_ connection: UpstreamConnection) {
    guard var list = idle[connection.key], let index = list.firstIndex(where: { $0 === connection }) else { return }
    list.remove(at: index)
    idle[connection.key] = list
    leaveIdle(connection)
  }

  func closeIdle(olderThan age: TimeAmount) {
    let cutoff = NIODeadline.now() - age
    for (key, list) in idle where list.contains(where: { $0.idleSince < cutoff }) {
      idle[key] = list.filter { $0.idleSince >= cutoff }
      for connection in list where connection.idleSince < cutoff {
        leaveIdle(connection)
        connection.close()
      }
    }
  }

  func idleCounts() -> [String: Int] {
    var out: [String: Int] = [:]
    for (key, list) in idle { out[key] = list.count }
    return out
  }

  /// Opens a new connection to `endpoint` on this loop.
  func connect(
    endpoint: EndpointRuntime, backendName: String, timeout: TimeAmount
  ) -> EventLoopFuture<UpstreamConnection> {
    let key = endpoint.key
    let bootstrap = ClientBootstrap(group: eventLoop)
      .connectTimeout(timeout)
      .channelOption(.tcpOption(.tcp_nodelay), value: 1)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let sync = channel.pipeline.syncOperations
          var encoderConfig = HTTPRequestEncoder.Configuration()
          encoderConfig.automaticallySetFramingHeaders = false
          try sync.addHandler(HTTPRequestEncoder(configuration: encoderConfig))
          try sync.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
        }
      }
    let connected: EventLoopFuture<any Channel>
    if let address = addresses[key] {
      connected = bootstrap.connect(to: address)
    } else if let ip = IPAddress.parse(endpoint.address.host) {
      do {
        let address = try SocketAddress(ipAddress: IPAddress.format(ip), port: endpoint.address.port)
        addresses[key] = address
        connected = bootstrap.connect(to: address)
      } catch {
        return eventLoop.makeFailedFuture(error)
      }
    } else {
      connected = bootstrap.connect(host: endpoint.address.host, port: endpoint.address.port)
    }
    return connected.hop(to: eventLoop).assumeIsolated().flatMapThrowing { channel in
      let connection = UpstreamConnection(key: key, backendName: backendName, pool: self)
      try channel.pipeline.syncOperations.addHandler(connection)
      return connection
    }.nonisolated()
  }
}
