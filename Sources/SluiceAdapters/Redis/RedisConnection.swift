import NIOCore
import SluiceCore
import SluiceFeatures

/// One pipelined Redis connection's reply side, confined to its event loop. Commands are
/// written in order and answered in order (RESP has no request ids), so a FIFO of callbacks
/// pairs each reply with its command. Every command has the same timeout, so deadlines rise
/// along the FIFO and one timer (armed for the oldest) expires them: a late command is
/// answered `timeout` at once and its slot stays, so the reply that still comes later is paired
/// with it and dropped, and the replies behind it stay aligned.
final class RedisConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
  // Safe: used only on its channel's event loop.
  typealias InboundIn = ByteBuffer

  struct Pending {
    var callback: ((Result<RESPValue, StoreFailure>) -> Void)?
    let deadline: NIODeadline
    let started: NIODeadline
  }

  let timeout: TimeAmount
  let maxPending: Int
  /// A connection whose oldest unanswered command is older than this is dead (a stalled or
  /// paused server): closed, and the client reconnects.
  let stallLimit: TimeAmount
  var pending = CircularBuffer<Pending>(initialCapacity: 16)
  var buffer: ByteBuffer?
  var timer: Scheduled<Void>?
  var armedFor: NIODeadline?
  var context: ChannelHandlerContext?
  var closed = false
  var flushScheduled = false
  let parser = RESPParser()
  let onRoundTrip: (TimeAmount) -> Void
  let onFlush: () -> Void
  let onClose: (String) -> Void

  init(
    timeout: TimeAmount, maxPending: Int, onRoundTrip: @escaping (TimeAmount) -> Void, onFlush: @escaping () -> Void,
    onClose: @escaping (String) -> Void
  ) {
    self.onFlush = onFlush
    self.timeout = timeout
    self.maxPending = maxPending
    self.stallLimit = max(.seconds(2), timeout * 20)
    self.onRoundTrip = onRoundTrip
    self.onClose = onClose
  }

  func handlerAdded(context: ChannelHandlerContext) { self.context = context }

  /// Cuts the handler ↔ context cycle once the closed channel lets go of its handlers.
  func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

  /// Writes one encoded command. The callback runs exactly once, on the loop.
  func send(
    _ bytes: [UInt8], timeout override: TimeAmount? = nil, _ callback: @escaping (Result<RESPValue, StoreFailure>) -> Void
  ) {
    guard !closed, let context else {
      callback(.failure(.disconnected))
      return
    }
    guard pending.count < maxPending else {
      callback(.failure(.overloaded))
      return
    }
    let now = NIODeadline.now()
    let deadline = now + (override ?? timeout)
    pending.append(Pending(callback: callback, deadline: deadline, started: now))
    var out = context.channel.allocator.buffer(capacity: bytes.count)
    out.writeBytes(bytes)
    // Commands issued in one turn of the loop (several requests' admissions) leave in one
    // write: that is what makes them share a round trip.
    context.write(NIOAny(out), promise: nil)
    if !flushScheduled {
      flushScheduled = true
      context.eventLoop.execute { [self] in
        flushScheduled = false
        onFlush()
        self.context?.flush()
      }
    }
    // The handshake's commands have a longer timeout than the ones after it.
    if let armedFor, deadline >= armedFor { return }
    timer?.cancel()
    arm()
  }

  func arm() {
    var next: NIODeadline?
    for entry in pending where entry.callback != nil && (next == nil || entry.deadline < next!) { next = entry.deadline }
    guard let context, let next else {
      timer = nil
      armedFor = nil
      return
    }
    armedFor = next
    timer = context.eventLoop.scheduleTask(deadline: next) { [weak self] in self?.expire() }
  }

  func expire() {
    timer = nil
    armedFor = nil
    let now = NIODeadline.now()
    for i in pending.indices where pending[i].callback != nil && pending[i].deadline <= now {
      let callback = pending[i].callback
      pending[i].callback = nil
      callback?(.failure(.timeout))
    }
    if let oldest = pending.first, now - oldest.started > stallLimit {
      fail("no reply for \(stallLimit.nanoseconds / 1_000_000) ms")
      return
    }
    arm()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var incoming = unwrapInboundIn(data)
    if var pending = buffer, pending.readableBytes > 0 {
      buffer = nil  // one owner while appending: no copy on write
      pending.writeBuffer(&incoming)
      buffer = pending
    } else {
      buffer = incoming
    }
    while var current = buffer, current.readableBytes > 0 {
      let outcome: RESPParser.Outcome
      do {
        outcome = try current.withUnsafeReadableBytes { bytes in
          let r: Result<RESPParser.Outcome, RESPParser.Failure> = Result { () throws(RESPParser.Failure) in
            try parser.parse(bytes)
          }
          return try r.get()
        }
      } catch {
        fail("unreadable reply (\(error))")
        return
      }
      guard case .value(let value, let consumed) = outcome else { break }
      current.moveReaderIndex(forwardBy: consumed)
      buffer = current
      guard let entry = pending.popFirst() else {
        fail("a reply nobody asked for")
        return
      }
      if let callback = entry.callback {
        onRoundTrip(NIODeadline.now() - entry.started)
        callback(.success(value))
      }
    }
    if let b = buffer, b.readableBytes == 0 { buffer = nil } else { buffer?.discardReadBytes() }
  }

  func channelInactive(context: ChannelHandlerContext) {
    fail("connection closed")
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    fail("\(error)")
  }

  /// Closes the connection and answers every waiting command `disconnected`.
  func fail(_ reason: String) {
    guard !closed else { return }
    closed = true
    timer?.cancel()
    timer = nil
    armedFor = nil
    let waiting = pending
    pending.removeAll()
    for entry in waiting { entry.callback?(.failure(.disconnected)) }
    context?.close(promise: nil)
    onClose(reason)
  }
}
