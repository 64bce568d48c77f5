import NIOCore
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// WebSocket: a route with `websocket: true` lets the upgrade through, and the upstream's 101
/// turns the client and upstream connections into a `Splice` (docs/configuration.md#websocket).
extension ServerHandler {
  /// `GET` with `Upgrade: websocket` and `Connection: upgrade` (RFC 6455 §4.1), HTTP/1.1.
  static func asksForWebSocket(_ head: RequestHead) -> Bool {
    guard head.versionMinor >= 1, head.method == "GET", head.connectionNamesHeaders,
      head.fields.connectionTokens().contains("upgrade"), let upgrade = head.fields.first("upgrade")
    else { return false }
    return upgrade.split(separator: ",").contains { $0.trimmingASCIIWhitespace().lowercased() == "websocket" }
  }

  /// The upstream's 101 to an upgrade the route allowed: the 101 goes to the client, then
  /// bytes pass both ways unchanged until either side closes or the stream is idle for the
  /// route's `stream_idle_timeout`. The access log line is written when the tunnel ends.
  func upstreamSwitchedProtocols(_ head: ResponseHead, rest: ByteBuffer) -> Bool {
    guard let exchange, let context, let route = exchange.route, !exchange.finished, exchange.upgrade,
      let upstream = exchange.upstream, let value = head.fields.first("upgrade"),
      value.trimmingASCIIWhitespace().lowercased() == "websocket"
    else { return false }
    exchange.upstreamStatus = 101
    exchange.status = 101
    exchange.responseStarted = true
    exchange.noResponseBody = true
    deadlines.upstream = nil
    deadlines.body = nil
    loop.headBytes.removeAll()
    writeResponseHead(head, exchange, into: &loop.headBytes)
    let buffer = ResponseWriter.buffer(loop.headBytes, recycler: &loop.recycler, allocator: allocator)
    exchange.bytesOut += buffer.readableBytes
    writeToClient(context, buffer)
    flushClient()
    let splice = Splice(
      client: self, clientContext: context, idle: route.streamIdleNanos, metrics: nil,
      onEnd: { [self] toUpstream, toClient in tunnelEnded(exchange, toUpstream: toUpstream, toClient: toClient) })
    splice.upstream = upstream
    upstream.splice = splice
    tunnel = splice
    if rest.readableBytes > 0 {
      splice.fromUpstream(rest)
      splice.flushClient()
    }
    if let input = pendingInput {
      // Frames the client sent right behind its request, before the 101.
      pendingInput = nil
      splice.fromClient(input)
      splice.flushUpstream()
    }
    resumeReadsIfNeeded()
    return true
  }

  func setHoldReads(_ hold: Bool) {
    tunnelHoldsReads = hold
    if !hold { resumeReadsIfNeeded() }
  }

  func tunnelEnded(_ exchange: Exchange, toUpstream: Int, toClient: Int) {
    closing = true
    exchange.bodyReceived += toUpstream
    exchange.bytesOut += toClient
    detachUpstream(exchange)
    finish(exchange, status: 101)
    if self.exchange === exchange { self.exchange = nil }
  }
}
