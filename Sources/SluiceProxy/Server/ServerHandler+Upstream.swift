import NIOCore
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// The upstream try loop of a request: take or wait for a pooled connection, send the head and
/// body (kept for a replay while the route retries), and on a failed try ask the driver whether
/// to retry, after its backoff, on another endpoint.
extension ServerHandler {
  /// `nowNanos`: a clock reading taken in this turn of the loop (a pooled connection is used
  /// at once, so the upstream's time starts there).
  func dispatch(_ exchange: Exchange, nowNanos: UInt64) {
    guard let endpoint = exchange.endpoint, let target = exchange.target else { return }
    if let connection = loop.pool.acquire(endpoint, backend: target.backend, waiter: self, exchange: exchange) {
      exchange.reusedConnection = true
      attach(connection, exchange, nowNanos: nowNanos)
      return
    }
    // The pool already failed it (endpoint unreachable), answered or scheduling a retry.
    guard !exchange.finished, !exchange.retryPending else { return }
    // In the endpoint's queue: no request waits for a connection longer than the backend's
    // connect timeout, whichever connects are in flight (see `ConnectPolicy`).
    exchange.waitingForConnection = true
    deadlines.upstream = deadline(target.backend.config.connectTimeout.timeAmount, after: nowNanos)
    armTimer()
  }

  /// Ends the exchange's use of its upstream connection, which the
  /// `sluice_upstream_connections{state="active"}` gauge then no longer counts. Every way a
  /// request lets go of its connection goes through here, so the gauge cannot drift.
  @discardableResult func detachUpstream(_ exchange: Exchange) -> UpstreamConnection? {
    guard let upstream = exchange.upstream else { return nil }
    exchange.upstream = nil
    exchange.target?.backend.activeConnections.add(-1)
    return upstream
  }

  func attach(_ connection: UpstreamConnection, _ exchange: Exchange, nowNanos: UInt64) {
    guard let upstreamHead = exchange.upstreamHead, let context else {
      // Not expected (the pool asks `wantsConnection` first); never strand the connection.
      loop.pool.release(connection, idleGauge: exchange.target?.backend.idleConnections)
      return
    }
    if exchange.waitingForConnection {
      exchange.waitingForConnection = false
      deadlines.upstream = nil
    }
    exchange.upstream = connection
    exchange.target?.backend.activeConnections.add(1)
    connection.delegate = self
    connection.startRequest(isHEAD: exchange.isHEAD, upgrade: exchange.upgrade)
    connection.setHoldReads(false)
    exchange.upstreamStartNanos = nowNanos
    if let route = exchange.route {
      // The route's timeout runs from the first try; a try ends at its per-try timeout.
      let overall: NIODeadline
      if let existing = exchange.overallDeadline {
        overall = existing
      } else {
        overall = deadline(route.config.timeout.timeAmount, after: nowNanos)
        exchange.overallDeadline = overall
      }
      if let perTry = route.retryPolicy?.perTryTimeout {
        deadlines.upstream = min(overall, deadline(perTry.timeAmount, after: nowNanos))
      } else {
        deadlines.upstream = overall
      }
      armTimer()
    }
    let sendContinue = exchange.expectContinue && exchange.bodyReceived == 0 && !exchange.responseStarted
    if !sendContinue && exchange.buffered.isEmpty {
      // The common case (no body yet): the head goes out in one pipeline call.
      connection.write(upstreamHead, flush: true)
      resumeReadsIfNeeded()
      return
    }
    connection.write(upstreamHead)
    if sendContinue {
      exchange.expectContinue = false
      context.writeAndFlush(wrapOutboundOut(Self.continueBuffer(allocator)), promise: nil)
    }
    let buffered = exchange.buffered
    exchange.buffered = []
    for part in buffered { forwardPart(part, exchange, connection) }
    connection.flush()
    resumeReadsIfNeeded()
  }

  static func continueBuffer(_ allocator: ByteBufferAllocator) -> ByteBuffer {
    var b = allocator.buffer(capacity: 25)
    b.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
    return b
  }

  /// A body part or end from the client for the current exchange.
  func requestPart(_ part: RequestPart, _ exchange: Exchange) {
    switch part {
    case .body(let body):
      exchange.bodyReceived += body.readableBytes
      deadlines.body = loopNow + limits.requestBodyTimeout.timeAmount
      armTimer()
      if exchange.bodyReceived > limits.maxRequestBodyBytes.bytes {
        detachUpstream(exchange)?.close()
        if exchange.responseStarted { abortConnection() } else { respondError(.bodyTooLarge, exchange) }
        return
      }
    case .end:
      exchange.requestEnded = true
      deadlines.body = nil
    }
    if exchange.finished { return }
    if let upstream = exchange.upstream {
      forwardPart(part, exchange, upstream)
      if !upstream.isWritable { upstream.flush() }
    } else if exchange.echoWaiting {
      switch part {
      case .body(let body):
        // Nothing goes upstream here, so `bodyForwarded` counts the bytes kept for the echo.
        let keep = min(Self.echoBodyLimit - exchange.bodyForwarded, body.readableBytes)
        if keep > 0, let slice = body.getSlice(at: body.readerIndex, length: keep) {
          exchange.buffered.append(.body(slice))
          exchange.bodyForwarded += keep
        }
      case .end:
        exchange.echoWaiting = false
        if case .direct(let response)? = exchange.route?.target { respondDirect(response, exchange) }
      }
    } else {
      exchange.buffered.append(part)
    }
  }

  /// Body bytes to the upstream, framed again: as received for a length, in Sluice's own
  /// chunks for a chunked request (the client's chunk boundaries are not kept).
  func forwardPart(_ part: RequestPart, _ exchange: Exchange, _ upstream: UpstreamConnection) {
    switch part {
    case .body(let body):
      let size = body.readableBytes
      guard size > 0 else { return }
      exchange.bodyForwarded += size
      if exchange.replayLimit > 0 { keepForReplay(part, size, exchange) }
      if exchange.chunkedRequest {
        upstream.write(ResponseWriter.chunkHeader(size: size, allocator: upstream.allocator))
        upstream.write(body)
        upstream.write(ResponseWriter.crlf)
      } else {
        upstream.write(body)
      }
    case .end(let trailers):
      if exchange.replayLimit > 0 { keepForReplay(part, 0, exchange) }
      if exchange.chunkedRequest {
        upstream.write(ResponseWriter.lastChunk(trailers: trailers, allocator: upstream.allocator), flush: true)
      } else {
        upstream.flush()
      }
    }
  }

  /// A body part that went upstream, kept for a retry while the body fits the replay buffer.
  func keepForReplay(_ part: RequestPart, _ size: Int, _ exchange: Exchange) {
    guard !exchange.replayLost else { return }
    exchange.keptBytes += size
    if exchange.keptBytes > exchange.replayLimit {
      exchange.replayLost = true
      exchange.kept = []
    } else {
      exchange.kept.append(part)
    }
  }

  /// The upstream deadline passed: the route's timeout (504), a try's `per_try_timeout` (a
  /// retry when the route allows it), or a streamed response's idle limit (the connection is
  /// closed: its response has started).
  func upstreamTimedOut(_ exchange: Exchange) {
    guard self.exchange === exchange, !exchange.finished else { return }
    detachUpstream(exchange)?.close()
    if exchange.responseStarted {
      abortConnection()
      return
    }
    if !exchange.retryPending, let overall = exchange.overallDeadline, loopNow < overall {
      tryFailed(exchange, .timeout, answer: .gatewayTimeout)
      return
    }
    ExchangeDriver.recordTry(exchange, failure: true, on: loop.eventLoop)
    respondError(.gatewayTimeout, exchange)
  }

  /// A try failed before any response byte went to the client: retry when the route's policy
  /// allows (`ExchangeDriver.afterFailedTry` decides), else answer `error`.
  func tryFailed(_ exchange: Exchange, _ failure: RetrySafety.Failure, answer error: GatewayError) {
    guard let delay = ExchangeDriver.afterFailedTry(exchange, failure, random: &loop.random, on: loop.eventLoop) else {
      respondError(error, exchange)
      return
    }
    scheduleRetry(exchange, delay)
  }

  /// Waits out a retry's backoff, then sends the request (head and kept body) again, to
  /// another endpoint when one is available.
  func scheduleRetry(_ exchange: Exchange, _ delay: Int64) {
    exchange.retryPending = true
    exchange.waitingForConnection = false
    exchange.reusedConnection = false
    exchange.upstreamStatus = nil
    exchange.status = 0
    if !exchange.kept.isEmpty {
      exchange.buffered = exchange.kept + exchange.buffered
      exchange.kept = []
    }
    exchange.keptBytes = 0
    exchange.bodyForwarded = 0
    // The route's timeout still bounds the wait (a try never started has no overall deadline
    // yet: the connect timeout bounded it).
    deadlines.upstream = exchange.overallDeadline
    armTimer()
    // Always through the loop, even without a delay: the failure may be reported from inside
    // `dispatch` (a refused loopback connect fails at once).
    context?.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay)) { [self] in
      guard self.exchange === exchange, !exchange.finished, exchange.retryPending else { return }
      exchange.retryPending = false
      guard ExchangeDriver.retarget(exchange, random: &loop.random) else {
        respondError(ExchangeDriver.noEndpoint(exchange), exchange)
        return
      }
      dispatch(exchange, nowNanos: WallClock.monotonicNanoseconds())
    }
  }
}
