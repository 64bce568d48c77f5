import SluiceConfig
import SluiceCore
import SluiceFeatures

/// What admission reads of a request, whatever the protocol: HTTP/1.1's `Exchange` today, an
/// HTTP/2 stream next.
protocol AdmissionRequest: CredentialSource {
  var method: String { get }
  /// The canonical path (after `PathNormalizer`): what routes and policies match.
  var canonicalPath: String { get }
  var clientIPText: String { get }
  func firstHeader(_ lowercasedName: String) -> String?
}

/// Per-request admission state, kept inline in the request object (no allocation).
struct AdmissionState {
  /// The next step to run: a suspended step runs again from here.
  var next = 0
  /// Keys were refreshed once for this request (an unknown `kid`): the next unknown `kid` is a 401.
  var keysRefreshed = false
  var identity: Identity?
  /// CORS headers for the response to an actual (non-preflight) cross-origin request.
  var corsHeaders: [HeaderPair] = []
}

enum AdmissionOutcome {
  case proceed
  case answer(GatewayError)
  /// A CORS preflight: 204 with these headers.
  case preflight([HeaderPair])
  /// Wait for this provider's keys to be refreshed, then run again from `state.next`, on the
  /// connection's own event loop.
  case suspend(KeyStore)
}

/// Runs a route's compiled admission list (docs/architecture.md, "The request path"). Each
/// step's decision is pure logic in its `SluiceFeatures` folder; this only sequences them,
/// counts and audits refusals, and says whether to go on, answer or wait. Protocol-neutral:
/// the frontend applies the outcome (writes the answer, or resumes after a suspension).
enum AdmissionDriver {
  struct Context {
    let route: RouteRuntime
    let audit: AuditFanout
    let requestID: RequestID
    let cache: TokenCache
    /// Seconds since the epoch (JWT times).
    let now: Int64
  }

  static func run(
    _ steps: [AdmissionStep], request: some AdmissionRequest, state: inout AdmissionState, context: Context
  ) -> AdmissionOutcome {
    while state.next < steps.count {
      switch steps[state.next] {
      case .corsPreflight(let policy):
        if let origin = request.firstHeader("origin") {
          let asked = request.firstHeader("access-control-request-method")
          if CORSPolicy.isPreflight(method: request.method, origin: origin, requestMethod: asked), let asked {
            return .preflight(
              policy.preflightHeaders(
                origin: origin, requestMethod: asked, requestHeaders: request.firstHeader("access-control-request-headers")))
          }
          state.corsHeaders = policy.responseHeaders(origin: origin)
        }
      case .authenticate(let step):
        switch Authentication.authenticate(
          step.providers, request: request, cache: context.cache, now: context.now, refreshed: state.keysRefreshed)
        {
        case .admitted(let identity):
          state.identity = identity
        case .refreshKeys(let store):
          return .suspend(store)
        case .denied(let index, let failure, let tokenSent):
          step.failureCounter(provider: index, failure).increment()
          audit(
            .authDenied, context, request, user: nil,
            detail: [("provider", step.providers[index].name), ("reason", failure.rawValue)])
          return .answer(.unauthenticated(failure.description, tokenSent: tokenSent))
        case .unavailable(let index):
          step.failureCounter(provider: index, .keysUnavailable).increment()
          if Log.enabled(.warning) {
            Log.warning("no signing keys to check a token with", [("provider", step.providers[index].name)])
          }
          return .answer(.unavailable("the signing keys of '\(step.providers[index].name)' are not available yet"))
        }
      case .authorize(let policy):
        let ip = IPAddress.parse(request.clientIPText)
        if !policy.allows(
          claims: state.identity?.claims?.payload, clientIP: ip, method: request.method, path: request.canonicalPath)
        {
          audit(.policyDenied, context, request, user: state.identity?.user, detail: [("policy", policy.name)])
          return .answer(.forbidden("the '\(policy.name)' policy does not allow this request"))
        }
      }
      state.next += 1
    }
    return .proceed
  }

  static func audit(
    _ kind: AuditEventKind, _ context: Context, _ request: some AdmissionRequest, user: String?, detail: [(String, String)]
  ) {
    guard context.audit.wants(kind) else { return }
    context.audit.publish(
      AuditEvent(
        kind: kind, requestID: context.requestID.text, route: context.route.name, clientIP: request.clientIPText, user: user,
        detail: detail))
  }
}

extension Exchange: AdmissionRequest {
  var method: String { head.method }
  var canonicalPath: String { path }
  var clientIPText: String { clientIP }
  var query: String? { upstreamQuery }
  func headerValues(_ lowercasedName: String) -> [String] { head.fields.values(lowercasedName) }
  func firstHeader(_ lowercasedName: String) -> String? { head.fields.first(lowercasedName) }
}
