import NIOCore
import SluiceConfig
import SluiceCore

/// One end of a splice: a channel handler that can hold its reads (backpressure).
protocol SpliceSide: AnyObject {
  var spliceContext: ChannelHandlerContext? { get }
  func setHoldReads(_ hold: Bool)
}

/// Bytes passed both ways, unchanged, between two channels on one event loop: a
/// `tls_passthrough` connection and its upstream, or a WebSocket after the upstream's 101.
/// A side that cannot take more holds the other side's reads until it drains (the same
/// watermarks as the HTTP path). Quiet for `idle` in both directions, or closed by either side,
/// ends both; `onEnd` hears the byte counts once.
///
/// Both sides are weak: each side's handler holds the splice, its channel's pipeline holds the
/// handler, so the splice goes when both channels are gone.
final class Splice {
  weak var client: (any SpliceSide)?
  weak var upstream: (any SpliceSide)?
  let idleNanos: Int64
  let metrics: TCPMetrics?
  var onEnd: ((_ toUpstream: Int, _ toClient: Int) -> Void)?
  var bytesToUpstream = 0
  var bytesToClient = 0
  var lastActivity: NIODeadline
  var timer: Scheduled<Void>?
  var ended = false
  var upstreamUnflushed = false
  var clientUnflushed = false
  let eventLoop: any EventLoop

  init(
    client: any SpliceSide, clientContext: ChannelHandlerContext, idle: Int64, metrics: TCPMetrics?,
    onEnd: @escaping (Int, Int) -> Void
  ) {
    self.client = client
    self.idleNanos = idle
    self.metrics = metrics
    self.onEnd = onEnd
    self.eventLoop = clientContext.eventLoop
    self.lastActivity = .now()
    armIdle(after: idle)
  }

  func armIdle(after nanos: Int64) {
    timer = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanos)) { [self] in
      guard !ended else { return }
      let quiet = (NIODeadline.now() - lastActivity).nanoseconds
      if quiet >= idleNanos {
        if Log.enabled(.debug) { Log.debug("stream idle timeout", [("idle_ms", String(quiet / 1_000_000))]) }
        closeBoth()
      } else {
        armIdle(after: idleNanos - quiet)
      }
    }
  }

  func fromClient(_ buffer: ByteBuffer) {
    guard !ended, let context = upstream?.spliceContext else { return }
    let size = buffer.readableBytes
    bytesToUpstream += size
    metrics?.bytesToUpstream.increment(by: size)
    lastActivity = .now()
    context.write(NIOAny(buffer), promise: nil)
    upstreamUnflushed = true
    if !context.channel.isWritable {
      client?.setHoldReads(true)
      flushUpstream()
    }
  }

  func fromUpstream(_ buffer: ByteBuffer) {
    guard !ended, let context = client?.spliceContext else { return }
    let size = buffer.readableBytes
    bytesToClient += size
    metrics?.bytesToClient.increment(by: size)
    lastActivity = .now()
    context.write(NIOAny(buffer), promise: nil)
    clientUnflushed = true
    if !context.channel.isWritable {
      upstream?.setHoldReads(true)
      flushClient()
    }
  }

  func flushUpstream() {
    guard upstreamUnflushed, let context = upstream?.spliceContext else { return }
    upstreamUnflushed = false
    context.flush()
  }

  func flushClient() {
    guard clientUnflushed, let context = client?.spliceContext else { return }
    clientUnflushed = false
    context.flush()
  }

  func clientWritabilityChanged(_ writable: Bool) { upstream?.setHoldReads(!writable) }
  func upstreamWritabilityChanged(_ writable: Bool) { client?.setHoldReads(!writable) }

  /// The client went away: what it sent is flushed upstream, then the upstream is closed.
  func clientClosed() {
    guard !ended else { return }
    if let context = upstream?.spliceContext {
      context.writeAndFlush(NIOAny(ByteBuffer())).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
    end()
  }

  /// The upstream went away: what it sent is flushed to the client, then the client is closed.
  func upstreamClosed() {
    guard !ended else { return }
    if let context = client?.spliceContext {
      context.writeAndFlush(NIOAny(ByteBuffer())).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
    end()
  }

  func closeBoth() {
    upstream?.spliceContext?.close(promise: nil)
    client?.spliceContext?.close(promise: nil)
    end()
  }

  func end() {
    guard !ended else { return }
    ended = true
    timer?.cancel()
    timer = nil
    let report = onEnd
    onEnd = nil
    report?(bytesToUpstream, bytesToClient)
  }
}

/// The upstream channel's only handler in a `tls_passthrough` splice.
final class SpliceUpstreamHandler: ChannelDuplexHandler, SpliceSide {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer

  let splice: Splice
  var spliceContext: ChannelHandlerContext?
  var holdReads = false
  var pendingRead = false

  init(splice: Splice) { self.splice = splice }

  func handlerAdded(context: ChannelHandlerContext) {
    spliceContext = context
    splice.upstream = self
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    splice.fromUpstream(unwrapInboundIn(data))
  }

  func channelReadComplete(context: ChannelHandlerContext) { splice.flushClient() }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    splice.upstreamWritabilityChanged(context.channel.isWritable)
  }

  func channelInactive(context: ChannelHandlerContext) {
    splice.upstreamClosed()
    spliceContext = nil
  }

  /// Cuts the handler ↔ context cycle (see `ServerHandler.handlerRemoved`).
  func handlerRemoved(context: ChannelHandlerContext) { spliceContext = nil }

  func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

  func read(context: ChannelHandlerContext) {
    if holdReads {
      pendingRead = true
    } else {
      context.read()
    }
  }

  func setHoldReads(_ hold: Bool) {
    holdReads = hold
    if !hold && pendingRead, let context = spliceContext {
      pendingRead = false
      context.read()
    }
  }
}
