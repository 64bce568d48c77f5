import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// The client side of one HTTP/1.1 connection, and the request path's phases (see
/// docs/architecture.md): parse the head → strict head checks → snapshot graph → route →
/// choose backend (split) → pick endpoint → rewrite headers → forward, streaming both ways →
/// complete (metrics, access log).
///
/// It is the channel's only handler: it reads raw bytes and parses heads and bodies with
/// Sluice's own HTTP/1 parser (`HTTP1/`), and writes upstream requests and client responses as
/// bytes it frames itself. One handler instead of NIO's decoder, pipelining handler and
/// encoders saves the type-erased hops between them and a `String` pair per header
/// (bench/RESULTS.md).
///
/// Pipelining: one request is in flight per connection. Bytes of a pipelined request that
/// arrive while a response is pending wait unparsed in `pendingInput`, and reads from the
/// socket are held while they wait, while the upstream is connecting, or while the upstream
/// cannot take more body bytes (backpressure). Responses therefore stay in order, and an error
/// in a later request is answered after the earlier responses. NIO's pipelining handler holds
/// reads for every pending response, which costs two `epoll_ctl` calls per proxied request.
final class ServerHandler: ChannelDuplexHandler, UpstreamDelegate, UpstreamWaiter, DrainableConnection, SpliceSide {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  let loop: LoopContext
  let listenerName: String
  var listener: ListenerRuntime
  /// The graph `listener` was looked up in: the lookup (a `String`-keyed dictionary) runs once
  /// per reload instead of once per request.
  var listenerGraph: RuntimeGraph?
  let limits: ListenerLimits
  let peerIP: String
  /// `peerIP` as a JSON literal for the access log, made on the first logged request.
  lazy var peerIPJSON = JSONString(peerIP)
  let peerBytes: [UInt8]
  var context: ChannelHandlerContext?
  /// The channel's allocator and writability, kept here: reading them through
  /// `context.channel` retained and released the pipeline and channel each time (~0.4 % of a
  /// proxied request's CPU). Writability changes only with `channelWritabilityChanged`, which
  /// NIO fires synchronously from the write that crosses a watermark.
  var allocator = ByteBufferAllocator()
  var clientWritable = true

  var exchange: Exchange?
  var headReader = HeadReader(requests: true)
  /// The request body being read; `.done` between requests.
  var requestBody = BodyDecoder()
  /// Bytes after a complete request whose response is still pending (pipelining), not yet
  /// parsed. Nil on an idle connection, which then holds no buffer at all.
  var pendingInput: ByteBuffer?
  /// The most bytes a head may take before its end is seen (request line + header block).
  let headLimit: Int
  var pendingRead = false
  /// Bytes written to the client since the last flush (a flush with nothing pending still
  /// walks the pipeline; responses are flushed once, when the upstream read completes).
  var clientUnflushed = false
  /// The response head, not yet handed to NIO: small body writes that follow (the body, chunk
  /// framing) are copied behind it, and it is written at the next flush or larger write. A
  /// small response then leaves as one buffer: one `write` instead of a `writev` of two or
  /// four items, and one pending write in NIO's bookkeeping instead of several.
  var staged: ByteBuffer?
  var closing = false
  var closed = false
  var deadlines = ConnectionDeadlines()
  /// When `max_connection_age` ends, on the monotonic clock the request start times use (one
  /// clock read per request instead of one more for this check).
  var connectionExpiryNanos = UInt64.max
  var timer: Scheduled<Void>?
  var timerAt: NIODeadline?
  /// An https connection: the TLS handshake is not complete yet (its time limit is the
  /// listener's `tls.handshake_timeout`, kept in `deadlines.header`).
  var handshaking = false
  let isTLS: Bool
  /// The ClientHello's server name (SNI), lower-case; set by `TLSHelloHandler`.
  var tlsServerName: String?
  /// The access log's `protocol` on a TLS connection (`HTTP/1.1+TLSv1.3`), once the handshake
  /// is done.
  var tlsProtocol: JSONString?
  /// A WebSocket after the upstream's 101: client bytes go through it unparsed.
  var tunnel: Splice?
  var tunnelHoldsReads = false
  var spliceContext: ChannelHandlerContext? { closed ? nil : context }

  init(loop: LoopContext, listener: ListenerRuntime, peerIP: String, peerBytes: [UInt8]) {
    self.loop = loop
    self.listenerName = listener.name
    self.listener = listener
    self.limits = listener.config.limits
    self.peerIP = peerIP
    self.peerBytes = peerBytes
    self.headLimit = limits.maxRequestURIBytes.bytes + limits.maxRequestHeaderBytes.bytes + 1024
    self.isTLS = listener.config.protocol == "https"
  }

  var awaitingHead: Bool { exchange == nil && !closing }

  // MARK: - Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    allocator = context.channel.allocator
    loop.connections[ObjectIdentifier(self)] = self
    listener.activeConnections.add(1)
    if isTLS {
      handshaking = true
      deadlines.header = loopNow + (listener.config.tls?.handshakeTimeout ?? .seconds(10)).timeAmount
    } else {
      deadlines.idle = loopNow + limits.idleTimeout.timeAmount
    }
    connectionExpiryNanos = WallClock.monotonicNanoseconds() &+ UInt64(max(0, limits.maxConnectionAge.nanoseconds))
    armTimer()
  }

  /// The context holds this handler and this handler its context: the cycle is cut here, when
  /// the closed channel's pipeline lets go of its handlers. (Without it every connection's
  /// handler, exchange and buffers stayed allocated: ~0.8 KiB per connection, found with
  /// valgrind after issue 14.)
  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
  }

  func channelInactive(context: ChannelHandlerContext) {
    closed = true
    timer?.cancel()
    timer = nil
    if let tunnel {
      self.tunnel = nil
      tunnel.clientClosed()
    }
    if let exchange, !exchange.finished {
      detachUpstream(exchange)?.close()
      // 499: the client closed the connection before the response was complete (as nginx).
      finish(exchange, status: exchange.responseStarted ? exchange.status : 499)
    }
    exchange = nil
    pendingInput = nil
    loop.connections[ObjectIdentifier(self)] = nil
    listener.activeConnections.add(-1)
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if closing && exchange == nil { return }
    var buffer = unwrapInboundIn(data)
    if let tunnel {
      tunnel.fromClient(buffer)
      return
    }
    if pendingInput != nil {
      // Reads are held; what was already read joins the waiting bytes, in order.
      pendingInput!.writeBuffer(&buffer)
      return
    }
    consume(&buffer)
  }

  /// Parses what `buffer` holds: body bytes of the request in flight, or the next head. Bytes
  /// of a request that must wait for the current response go to `pendingInput`.
  func consume(_ buffer: inout ByteBuffer) {
    while !closed {
      if let exchange {
        if !exchange.requestEnded && !requestBody.isDone {
          let event: BodyDecoder.Event?
          do {
            event = try requestBody.next(&buffer)
          } catch {
            failConnection(.badRequest("invalid chunked request body"))
            return
          }
          switch event {
          case nil: return
          case .data(let data): requestPart(.body(data), exchange)
          case .end(let trailers): requestPart(.end(trailers), exchange)
          }
          continue
        }
        guard buffer.readableBytes > 0 else { return }
        if closing || exchange.finished && !exchange.keepAlive { return }
        pendingInput = buffer.readSlice(length: buffer.readableBytes)
        return
      }
      guard !closing, buffer.readableBytes > 0 else { return }
      switch headReader.take(&buffer, limit: headLimit) {
      case .incomplete:
        // Part of a head: the rest must follow within request_header_timeout. (A head that
        // arrives whole never arms this deadline: no clock read, no timer work.)
        headStarted()
        return
      case .bareLF:
        failConnection(.badRequest("malformed HTTP request: bare LF"))
        return
      case .notHTTP:
        failConnection(.badRequest("malformed HTTP request: invalid method"))
        return
      case .tooLarge(let sawLineEnd):
        failConnection(sawLineEnd ? .headersTooLarge : .uriTooLong)
        return
      case .head(let bytes):
        deadlines.header = nil
        deadlines.idle = nil
        var storage = loop.recycler.fields()
        switch HeadParser.parseRequest(
          bytes, maxHeaders: limits.maxRequestHeaders, maxURIBytes: limits.maxRequestURIBytes.bytes, storage: &storage)
        {
        case .failure(let error):
          failConnection(error)
          return
        case .success(let head):
          switch head.framing {
          case .none, .length(0), .untilClose: requestBody = BodyDecoder()
          default: requestBody = BodyDecoder(head.framing)
          }
          startRequest(head)
        }
      }
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    if let tunnel {
      tunnel.flushUpstream()
      return
    }
    if let upstream = exchange?.upstream { upstream.flush() }
    context.fireChannelReadComplete()
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    clientWritable = context.channel.isWritable
    if let tunnel {
      tunnel.clientWritabilityChanged(clientWritable)
      return
    }
    if clientWritable, let upstream = exchange?.upstream { upstream.setHoldReads(false) }
    context.fireChannelWritabilityChanged()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    if Log.enabled(.debug) { Log.debug("client connection error", [("error", "\(error)")]) }
    abortConnection()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
      handshaking = false
      deadlines.header = nil
      deadlines.idle = loopNow + limits.idleTimeout.timeAmount
      armTimer()
      let version = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).tlsVersion
      tlsProtocol = version == .tlsv12 ? .http11TLS12 : .http11TLS13
      return
    }
    if case ChannelEvent.inputClosed = event {
      // Half-close: finish what is in flight, read nothing more.
      closing = true
      if exchange == nil { context.close(promise: nil) }
      return
    }
    context.fireUserInboundEventTriggered(event)
  }

  func read(context: ChannelHandlerContext) {
    if shouldHoldReads {
      pendingRead = true
    } else {
      context.read()
    }
  }

  /// Reads stay on in the common case: holding them while a response is pending would make
  /// NIO deregister and re-register read interest, two `epoll_ctl` calls per request (about
  /// 15 % of a proxied request's cost, bench/RESULTS.md). They are held only when a pipelined
  /// request is already waiting, while the upstream connects, or when it cannot take more
  /// body bytes.
  var shouldHoldReads: Bool {
    if tunnel != nil { return tunnelHoldsReads }
    guard let exchange else { return pendingInput != nil }
    if exchange.requestEnded || exchange.finished { return pendingInput != nil }
    guard let upstream = exchange.upstream else { return !exchange.echoWaiting }
    return !upstream.isWritable
  }

  func resumeReadsIfNeeded() {
    guard pendingRead, !shouldHoldReads, let context else { return }
    pendingRead = false
    context.read()
  }

  // MARK: - Timers

  /// The loop's clock (a manual clock under `EmbeddedEventLoop` in tests).
  var loopNow: NIODeadline { loop.eventLoop.now }

  /// A deadline `amount` after a monotonic reading the request path already took. NIO's loop
  /// clock is the same `CLOCK_MONOTONIC`, so this saves a clock read per deadline: a proxied
  /// request reads the clock twice (start, end) instead of five times (bench/RESULTS.md).
  @inline(__always) func deadline(_ amount: TimeAmount, after nanos: UInt64) -> NIODeadline {
    loop.manualClock ? loopNow + amount : .uptimeNanoseconds(nanos) + amount
  }

  /// Makes sure the connection's one timer fires no later than its earliest deadline.
  func armTimer() {
    guard let context, !closed, let earliest = deadlines.earliest else { return }
    if let at = timerAt, at <= earliest { return }
    timer?.cancel()
    timerAt = earliest
    timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: earliest) { [self] in
      self.timerFired()
    }
  }

  func timerFired() {
    timer = nil
    timerAt = nil
    let now = loopNow
    while !closed, let kind = deadlines.takeExpired(at: now) {
      switch kind {
      case .header:
        if handshaking {
          abortConnection()  // a TLS handshake that did not finish in time: nothing to answer
        } else if awaitingHead {
          failConnection(.requestTimeout)
        }
      case .idle:
        if awaitingHead { abortConnection() }
      case .body:
        if let exchange, !exchange.requestEnded, !exchange.finished {
          if exchange.responseStarted { abortConnection() } else { failConnection(.requestTimeout) }
        }
      case .upstream:
        if let exchange {
          if exchange.waitingForConnection {
            let waited = exchange.target?.backend.config.connectTimeout.timeAmount ?? .zero
            upstreamConnectFailed(ChannelError.connectTimeout(waited), for: exchange)
          } else {
            upstreamTimedOut(exchange)
          }
        }
      }
    }
    armTimer()
  }

  /// A request head has started but is not complete: its headers must follow within
  /// `request_header_timeout` of its first bytes (slow-loris guard).
  func headStarted() {
    guard deadlines.header == nil else { return }
    deadlines.idle = nil
    deadlines.header = loopNow + limits.requestHeaderTimeout.timeAmount
    armTimer()
  }

  /// Drain (SIGTERM): close now if idle, else after the current response.
  func drain() {
    closing = true
    if exchange == nil { context?.close(promise: nil) }
  }

  /// The drain timeout passed: close whatever is still open (a WebSocket tunnel, a slow
  /// response); its access log line is written as it closes.
  func closeNow() {
    context?.close(promise: nil)
  }

  // MARK: - Request head

  /// `head` is consumed: it moves into the exchange (a copy retained and released its strings,
  /// buffer and field list), and the rest of the request path reads it there.
  func startRequest(_ head: consuming RequestHead) {
    let graph = loop.graph
    if graph !== listenerGraph {
      // A reload installed a new graph since this connection's last request.
      listenerGraph = graph
      if let current = graph.listeners[listenerName] { listener = current }
    }
    let idHeader = graph.requestIDHeader
    let requestID: RequestID
    if let incoming = head.fields.first(idHeader), Self.isValidRequestID(incoming) {
      requestID = RequestID(incoming: incoming)
    } else {
      requestID = RequestID(random: &loop.random)
    }
    let now = WallClock.monotonicNanoseconds()
    let exchange = Exchange(graph: graph, listener: listener, head: head, requestID: requestID, startNanos: now)
    if let tlsProtocol { exchange.tls = ConnectionTLS(serverName: tlsServerName, logProtocol: tlsProtocol) }
    self.exchange = exchange
    route(exchange, now: now)
  }

  /// The request path after the head: checks, route, backend, endpoint, upstream head.
  func route(_ exchange: Exchange, now: UInt64) {
    let head = exchange.head
    exchange.clientIP = clientIP(head.fields)
    // Draining, or older than max_connection_age: this response says `connection: close`.
    if loop.draining || exchange.startNanos > connectionExpiryNanos { exchange.keepAlive = false }

    if let problem = checkHead(head, exchange) {
      respondError(problem, exchange)
      return
    }
    if !exchange.hasBody { exchange.requestEnded = true }

    let request = RouteRequest(
      method: head.method, host: exchange.host, path: exchange.path, headers: head.fields, serverName: exchange.tls?.serverName)
    guard let route = listener.router.payload(request) else {
      respondError(.noRoute, exchange)
      return
    }
    exchange.route = route
    if route.config.websocket && Self.asksForWebSocket(head) && !exchange.hasBody {
      exchange.upgrade = true
      exchange.keepAlive = false  // after the tunnel, or after a refusal, the connection ends
    }
    if !route.admission.isEmpty {
      guard admit(exchange, route) else { return }
    }
    proceed(exchange, route, now: now)
  }

  /// After admission: fault injection, backend choice (split), endpoint pick, upstream head,
  /// dispatch.
  func proceed(_ exchange: Exchange, _ route: RouteRuntime, now: UInt64) {
    if let fault = route.fault, !exchange.faultDecided {
      exchange.faultDecided = true
      let decision = FaultInjection.decide(
        delayShare: fault.delayShare, delay: fault.delay.nanoseconds, abortShare: fault.abortShare,
        abortStatus: fault.abortStatus, rolls: (loop.random.next(), loop.random.next()))
      if let nanos = decision.delay {
        // The loop goes on serving others; the request continues when the delay is over.
        context?.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanos)) { [self] in
          guard self.exchange === exchange, !exchange.finished, !closed else { return }
          if let status = decision.abort {
            respondError(.faultAbort(status), exchange)
          } else {
            proceed(exchange, route, now: WallClock.monotonicNanoseconds())
          }
        }
        return
      }
      if let status = decision.abort {
        respondError(.faultAbort(status), exchange)
        return
      }
    }
    switch ExchangeDriver.choose(exchange, route, random: &loop.random) {
    case .direct(let response):
      if response.echo && exchange.hasBody && !exchange.requestEnded {
        // `/echo` answers with the body too: read it first (bounded by `echoBodyLimit`).
        exchange.echoWaiting = true
        deadlines.body = deadline(limits.requestBodyTimeout.timeAmount, after: now)
        armTimer()
        if exchange.expectContinue, let context {
          exchange.expectContinue = false
          context.writeAndFlush(wrapOutboundOut(Self.continueBuffer(allocator)), promise: nil)
        }
        resumeReadsIfNeeded()
        return
      }
      respondDirect(response, exchange)
      return
    case .refused(let error):
      respondError(error, exchange)
      return
    case .gate(let gate):
      guard enterGate(gate, exchange, route) else { return }
      guard ExchangeDriver.pickEndpoint(exchange, random: &loop.random) else {
        respondError(ExchangeDriver.noEndpoint(exchange), exchange)
        return
      }
    case .upstream:
      break
    }
    forward(exchange, route, now: now)
  }

  /// Body deadline, upstream head, dispatch.
  func forward(_ exchange: Exchange, _ route: RouteRuntime, now: UInt64) {
    if exchange.hasBody {
      deadlines.body = deadline(limits.requestBodyTimeout.timeAmount, after: now)
      armTimer()
    }
    exchange.upstreamHead = upstreamHead(exchange.head, exchange, route)
    exchange.replayLimit = exchange.hasBody ? route.replayLimit : 0
    dispatch(exchange, nowNanos: now)
  }

  /// SECURITY.md rules 1, 2, 5, 7 and the listener limits, over the facts the parser gathered
  /// (syntax, header count and framing conflicts were checked while parsing). Fills `host`
  /// and `path`.
  func checkHead(_ head: RequestHead, _ exchange: Exchange) -> GatewayError? {
    if head.method == "CONNECT" || head.method == "TRACE" { return .methodNotAllowed(head.method) }
    if head.target.utf8.count > limits.maxRequestURIBytes.bytes { return .uriTooLong }
    if head.fields.count > limits.maxRequestHeaders { return .headersTooLarge }
    if head.headerBytes > limits.maxRequestHeaderBytes.bytes { return .headersTooLarge }
    if head.hostCount > 1 { return .badRequest("more than one Host header") }
    if head.hostCount == 0 && head.versionMinor >= 1 { return .badRequest("missing Host header") }
    exchange.host = head.host
    if !Self.isValidHost(exchange.host) { return .badRequest("invalid Host header") }
    if head.hasTransferEncoding {
      if head.versionMinor == 0 { return .badRequest("Transfer-Encoding is not allowed in HTTP/1.0") }
      if head.transferEncodingInvalid { return .badRequest("only the chunked transfer coding is accepted") }
      exchange.hasBody = true
      exchange.chunkedRequest = true
    } else if case .length(let contentLength) = head.framing {
      if contentLength > limits.maxRequestBodyBytes.bytes { return .bodyTooLarge }
      exchange.hasBody = contentLength > 0
      exchange.requestLength = contentLength
    }
    exchange.expectContinue = head.expectContinue && exchange.hasBody && head.versionMinor >= 1
    switch PathNormalizer.normalize(head.target) {
    case .success(let target):
      exchange.path = target.path
      exchange.upstreamQuery = target.query
    case .failure:
      return .badRequest("invalid request target")
    }
    exchange.host = HostName.canonicalHost(exchange.host)
    return nil
  }

  static func isValidHost(_ host: String) -> Bool {
    var host = host
    // Over contiguous bytes: `utf8.allSatisfy` walked String indices (0.25 % of CPU).
    return host.withUTF8 { bytes in
      guard bytes.count <= 1024 else { return false }
      for byte in bytes {
        // A comma is what two folded Host values look like (`Host: a,b`).
        if byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "@")
          || byte == UInt8(ascii: ",")
        {
          return false
        }
      }
      return true
    }
  }

  static func isValidRequestID(_ id: String) -> Bool {
    let count = id.utf8.count
    return count > 0 && count <= 128
      && id.utf8.allSatisfy {
        ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z"))
          || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
          || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":")
      }
  }

  /// The client's address: the peer, or — when the peer is a trusted proxy — the right-most
  /// untrusted address of `X-Forwarded-For` (SECURITY.md rule 4).
  func clientIP(_ headers: HeadFields) -> String {
    guard !listener.config.trustedProxies.isEmpty, listener.isTrustedProxy(peerBytes) else { return peerIP }
    let values = headers.values("x-forwarded-for")
    guard !values.isEmpty else { return peerIP }
    let items = values.joined(separator: ",").split(separator: ",").map { $0.trimmingASCIIWhitespace() }
    for item in items.reversed() {
      guard let bytes = IPAddress.parse(item) else { return peerIP }
      if !listener.isTrustedProxy(bytes) { return item }
    }
    return items.first ?? peerIP
  }

  /// The request as it goes upstream, written straight into bytes: hop-by-hop headers and
  /// every header named in `Connection` removed first, then the gateway's identity headers
  /// set, then the route's header edits; framing regenerated (SECURITY.md rules 2 and 4).
  /// Client headers are copied byte for byte; none becomes a `String`.
  func upstreamHead(_ head: RequestHead, _ exchange: Exchange, _ route: RouteRuntime) -> ByteBuffer {
    var path = exchange.path
    if let rewrite = route.config.rewrite, rewrite.rewritesPath { path = rewrite.apply(to: path) }

    loop.headBytes.removeAll()
    writeUpstreamHead(head, exchange, route, path: path, into: &loop.headBytes)
    return ResponseWriter.buffer(loop.headBytes, recycler: &loop.recycler, allocator: allocator)
  }

  func writeUpstreamHead(
    _ head: RequestHead, _ exchange: Exchange, _ route: RouteRuntime, path: String, into buffer: inout ByteWriter
  ) {
    let connectionTokens = head.connectionNamesHeaders ? head.fields.connectionTokens() : []
    let trusted = !listener.config.trustedProxies.isEmpty && listener.isTrustedProxy(peerBytes)
    let idHeader = exchange.graph.requestIDHeader
    let propagateTracing = exchange.graph.propagateTracing
    let mutation = route.config.requestHeaders
    let edits = route.requestEdits
    let rewrite = route.config.rewrite
    ByteText.append(head.method, to: &buffer)
    buffer.append(" ")
    ByteText.append(path, to: &buffer)
    if let query = exchange.upstreamQuery {
      buffer.append("?")
      ByteText.append(query, to: &buffer)
    }
    buffer.append(" HTTP/1.1\r\n")

    var incomingXFF = ""
    var sawProto = false
    var sawForwardedHost = false
    head.fields.withRaw { raw in
      var copier = LineCopier()
      for index in 0..<head.fields.count {
        let field = head.fields.fields[index]
        let ns = Int(field.nameStart)
        let nl = Int(field.nameLength)
        if HeaderRules.isHopByHop(raw, ns, nl) {
          // SPEC §5: `te` is hop-by-hop except `TE: trailers`, which gRPC upstreams rely on.
          if nl == 2, HTTP1Bytes.trimmedEqualsLower(raw, Int(field.valueStart), Int(field.valueLength), "trailers"),
            !connectionTokens.contains("te")
          {
            copier.flush(raw: raw, to: &buffer)
            buffer.append("te: trailers\r\n")
          }
          continue
        }
        if !connectionTokens.isEmpty && connectionTokens.contains(where: { HTTP1Bytes.equalsLower(raw, ns, nl, $0) }) {
          continue
        }
        switch nl {
        case 4 where HTTP1Bytes.equalsLower(raw, ns, nl, "host" as StaticString): continue
        case 6 where HTTP1Bytes.equalsLower(raw, ns, nl, "expect" as StaticString): continue
        case 14 where HTTP1Bytes.equalsLower(raw, ns, nl, "content-length" as StaticString): continue
        case 15 where HTTP1Bytes.equalsLower(raw, ns, nl, "x-forwarded-for" as StaticString):
          if trusted {
            let value = head.fields.value(index)
            incomingXFF += incomingXFF.isEmpty ? value : ", " + value
          }
          continue
        case 17 where HTTP1Bytes.equalsLower(raw, ns, nl, "x-forwarded-proto" as StaticString):
          if !trusted { continue }
          sawProto = true
        case 16 where HTTP1Bytes.equalsLower(raw, ns, nl, "x-forwarded-host" as StaticString):
          if !trusted { continue }
          sawForwardedHost = true
        case 11 where HTTP1Bytes.equalsLower(raw, ns, nl, "traceparent" as StaticString),
          10 where HTTP1Bytes.equalsLower(raw, ns, nl, "tracestate" as StaticString):
          if !propagateTracing { continue }
        default:
          if HTTP1Bytes.equalsLower(raw, ns, nl, idHeader) { continue }
        }
        if edits.mayName(length: nl) && Self.mutationNames(mutation, raw, ns, nl) { continue }
        copier.keep(field, raw: raw, to: &buffer)
      }
      copier.flush(raw: raw, to: &buffer)
    }
    // The gateway's identity headers, unless the route's edits remove or set them.
    let replaced = edits.identity
    let originalHost = head.host
    if !replaced.contains(.host) {
      buffer.append("host: ")
      ByteText.append(rewrite?.host ?? originalHost, to: &buffer)
      buffer.append("\r\n")
    }
    if !replaced.contains(.xForwardedFor) {
      buffer.append("x-forwarded-for: ")
      if !incomingXFF.isEmpty {
        ByteText.append(incomingXFF, to: &buffer)
        buffer.append(", ")
      }
      ByteText.append(peerIP, to: &buffer)
      buffer.append("\r\n")
    }
    if !sawProto && !replaced.contains(.xForwardedProto) {
      if isTLS {
        buffer.append("x-forwarded-proto: https\r\n")
      } else {
        buffer.append("x-forwarded-proto: http\r\n")
      }
    }
    if !sawForwardedHost && !originalHost.isEmpty && !replaced.contains(.xForwardedHost) {
      buffer.append("x-forwarded-host: ")
      ByteText.append(originalHost, to: &buffer)
      buffer.append("\r\n")
    }
    if !replaced.contains(.requestID) {
      ResponseWriter.writeHeader(&buffer, idHeader, exchange.requestID)
    }
    if exchange.upgrade {
      // Hop-by-hop, so removed above with the rest; set again for the upgrade the route allows.
      buffer.append("connection: upgrade\r\nupgrade: websocket\r\n")
    }
    for pair in mutation.sets { ResponseWriter.writeHeader(&buffer, pair.name, pair.value) }
    if let identity = exchange.admission.identity {
      for pair in identity.forwardedHeaders { ResponseWriter.writeHeader(&buffer, pair.name, pair.value) }
    }
    if exchange.chunkedRequest {
      buffer.append("transfer-encoding: chunked\r\n")
    } else if let length = exchange.requestLength {
      buffer.append("content-length: ")
      ByteText.append(length, to: &buffer)
      buffer.append("\r\n")
    }
    buffer.append("\r\n")
  }

  /// A name the route's header edits remove or set (so the received copy is not forwarded).
  @inline(__always) static func mutationNames(_ mutation: HeaderMutation, _ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int)
    -> Bool
  {
    mutation.remove.contains(where: { HTTP1Bytes.equalsLower(raw, start, length, $0) })
      || mutation.sets.contains(where: { HTTP1Bytes.equalsLower(raw, start, length, $0.name) })
  }

  /// Writes the client's response head straight into a buffer from the upstream's head bytes:
  /// hop-by-hop and `Connection`-named headers dropped, the route's edits applied, the request
  /// id added, framing chosen (length kept, chunked only when unknown, nothing for
  /// HEAD/204/304). Header lines are copied byte for byte; no header list is built.
  func upstreamResponseHead(_ head: ResponseHead) {
    guard let exchange, let context, !exchange.finished else { return }
    let code = head.status
    if let route = exchange.route, route.retriesOnStatus, route.retryPolicy?.statuses.contains(code) == true,
      let delay = ExchangeDriver.afterFailedTry(exchange, .status(code), random: &loop.random, on: loop.eventLoop)
    {
      // A status the route retries: the response is dropped with its connection.
      detachUpstream(exchange)?.close()
      scheduleRetry(exchange, delay)
      return
    }
    exchange.upstreamStatus = code
    exchange.status = code
    exchange.responseStarted = true
    exchange.noResponseBody = exchange.isHEAD || code == 204 || code == 304
    loop.headBytes.removeAll()
    writeResponseHead(head, exchange, into: &loop.headBytes)
    if exchange.streaming, let route = exchange.route {
      // A stream (SSE): from here the idle limit applies, not the route's timeout.
      deadlines.upstream = loopNow + .nanoseconds(route.streamIdleNanos)
      armTimer()
    }
    // Spare room: a small body is copied in behind the head (`staged`).
    let buffer = ResponseWriter.buffer(loop.headBytes, spare: 256, recycler: &loop.recycler, allocator: allocator)
    exchange.bytesOut += buffer.readableBytes
    if staged != nil { writeStaged(context) }
    staged = buffer
    clientUnflushed = true
  }

  func writeResponseHead(_ head: ResponseHead, _ exchange: Exchange, into buffer: inout ByteWriter) {
    let code = head.status
    let mutation = exchange.route?.config.responseHeaders ?? HeaderMutation()
    let edits = exchange.route?.responseEdits
    let connectionTokens = head.connectionNamesHeaders ? head.fields.connectionTokens() : []
    let idHeader = exchange.graph.requestIDHeader
    var hasLength = false
    head.fields.withRaw { raw in
      buffer.append("HTTP/1.1 ")
      // "NNN reason\r\n" as received (the status line's version is always replaced).
      if head.reasonStart == 13 {
        buffer.append(UnsafeRawBufferPointer(start: raw.baseAddress! + 9, count: head.reasonLength + 6))
      } else {
        buffer.append(UnsafeRawBufferPointer(start: raw.baseAddress! + 9, count: 3))
        buffer.append(" \r\n")
      }
      var copier = LineCopier()
      for index in 0..<head.fields.count {
        let field = head.fields.fields[index]
        let ns = Int(field.nameStart)
        let nl = Int(field.nameLength)
        if HeaderRules.isHopByHop(raw, ns, nl) { continue }
        if nl == 12 && HTTP1Bytes.equalsLower(raw, ns, nl, "content-type" as StaticString)
          && field.valueLength >= 17
          && HTTP1Bytes.equalsLower(raw, Int(field.valueStart), 17, "text/event-stream" as StaticString)
        {
          exchange.streaming = true
        }
        if !connectionTokens.isEmpty && connectionTokens.contains(where: { HTTP1Bytes.equalsLower(raw, ns, nl, $0) }) {
          continue
        }
        if nl == 14 && HTTP1Bytes.equalsLower(raw, ns, nl, "content-length" as StaticString) {
          if code == 204 || (code == 304 && !exchange.isHEAD) || head.hasTransferEncoding { continue }
          hasLength = true
        } else if HTTP1Bytes.equalsLower(raw, ns, nl, idHeader) {
          continue
        } else if let edits, edits.mayName(length: nl) && Self.mutationNames(mutation, raw, ns, nl) {
          continue
        }
        copier.keep(field, raw: raw, to: &buffer)
      }
      copier.flush(raw: raw, to: &buffer)
    }
    for pair in mutation.sets { ResponseWriter.writeHeader(&buffer, pair.name, pair.value) }
    for pair in exchange.admission.corsHeaders { ResponseWriter.writeHeader(&buffer, pair.name, pair.value) }
    ResponseWriter.writeHeader(&buffer, idHeader, exchange.requestID)
    if code == 101 {
      buffer.append("connection: upgrade\r\nupgrade: websocket\r\n\r\n")
      return
    }
    if !exchange.noResponseBody && !hasLength {
      if exchange.head.versionMinor >= 1 {
        buffer.append("transfer-encoding: chunked\r\n")
        exchange.chunkedResponse = true
      } else {
        exchange.keepAlive = false  // HTTP/1.0 client: the body ends when we close
      }
    }
    if !exchange.requestEnded { exchange.keepAlive = false }
    if !exchange.keepAlive || closing {
      buffer.append("connection: close\r\n")
    } else if exchange.head.versionMinor == 0 {
      buffer.append("connection: keep-alive\r\n")
    }
    buffer.append("\r\n")
  }

  func addConnectionHeader(_ headers: inout HTTPHeaders, _ exchange: Exchange) {
    if !exchange.keepAlive || closing {
      headers.add(name: "connection", value: "close")
    } else if exchange.head.versionMinor == 0 {
      headers.add(name: "connection", value: "keep-alive")
    }
  }

  func upstreamResponseBody(_ body: ByteBuffer) {
    guard let exchange, let context, !exchange.finished, !exchange.noResponseBody else { return }
    let size = body.readableBytes
    guard size > 0 else { return }
    exchange.bytesOut += size
    if exchange.streaming, let route = exchange.route {
      deadlines.upstream = loopNow + .nanoseconds(route.streamIdleNanos)
    }
    if exchange.chunkedResponse {
      writeToClient(context, ResponseWriter.chunkHeader(size: size, allocator: allocator))
      writeToClient(context, body)
      writeToClient(context, ResponseWriter.crlf)
    } else {
      writeToClient(context, body)
    }
    if !clientWritable {
      // Hold upstream reads *before* flushing: the flush may drain the buffer and make the
      // channel writable again at once, and that change must be able to lift the hold.
      exchange.upstream?.setHoldReads(true)
      if staged != nil { writeStaged(context) }
      clientUnflushed = false
      context.flush()
    }
  }

  func upstreamReadComplete() {
    flushClient()
  }

  /// Bytes behind a staged head are copied while the whole stays recyclable (≤ 4 KiB).
  static let stageLimit = HeadRecycler.maxBufferCapacity

  @inline(__always) func writeToClient(_ context: ChannelHandlerContext, _ buffer: ByteBuffer) {
    if staged != nil {
      if staged!.readableBytes + buffer.readableBytes <= Self.stageLimit {
        staged!.writeImmutableBuffer(buffer)
        return
      }
      writeStaged(context)
    }
    context.write(wrapOutboundOut(buffer), promise: nil)
    clientUnflushed = true
  }

  func writeStaged(_ context: ChannelHandlerContext) {
    guard let buffer = staged else { return }
    staged = nil
    context.write(wrapOutboundOut(buffer), promise: nil)
    clientUnflushed = true
    loop.recycler.recycle(buffer)
  }

  @inline(__always) func flushClient() {
    guard clientUnflushed, let context else { return }
    if staged != nil { writeStaged(context) }
    clientUnflushed = false
    context.flush()
  }

  func upstreamWritabilityChanged(writable: Bool) {
    if writable { resumeReadsIfNeeded() }
  }

  func upstreamResponseEnd(_ trailers: ByteBuffer?) {
    guard let exchange, let context, !exchange.finished else { return }
    let nowNanos = WallClock.monotonicNanoseconds()
    deadlines.upstream = nil
    if exchange.chunkedResponse {
      let last = ResponseWriter.lastChunk(trailers: trailers, allocator: allocator)
      exchange.bytesOut += last.readableBytes
      writeToClient(context, last)
    }
    if let upstream = detachUpstream(exchange) {
      if exchange.requestEnded && upstream.reusable {
        loop.pool.release(
          upstream, idleGauge: exchange.target?.backend.idleConnections, now: .uptimeNanoseconds(nowNanos))
      } else {
        upstream.close()
      }
    }
    finish(exchange, status: exchange.status, nowNanos: nowNanos)
    responseDone(exchange, nowNanos: nowNanos)
  }

  func upstreamFailed(_ error: (any Error)?) {
    guard let exchange, !exchange.finished else { return }
    if Log.enabled(.debug) {
      Log.debug("upstream failed", [("error", error.map { "\($0)" } ?? "closed"), ("request_id", exchange.requestID.text)])
    }
    detachUpstream(exchange)?.close()
    if exchange.responseStarted {
      abortConnection()
      return
    }
    // A pooled connection the upstream had just closed: retry once on a new one, if nothing
    // of the body is lost (the request had no body, or none was sent yet).
    // This is not a failure of the endpoint, and not one of the route's retries.
    if exchange.reusedConnection && !exchange.staleRetried && exchange.bodyForwarded == 0
      && (!exchange.hasBody || exchange.buffered.isEmpty && exchange.bodyReceived == 0)
    {
      exchange.staleRetried = true
      exchange.reusedConnection = false
      dispatch(exchange, nowNanos: WallClock.monotonicNanoseconds())
      return
    }
    tryFailed(exchange, .reset, answer: .badGateway("upstream closed the connection or sent an invalid response"))
  }

  // MARK: - Waiting for a connection (UpstreamWaiter)

  func wantsConnection(for exchange: Exchange) -> Bool {
    // `waitingForConnection`: a try that gave up on this endpoint's queue (a connect timeout
    // that led to a retry) leaves its entry behind; that entry must not take a connection.
    self.exchange === exchange && exchange.waitingForConnection && !exchange.finished && !closed && context != nil
  }

  func upstreamReady(_ connection: UpstreamConnection, for exchange: Exchange, reused: Bool) {
    exchange.reusedConnection = reused
    attach(connection, exchange, nowNanos: WallClock.monotonicNanoseconds())
  }

  func upstreamConnectFailed(_ error: any Error, for exchange: Exchange) {
    guard self.exchange === exchange, !exchange.finished else { return }
    let key = exchange.endpoint?.key ?? "upstream"
    let why: String
    if case ChannelError.connectTimeout = error {
      why = "timed out connecting to \(key)"
    } else if let tls = error as? UpstreamTLS.Failure {
      why = "TLS to \(key) failed: \(tls.reason)"
    } else {
      why = "cannot connect to \(key)"
    }
    tryFailed(exchange, .connectFailure, answer: .badGateway(why))
  }

  // MARK: - Answers from the gateway

  func respondDirect(_ response: DirectResponse, _ exchange: Exchange) {
    var headers = HTTPHeaders()
    for pair in response.headers { headers.add(name: pair.name, value: pair.value) }
    var body = response.body
    if response.echo {
      body = echo(exchange)
      headers.replaceOrAdd(name: "content-type", value: "application/json")
    } else if !headers.contains(name: "content-type") {
      headers.add(name: "content-type", value: "text/plain; charset=utf-8")
    }
    if let mutation = exchange.route?.config.responseHeaders {
      for name in mutation.remove { headers.remove(name: name) }
      for pair in mutation.sets { headers.replaceOrAdd(name: pair.name, value: pair.value) }
    }
    for pair in exchange.admission.corsHeaders { headers.add(name: pair.name, value: pair.value) }
    writeComplete(status: response.status, headers: headers, body: body, exchange)
  }

  /// The most request-body bytes `/echo` shows (the rest is read and counted, not shown).
  static let echoBodyLimit = 64 * 1024

  /// `/echo` of the embedded default config: the request as the gateway received it (SPEC
  /// §1). The body is shown as text when it is UTF-8, else base64 (`body_base64`), at most
  /// `echoBodyLimit` bytes of it (`body_truncated`); `body_bytes` counts all of it.
  func echo(_ exchange: Exchange) -> String {
    let fields = exchange.head.fields
    let headers = JSONValue.object(fields.fields.indices.map { (fields.name($0).lowercased(), .string(fields.value($0))) })
    var pairs: [(String, JSONValue)] = [
      ("method", .string(exchange.head.method)), ("path", .string(exchange.path)),
      ("query", exchange.upstreamQuery.map { .string($0) } ?? .null), ("host", .string(exchange.host)),
      ("client_ip", .string(exchange.clientIP)), ("request_id", .string(exchange.requestID.text)),
      ("headers", headers),
    ]
    var body: [UInt8] = []
    for case .body(var part) in exchange.buffered { body += part.readBytes(length: part.readableBytes) ?? [] }
    exchange.buffered = []
    if let text = String(validating: body, as: UTF8.self) {
      pairs.append(("body", .string(text)))
    } else {
      pairs.append(("body_base64", .string(Base64.encode(body))))
    }
    pairs.append(("body_bytes", .int(exchange.bodyReceived)))
    pairs.append(("body_truncated", .bool(exchange.bodyReceived > body.count)))
    return JSONValue.object(pairs).rendered() + "\n"
  }

  func respondError(_ error: GatewayError, _ exchange: Exchange) {
    exchange.error = error
    detachUpstream(exchange)?.close()
    deadlines.upstream = nil
    if exchange.responseStarted {
      abortConnection()
      return
    }
    if error.closesConnection || (exchange.hasBody && !exchange.requestEnded) { exchange.keepAlive = false }
    var headers = HTTPHeaders()
    headers.add(name: "content-type", value: "application/json")
    switch error {
    case .unavailable: headers.add(name: "retry-after", value: String(exchange.retryAfterSeconds ?? 1))
    case .rateLimited(let r):
      headers.add(name: "retry-after", value: String(r.retryAfterSeconds))
      headers.add(name: "ratelimit-limit", value: String(r.limit))
      headers.add(name: "ratelimit-remaining", value: String(r.remaining))
      headers.add(name: "ratelimit-reset", value: String(r.resetSeconds))
    case .unauthenticated(let why, let tokenSent):
      // RFC 6750 §3: error="invalid_token" only when a token was sent.
      headers.add(
        name: "www-authenticate",
        value: tokenSent ? "Bearer realm=\"sluice\", error=\"invalid_token\", error_description=\"\(why)\"" : "Bearer realm=\"sluice\"")
    default: break
    }
    // Browsers can read the gateway's own refusals only with the route's CORS headers.
    for pair in exchange.admission.corsHeaders { headers.add(name: pair.name, value: pair.value) }
    writeComplete(status: error.status, headers: headers, body: error.jsonBody(requestID: exchange.requestID.text), exchange)
  }

  /// A CORS preflight, answered by the gateway (never forwarded).
  func respondPreflight(_ corsHeaders: [HeaderPair], _ exchange: Exchange) {
    var headers = HTTPHeaders()
    for pair in corsHeaders { headers.add(name: pair.name, value: pair.value) }
    writeComplete(status: 204, headers: headers, body: "", exchange)
  }

  func writeComplete(status: Int, headers: HTTPHeaders, body: String, _ exchange: Exchange) {
    guard let context else { return }
    var headers = headers
    headers.replaceOrAdd(name: exchange.graph.requestIDHeader, value: exchange.requestID.text)
    // RFC 9110 §8.6: no Content-Length on a 204.
    if status != 204 { headers.add(name: "content-length", value: String(body.utf8.count)) }
    if !exchange.requestEnded && exchange.hasBody { exchange.keepAlive = false }
    addConnectionHeader(&headers, exchange)
    var buffer = ResponseWriter.head(status: HTTPResponseStatus(statusCode: status), headers: headers, allocator: context.channel.allocator)
    if !exchange.isHEAD { buffer.writeString(body) }
    exchange.status = status
    exchange.responseStarted = true
    exchange.bytesOut += buffer.readableBytes
    writeToClient(context, buffer)
    let now = WallClock.monotonicNanoseconds()
    finish(exchange, status: status, nowNanos: now)
    responseDone(exchange, nowNanos: now)
  }

  /// A framing or timeout error on the connection itself: answer (when no response started)
  /// and close. Nothing more is read from this connection.
  func failConnection(_ error: GatewayError) {
    guard context != nil, !closed else { return }
    closing = true
    pendingInput = nil
    if let exchange, !exchange.finished {
      exchange.keepAlive = false
      respondError(error, exchange)
      return
    }
    if exchange != nil {
      abortConnection()
      return
    }
    writeFailure(error)
  }

  /// Plain HTTP on an https listener's port: a 400 in plain text, then close.
  func plainHTTPOnTLSPort() {
    handshaking = false
    closing = true
    writeFailure(.badRequest("plain HTTP request sent to an HTTPS port"))
  }

  /// A gateway error for bytes that never became a request, then close.
  func writeFailure(_ error: GatewayError) {
    guard let context else { return }
    let graph = loop.graph
    let requestID = RequestID(random: &loop.random)
    var headers = HTTPHeaders()
    headers.add(name: "content-type", value: "application/json")
    headers.add(name: graph.requestIDHeader, value: requestID.text)
    let body = error.jsonBody(requestID: requestID.text)
    headers.add(name: "content-length", value: String(body.utf8.count))
    headers.add(name: "connection", value: "close")
    var buffer = ResponseWriter.head(
      status: HTTPResponseStatus(statusCode: error.status), headers: headers, allocator: context.channel.allocator)
    buffer.writeString(body)
    listener.unrouted.record(status: error.status)
    var record = AccessLogRecord()
    record.timeMilliseconds = WallClock.nowMilliseconds()
    record.requestID = requestID
    record.clientIP = peerIPJSON
    record.status = error.status
    record.error = error.code
    record.bytesOut = buffer.readableBytes
    loop.accessLog.append(record)
    context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
      context.close(promise: nil)
    }
  }

  func abortConnection() {
    guard let context, !closed else { return }
    closing = true
    staged = nil  // a started response cannot be completed: the client sees the close
    context.close(promise: nil)
  }

  // MARK: - Completion

  /// Metrics and the access log line. Runs once per exchange, on the event loop.
  func finish(_ exchange: Exchange, status: Int, nowNanos: UInt64? = nil) {
    guard !exchange.finished else { return }
    exchange.finished = true
    deadlines.upstream = nil
    deadlines.body = nil
    let now = nowNanos ?? WallClock.monotonicNanoseconds()
    let micros = Int((now &- exchange.startNanos) / 1000)
    var upstreamMicros: Int?
    if exchange.upstreamStartNanos > 0 {
      upstreamMicros = Int((now &- exchange.upstreamStartNanos) / 1000)
    }
    ExchangeDriver.recordCompletion(
      exchange, status: status, micros: micros, upstreamMicros: upstreamMicros, on: loop.eventLoop)
    if let mirror = exchange.route?.mirror, exchange.upstreamHead != nil, !exchange.upgrade,
      mirror.share >= 1 || FaultInjection.unit(loop.random.next()) < mirror.share
    {
      MirrorExchange.send(exchange, mirror, loop: loop)
    }
    guard loop.accessLog.enabled else { return }
    var record = AccessLogRecord()
    // The request's start in wall time, read only when a line is written.
    record.timeMilliseconds = WallClock.nowMilliseconds() - Int64(micros / 1000)
    record.requestID = exchange.requestID
    record.clientIP = exchange.clientIP == peerIP ? peerIPJSON : JSONString(exchange.clientIP)
    record.method = JSONString.method(exchange.head.method)
    record.host = exchange.host
    record.path = exchange.path.isEmpty ? String(exchange.head.target.prefix(256)) : exchange.path
    if let tls = exchange.tls {
      record.protocol =
        exchange.head.versionMinor == 0 ? (tls.logProtocol == .http11TLS12 ? .http10TLS12 : .http10TLS13) : tls.logProtocol
      record.serverName = tls.serverName
    } else {
      record.protocol = exchange.head.versionMinor == 0 ? .http10 : .http11
    }
    record.status = status
    record.route = exchange.route?.jsonName
    record.backend = exchange.target?.backend.jsonName
    record.endpoint = exchange.endpoint?.jsonKey
    record.upstreamStatus = exchange.upstreamStatus
    record.bytesIn = exchange.bodyReceived
    record.bytesOut = exchange.bytesOut
    record.durationMicroseconds = micros
    record.upstreamDurationMicroseconds = upstreamMicros
    record.retries = exchange.retries
    record.error = exchange.error?.code
    record.user = exchange.admission.identity?.user
    loop.accessLog.append(record)
  }

  /// The response is written: close, or go on with the next (possibly pipelined) request.
  func responseDone(_ exchange: Exchange, nowNanos: UInt64) {
    guard let context else { return }
    self.exchange = nil
    if let head = exchange.upstreamHead {
      exchange.upstreamHead = nil
      loop.recycler.recycle(head)
    }
    loop.recycler.recycle(fields: exchange.head.fields.fields)
    if !exchange.keepAlive || closing {
      closing = true
      if staged != nil { writeStaged(context) }
      context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
        .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
      return
    }
    flushClient()
    if var input = pendingInput {
      // The next pipelined request was waiting: parse it now that this response is written.
      pendingInput = nil
      consume(&input)
    }
    if self.exchange == nil && !closing {
      deadlines.idle = deadline(limits.idleTimeout.timeAmount, after: nowNanos)
      armTimer()
    }
    resumeReadsIfNeeded()
  }
}

extension ConfigDuration {
  var timeAmount: TimeAmount { .nanoseconds(nanoseconds) }
}
