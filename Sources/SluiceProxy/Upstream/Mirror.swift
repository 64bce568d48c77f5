import NIOCore
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// A fire-and-forget copy of a request to a route's `mirror` backend (a shadow deployment):
/// sent once the client's request is complete, on the same event loop and through the same
/// connection pool as proxied requests, its answer read and dropped. Nothing of it reaches the
/// client: its failures and slowness are counted (`sluice_mirror_requests_total`), never
/// waited for. At most `maxInFlight` copies per event loop are in flight; beyond that, and for
/// a body larger than the replay buffer, the copy is dropped and counted.
final class MirrorExchange: UpstreamWaiter, UpstreamDelegate {
  static let maxInFlight = 256

  let loop: LoopContext
  let exchange: Exchange
  let mirror: MirrorRuntime
  let head: ByteBuffer
  let body: [RequestPart]
  let chunked: Bool
  let timeout: TimeAmount
  var connection: UpstreamConnection?
  var timer: Scheduled<Void>?
  var done = false

  init(
    loop: LoopContext, exchange: Exchange, mirror: MirrorRuntime, head: ByteBuffer, body: [RequestPart], chunked: Bool,
    timeout: TimeAmount
  ) {
    self.loop = loop
    self.exchange = exchange
    self.mirror = mirror
    self.head = head
    self.body = body
    self.chunked = chunked
    self.timeout = timeout
  }

  /// Copies `original` (complete: head and kept body) to the route's mirror backend, unless
  /// the loop's mirrors in flight are at their bound.
  static func send(_ original: Exchange, _ mirror: MirrorRuntime, loop: LoopContext) {
    guard let head = original.upstreamHead, original.requestEnded, !original.replayLost,
      loop.mirrorsInFlight < maxInFlight
    else {
      mirror.dropped.increment()
      return
    }
    let backend = mirror.backend
    let key = ExchangeDriver.hashKey(backend.config.loadBalancing, original)
    let index: Int
    if backend.checksAvailability {
      guard
        let found = backend.picker.pickAvailable(
          hashKey: key, now: { Int64(WallClock.monotonicNanoseconds()) }, using: &loop.random)
      else {
        mirror.failed.increment()
        return
      }
      index = found
    } else {
      index = backend.picker.pick(hashKey: key, using: &loop.random)
    }
    // A request of its own for the pool's queue (the copy is never routed or logged).
    let copy = Exchange(
      graph: original.graph, listener: original.listener, head: original.head, requestID: original.requestID,
      startNanos: WallClock.monotonicNanoseconds())
    let endpoint = backend.endpoints[index]
    copy.endpoint = endpoint
    endpoint.stats.inFlight.wrappingIncrement(ordering: .relaxed)
    copy.countedInFlight = true
    let timeout = original.route?.config.timeout.timeAmount ?? .seconds(30)
    let sender = MirrorExchange(
      loop: loop, exchange: copy, mirror: mirror, head: head, body: original.kept, chunked: original.chunkedRequest,
      timeout: timeout)
    loop.mirrorsInFlight += 1
    mirror.sent.increment()
    sender.timer = loop.eventLoop.assumeIsolated().scheduleTask(in: timeout) { sender.finish(failed: true) }
    if let connection = loop.pool.acquire(endpoint, backend: backend, waiter: sender, exchange: copy) {
      sender.write(connection)
    }
  }

  func write(_ connection: UpstreamConnection) {
    self.connection = connection
    connection.delegate = self
    connection.startRequest(isHEAD: exchange.isHEAD)
    connection.setHoldReads(false)
    connection.write(head)
    for part in body {
      switch part {
      case .body(let bytes):
        if chunked {
          connection.write(ResponseWriter.chunkHeader(size: bytes.readableBytes, allocator: connection.allocator))
          connection.write(bytes)
          connection.write(ResponseWriter.crlf)
        } else {
          connection.write(bytes)
        }
      case .end(let trailers):
        if chunked { connection.write(ResponseWriter.lastChunk(trailers: trailers, allocator: connection.allocator)) }
      }
    }
    connection.flush()
  }

  func finish(failed: Bool) {
    guard !done else { return }
    done = true
    timer?.cancel()
    timer = nil
    if failed {
      mirror.failed.increment()
      connection?.close()
    }
    connection = nil
    loop.mirrorsInFlight -= 1
    if exchange.countedInFlight, let endpoint = exchange.endpoint {
      exchange.countedInFlight = false
      endpoint.stats.inFlight.wrappingDecrement(ordering: .relaxed)
    }
  }

  // MARK: UpstreamWaiter

  func wantsConnection(for exchange: Exchange) -> Bool { !done }

  func upstreamReady(_ connection: UpstreamConnection, for exchange: Exchange, reused: Bool) { write(connection) }

  func upstreamConnectFailed(_ error: any Error, for exchange: Exchange) { finish(failed: true) }

  // MARK: UpstreamDelegate

  func upstreamResponseHead(_ head: ResponseHead) {
    if head.status >= 500 { mirror.failed.increment() }
  }

  func upstreamResponseBody(_ body: ByteBuffer) {}

  func upstreamResponseEnd(_ trailers: ByteBuffer?) {
    guard !done, let connection else { return }
    if connection.reusable {
      loop.pool.release(connection, idleGauge: mirror.backend.idleConnections)
    } else {
      connection.close()
    }
    self.connection = nil
    finish(failed: false)
  }

  func upstreamReadComplete() {}

  func upstreamSwitchedProtocols(_ head: ResponseHead, rest: ByteBuffer) -> Bool { false }

  func upstreamWritabilityChanged(writable: Bool) {}

  func upstreamFailed(_ error: (any Error)?) {
    connection = nil
    finish(failed: true)
  }
}
