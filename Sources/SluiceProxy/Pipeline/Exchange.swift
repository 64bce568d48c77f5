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
  var timeoutArmed = false
  var reusedConnection = false
  /// In the endpoint's queue for a connection (`UpstreamPool.acquire`).
  var waitingForConnection = false
  var retries = 0
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
