import NIOCore
import NIOPosix
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// What an upstream connection reports to the request that is using it. Both sides live on
/// the same event loop, so these are plain synchronous calls.
protocol UpstreamDelegate: AnyObject {
  func upstreamResponseHead(_ head: ResponseHead)
  func upstreamResponseBody(_ body: ByteBuffer)
  /// The response is complete; `trailers` are the raw trailer lines of a chunked body.
  func upstreamResponseEnd(_ trailers: ByteBuffer?)
  func upstreamReadComplete()
  /// A 101 to a request that asked to upgrade; `rest` holds the bytes after its head. True:
  /// the connection is now a tunnel (`splice`); false: it fails as an invalid response.
  func upstreamSwitchedProtocols(_ head: ResponseHead, rest: ByteBuffer) -> Bool
  func upstreamWritabilityChanged(writable: Bool)
  /// The connection failed or closed before the response ended.
  func upstreamFailed(_ error: (any Error)?)
}

/// An upstream broke HTTP/1.1 framing; the connection is closed, never reused.
struct UpstreamProtocolError: Error, CustomStringConvertible {
  let description: String
}

/// The only handler of an upstream channel, and the pool's handle on it. It parses response
/// heads and bodies itself (`HeadReader`, `HeadParser`, `BodyDecoder`), hands them to its
/// current delegate, writes request bytes the client side framed, and holds reads while the
/// client cannot take more (backpressure).
final class UpstreamConnection: ChannelDuplexHandler, SpliceSide {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  static let maxResponseHeadBytes = 65536
  static let maxResponseHeaders = 256

  weak var pool: UpstreamPool?
  /// The request using this connection. Strong (a `weak` load cost atomics on every read):
  /// every path that ends a request's use of the connection sets it back to nil (response
  /// end, failure, close), which breaks the cycle with the client handler.
  var delegate: (any UpstreamDelegate)?
  var context: ChannelHandlerContext?
  var holdReads = false
  var pendingRead = false
  /// Upstream asked to close after this response (or spoke HTTP/1.0 without keep-alive).
  var reusable = true
  var idleSince: NIODeadline = .now()
  var closed = false
  /// While the connection sits idle in the pool: the gauge it counts in.
  var idleGauge: Gauge?
  /// The pool's state for this connection's endpoint, found once (not per release).
  let endpoint: UpstreamPool.EndpointConnections
  /// Set by the request that writes to this connection: a response to HEAD has no body.
  var requestIsHEAD = false
  /// The request asked to upgrade (a WebSocket route): a 101 is expected, not an error.
  var requestUpgrades = false
  /// After a 101: the tunnel this connection's bytes go to, unparsed. Never pooled again.
  var splice: Splice?
  var spliceContext: ChannelHandlerContext? { closed ? nil : context }
  var headReader = HeadReader(requests: false)
  /// The field list of the last response head, refilled by the next one without allocating
  /// (the head is gone by then).
  var fieldStorage: [HeaderField] = []
  /// The response body being read; `.done` while waiting for a head.
  var body = BodyDecoder()

  init(endpoint: UpstreamPool.EndpointConnections, pool: UpstreamPool) {
    self.endpoint = endpoint
    self.pool = pool
  }

  /// Kept here instead of read through `context.channel` (see `ServerHandler.allocator`).
  var allocator = ByteBufferAllocator()
  var writable = true
  var isWritable: Bool { context != nil && writable }
  /// Open and usable. `closed` is set by every way a connection ends (our `close`, NIO's
  /// `channelInactive` and `errorCaught`, which NIO runs in the same turn that closes the
  /// socket), so the channel's own `isActive` need not be asked on each pool take and release.
  var isActive: Bool { !closed && context != nil }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    allocator = context.channel.allocator
    writable = context.channel.isWritable
  }

  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if let splice {
      splice.fromUpstream(unwrapInboundIn(data))
      return
    }
    guard delegate != nil else {
      // Bytes from an upstream nobody asked (an idle pooled connection, or after a request
      // gave up on it): the connection's state is unknown, so it must never be reused.
      close()
      return
    }
    var buffer = unwrapInboundIn(data)
    while let delegate {
      if !body.isDone {
        let event: BodyDecoder.Event?
        do {
          event = try body.next(&buffer)
        } catch {
          fail("invalid response body framing")
          return
        }
        switch event {
        case nil:
          return
        case .data(let data):
          delegate.upstreamResponseBody(data)
        case .end(let trailers):
          // Bytes after a complete response were never asked for: do not reuse.
          if buffer.readableBytes > 0 { reusable = false }
          self.delegate = nil
          delegate.upstreamResponseEnd(trailers)
          if buffer.readableBytes > 0 { close() }
          return
        }
        continue
      }
      switch headReader.take(&buffer, limit: Self.maxResponseHeadBytes) {
      case .incomplete:
        return
      case .bareLF, .notHTTP:
        fail("bare LF in response head")
        return
      case .tooLarge:
        fail("response head too large")
        return
      case .head(let bytes):
        switch HeadParser.parseResponse(
          bytes, requestWasHEAD: requestIsHEAD, maxHeaders: Self.maxResponseHeaders, storage: &fieldStorage)
        {
        case .failure(let why):
          fail(why.description)
          return
        case .success(let head):
          if head.status < 200 {
            // Interim responses (100 Continue, 103 Early Hints) are not forwarded; Sluice
            // answers `Expect` itself. 101 cannot be right: Upgrade is never forwarded.
            if head.status == 101 {
              guard requestUpgrades else {
                fail("unexpected 101 Switching Protocols")
                return
              }
              reusable = false
              let rest = buffer
              guard delegate.upstreamSwitchedProtocols(head, rest: rest) else {
                fail("invalid 101 Switching Protocols")
                return
              }
              self.delegate = nil
              return
            }
            continue
          }
          if !head.keepAlive { reusable = false }
          body = BodyDecoder(head.framing)  // `.none` ends on the next turn of this loop
          delegate.upstreamResponseHead(head)
        }
      }
    }
  }

  private func fail(_ why: String) {
    reusable = false
    if let delegate = self.delegate {
      self.delegate = nil
      delegate.upstreamFailed(UpstreamProtocolError(description: why))
    }
    close()
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    if let splice {
      splice.flushClient()
      return
    }
    delegate?.upstreamReadComplete()
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    writable = context.channel.isWritable
    if let splice {
      splice.upstreamWritabilityChanged(writable)
      return
    }
    delegate?.upstreamWritabilityChanged(writable: writable)
    context.fireChannelWritabilityChanged()
  }

  func channelInactive(context: ChannelHandlerContext) {
    closed = true
    pool?.forget(self)
    if let splice {
      self.splice = nil
      splice.upstreamClosed()
      return
    }
    guard let delegate = self.delegate else { return }
    self.delegate = nil
    if body.finishAtClose() {
      // A body delimited by the close: this is its end.
      reusable = false
      var empty = ByteBuffer()
      if case .end(let trailers)? = try? body.next(&empty) {
        delegate.upstreamResponseEnd(trailers)
        return
      }
    }
    delegate.upstreamFailed(nil)
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

  /// A new request starts on this connection: the parser expects a response to it.
  func startRequest(isHEAD: Bool, upgrade: Bool = false) {
    requestIsHEAD = isHEAD
    requestUpgrades = upgrade
    headReader.reset()
    body = BodyDecoder()
  }

  func write(_ bytes: ByteBuffer, flush: Bool = false) {
    guard let context else { return }
    if flush {
      unflushed = false
      context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    } else {
      unflushed = true
      context.write(wrapOutboundOut(bytes), promise: nil)
    }
  }

  /// Flushes when something was written since the last flush (an empty flush still walks
  /// the pipeline, and the client side asks after every read).
  func flush() {
    guard unflushed, let context else { return }
    unflushed = false
    context.flush()
  }

  var unflushed = false

  func close() {
    closed = true
    delegate = nil
    context?.close(promise: nil)
  }
}
