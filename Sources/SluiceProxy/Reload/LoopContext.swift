import NIOCore
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// Everything one event loop owns: its copy of the current graph, its upstream pools, its
/// access-log buffer and its random source. Touched only on that loop, so the request path
/// takes no lock: a reload hands each loop the new graph with `execute`, and a request reads
/// `graph` once (its snapshot) when its head arrives.
public final class LoopContext {
  public let eventLoop: any EventLoop
  public internal(set) var graph: RuntimeGraph
  let pool: UpstreamPool
  var random = FastRandom()
  var accessLog: AccessLogBuffer
  var recycler = HeadRecycler()
  /// Verified JWTs of this loop (bounded; see `TokenCache`).
  let tokenCache = TokenCache()
  /// Scratch for the outgoing heads (the request upstream, the response to the client): each
  /// is assembled here, then copied into its buffer in one write.
  var headBytes = ByteWriter(capacity: 4096)
  /// Open client connections on this loop, for draining.
  var connections: [ObjectIdentifier: any DrainableConnection] = [:]
  var draining = false
  /// Mirrored copies in flight from this loop (bounded by `MirrorExchange.maxInFlight`).
  var mirrorsInFlight = 0
  /// The loop's clock is a manual one (`EmbeddedEventLoop` in tests): deadlines must come from
  /// it instead of from the monotonic readings the request path takes.
  let manualClock: Bool

  init(eventLoop: any EventLoop, graph: RuntimeGraph, sink: (any AccessLogSink)?, manualClock: Bool = false) {
    self.eventLoop = eventLoop
    self.manualClock = manualClock
    self.graph = graph
    self.pool = UpstreamPool(eventLoop: eventLoop)
    self.accessLog = AccessLogBuffer(sink: sink)
  }
}

/// Per-loop access log lines, handed to the sink every 100 ms or at 64 KiB, so the writer's
/// lock is taken a few times a second per loop instead of once per request. Lines are written
/// into one `ByteWriter` kept for the life of the loop; a flush copies them out.
struct AccessLogBuffer: ~Copyable {
  var sink: (any AccessLogSink)? {
    didSet { enabled = sink != nil }
  }
  /// Whether there is a sink. Asked per request: testing the optional existential itself
  /// copied and destroyed it (a retain, a release and a `memcpy` each time).
  private(set) var enabled: Bool
  var bytes = ByteWriter(capacity: 0)
  var lines = 0
  var clock = RFC3339Cache()

  init(sink: (any AccessLogSink)?) {
    self.sink = sink
    self.enabled = sink != nil
  }

  mutating func append(_ record: AccessLogRecord) {
    guard enabled else { return }
    record.appendJSON(to: &bytes, clock: &clock)
    lines += 1
    if bytes.count >= 64 * 1024 { flush() }
  }

  mutating func flush() {
    guard let sink, lines > 0 else { return }
    _ = sink.submit(bytes.bytes, lines: lines)
    bytes.removeAll()
    lines = 0
  }
}

/// The set of loop contexts, one per event loop. Sendable so the control plane can hold it;
/// every access to a context happens on that context's loop.
public final class LoopContexts: @unchecked Sendable {
  // Safe: each LoopContext is only read or written on its own event loop (see `on(_:)`).
  let contexts: [LoopContext]
  let bound: [Bound]

  /// A context with its loop, to send to that loop. Only `context` use inside the loop's tasks.
  struct Bound: @unchecked Sendable {
    let eventLoop: any EventLoop
    let value: LoopContext
  }

  public init(group: any EventLoopGroup, graph: RuntimeGraph, sink: (any AccessLogSink)?, manualClock: Bool = false) {
    var contexts: [LoopContext] = []
    for loop in group.makeIterator() {
      contexts.append(LoopContext(eventLoop: loop, graph: graph, sink: sink, manualClock: manualClock))
    }
    self.contexts = contexts
    self.bound = contexts.map { Bound(eventLoop: $0.eventLoop, value: $0) }
    for b in bound {
      b.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in
        b.value.accessLog.flush()
      }
      b.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(5), delay: .seconds(5)) { _ in
        b.value.pool.closeIdle(olderThan: .seconds(60))
      }
    }
  }

  /// The context of `loop`; call only on that loop.
  func context(for loop: any EventLoop) -> LoopContext? {
    contexts.first { $0.eventLoop === loop }
  }

  /// Swaps the graph on every loop. Returns when all loops have it.
  public func install(_ graph: RuntimeGraph) -> EventLoopFuture<Void> {
    let futures = bound.map { b in
      b.eventLoop.submit {
        b.value.graph = graph
      }
    }
    return EventLoopFuture.andAllSucceed(futures, on: contexts[0].eventLoop)
  }

  /// Points every loop's access log at a new sink (after flushing to the old one).
  public func setSink(_ sink: (any AccessLogSink)?) {
    for b in bound {
      b.eventLoop.execute {
        b.value.accessLog.flush()
        b.value.accessLog.sink = sink
      }
    }
  }

  /// Starts draining: idle keep-alive connections close now, busy ones after their response.
  public func beginDrain() -> EventLoopFuture<Void> {
    let futures = bound.map { b in
      b.eventLoop.submit {
        let context = b.value
        context.draining = true
        for handler in context.connections.values { handler.drain() }
      }
    }
    return EventLoopFuture.andAllSucceed(futures, on: contexts[0].eventLoop)
  }

  /// Closes every client connection still open (the drain timeout passed).
  public func closeOpenConnections() -> EventLoopFuture<Void> {
    let futures = bound.map { b in
      b.eventLoop.submit {
        for handler in Array(b.value.connections.values) { handler.closeNow() }
      }
    }
    return EventLoopFuture.andAllSucceed(futures, on: contexts[0].eventLoop)
  }

  /// Open client connections across loops.
  public func openConnections() -> EventLoopFuture<Int> {
    let futures = bound.map { b in b.eventLoop.submit { b.value.connections.count } }
    return EventLoopFuture.reduce(0, futures, on: contexts[0].eventLoop, +)
  }

  public func flushLogs() -> EventLoopFuture<Void> {
    let futures = bound.map { b in b.eventLoop.submit { b.value.accessLog.flush() } }
    return EventLoopFuture.andAllSucceed(futures, on: contexts[0].eventLoop)
  }

  /// Upstream connections per backend state for `/backends` (idle ones, summed over loops).
  public func idleUpstreamConnections() -> EventLoopFuture<[String: Int]> {
    let futures = bound.map { b in b.eventLoop.submit { b.value.pool.idleCounts() } }
    return EventLoopFuture.reduce([String: Int](), futures, on: contexts[0].eventLoop) { a, b in
      a.merging(b, uniquingKeysWith: +)
    }
  }
}
