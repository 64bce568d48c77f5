import NIOCore
import SluiceConfig
import SluiceCore
import SluiceFeatures

/// One request/response on a client connection: the per-request object of the request path
/// (the config graph is shared and immutable; this holds only what varies per request).
/// It keeps the graph generation it started on until it finishes.
final class Exchange {
  let graph: RuntimeGraph
  let listener: ListenerRuntime
  let head: RequestHead
  let requestID: RequestID
  let startNanos: UInt64
  let isHEAD: Bool
  var keepAlive: Bool
  var host = ""
  var path = ""
  var upstreamQuery: String?
  var clientIP = ""

  var route: RouteRuntime?
  /// Where the route's admission list stands, who the caller is, CORS response headers.
  var admission = AdmissionState()
  var target: BackendTarget?
  var endpoint: EndpointRuntime?
  /// The request head as it goes upstream, framed once (a retry writes it again).
  var upstreamHead: ByteBuffer?

  // request body
  var hasBody = false
  var chunkedRequest = false
  var requestLength: Int?
  var bodyReceived = 0
  var requestEnded = false
  var buffered: [RequestPart] = []
  var expectContinue = false
  /// An `echo` direct response waiting for the request body (kept up to `echoBodyLimit`).
  var echoWaiting = false

  // upstream
  var upstream: UpstreamConnection?
  var upstreamStartNanos: UInt64 = 0
  var reusedConnection = false
  /// In the endpoint's queue for a connection (`UpstreamPool.acquire`).
  var waitingForConnection = false
  /// Retries sent (tries after the first), for the access log.
  var retries = 0
  /// The free retry of a pooled connection the upstream had just closed was used.
  var staleRetried = false
  /// This exchange counts in its backend's retries in flight (the retry budget).
  var holdsRetrySlot = false
  /// The outcome of the current try was recorded for outlier detection.
  var tryRecorded = false
  /// The route's `timeout`, fixed when the first try starts; each try's deadline is the
  /// earlier of this and its `per_try_timeout`.
  var overallDeadline: NIODeadline?
  /// A retry waits out its backoff.
  var retryPending = false
  /// Body parts already sent upstream, kept for a retry (routes with `retries`) while they
  /// fit the replay buffer; `replayLost` once they did not.
  var kept: [RequestPart] = []
  var keptBytes = 0
  var replayLost = false
  /// The route's `retries.replay_buffer` for this request; 0: nothing is kept.
  var replayLimit = 0
  /// The route's fault injection has rolled for this request (a delayed request does not roll
  /// again when it continues).
  var faultDecided = false
  /// The response is a stream (SSE): `stream_idle_timeout` bounds it instead of `timeout`.
  var streaming = false
  /// The connection's TLS facts (https listeners): the SNI and the negotiated version, for
  /// routing, admission and the access log. Nil on plain HTTP.
  var tls: ConnectionTLS?
  /// A WebSocket upgrade the route allows: `Upgrade`/`Connection` go upstream, and a 101
  /// turns the connection into a tunnel (`ServerHandler.tunnel`).
  var upgrade = false
  var countedInFlight = false
  /// The backend's circuit breaker admitted this request (as a half-open probe when `probe`):
  /// its outcome is recorded there when it completes.
  var breaker: BreakerPass = .none
  /// `Retry-After` for a 503 the gateway answers, when known (an open breaker).
  var retryAfterSeconds: Int?
  /// Waiting in the backend's queue under this ticket, or holding one of its slots.
  var gateTicket: UInt64?
  var holdsGateSlot = false
  var bodyForwarded = 0

  // response
  var responseStarted = false
  var status = 0
  var upstreamStatus: Int?
  var chunkedResponse = false
  var noResponseBody = false
  var bytesOut = 0
  var error: GatewayError?
  var finished = false

  init(graph: RuntimeGraph, listener: ListenerRuntime, head: RequestHead, requestID: RequestID, startNanos: UInt64) {
    self.graph = graph
    self.listener = listener
    self.head = head
    self.requestID = requestID
    self.startNanos = startNanos
    self.isHEAD = head.isHEAD
    self.keepAlive = head.keepAlive
  }
}

/// Part of a request body on its way upstream.
enum RequestPart {
  case body(ByteBuffer)
  /// The body ended; raw trailer lines of a chunked body.
  case end(ByteBuffer?)
}

enum BreakerPass {
  case none
  case counted
  case probe
}

/// What the TLS handshake of a client connection settled.
struct ConnectionTLS {
  var serverName: String?
  /// `HTTP/1.1+TLSv1.3` or `+TLSv1.2`: the access log's `protocol`.
  var logProtocol: JSONString
}
