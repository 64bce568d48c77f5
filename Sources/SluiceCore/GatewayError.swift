/// The answers the gateway gives itself (SPEC section 5). One enum so every place that can fail
/// a request uses the same status, code and body shape, and a new case makes the compiler point
/// at every `switch` that must learn it.
public enum GatewayError: Error, Sendable, Hashable {
  case badRequest(String)
  case noRoute
  /// 401; `tokenSent` adds `error="invalid_token"` to `WWW-Authenticate` (RFC 6750 §3).
  case unauthenticated(String, tokenSent: Bool)
  case forbidden(String)
  /// 429, with `Retry-After` and the `RateLimit-*` fields.
  case rateLimited(RateLimitRefusal)
  case methodNotAllowed(String)
  case bodyTooLarge
  case uriTooLong
  case headersTooLarge
  case requestTimeout
  case badGateway(String)
  case unavailable(String)
  case gatewayTimeout
  /// A route's `fault.abort`: the gateway answers this status itself (chaos testing).
  case faultAbort(Int)

  public var status: Int {
    switch self {
    case .faultAbort(let status): status
    case .badRequest: 400
    case .noRoute: 404
    case .unauthenticated: 401
    case .forbidden: 403
    case .rateLimited: 429
    case .methodNotAllowed: 405
    case .requestTimeout: 408
    case .bodyTooLarge: 413
    case .uriTooLong: 414
    case .headersTooLarge: 431
    case .badGateway: 502
    case .unavailable: 503
    case .gatewayTimeout: 504
    }
  }

  /// The `error` field of the JSON body and of the access log.
  public var code: String {
    switch self {
    case .badRequest: "bad_request"
    case .noRoute: "no_route"
    case .unauthenticated: "unauthenticated"
    case .forbidden: "forbidden"
    case .rateLimited: "rate_limited"
    case .methodNotAllowed: "method_not_allowed"
    case .requestTimeout: "request_timeout"
    case .bodyTooLarge: "body_too_large"
    case .uriTooLong: "uri_too_long"
    case .headersTooLarge: "headers_too_large"
    case .badGateway: "bad_gateway"
    case .unavailable: "unavailable"
    case .gatewayTimeout: "gateway_timeout"
    case .faultAbort: "fault_injected"
    }
  }

  public var message: String {
    switch self {
    case .badRequest(let why): why
    case .noRoute: "no route matches this request"
    case .unauthenticated(let why, _): why
    case .forbidden(let why): why
    case .rateLimited(let r): "rate limit '\(r.limitName)' exceeded; retry in \(r.retryAfterSeconds) s"
    case .methodNotAllowed(let method): "method \(method) is not allowed"
    case .requestTimeout: "request headers not received in time"
    case .bodyTooLarge: "request body is larger than the limit"
    case .uriTooLong: "request URI is longer than the limit"
    case .headersTooLarge: "request headers are larger than the limit"
    case .badGateway(let why): why
    case .unavailable(let why): why
    case .gatewayTimeout: "upstream did not answer in time"
    case .faultAbort: "the route's fault injection aborted this request"
    }
  }

  /// Whether the connection must be closed after this answer: framing errors leave the byte
  /// stream in an unknown state (SECURITY.md rule 2), so nothing more may be read from it.
  public var closesConnection: Bool {
    switch self {
    case .badRequest, .methodNotAllowed, .bodyTooLarge, .uriTooLong, .headersTooLarge, .requestTimeout:
      true
    case .noRoute, .unauthenticated, .forbidden, .rateLimited, .badGateway, .unavailable, .gatewayTimeout, .faultAbort:
      false
    }
  }

  /// The JSON body: `{"error":…,"message":…,"request_id":…}`.
  public func jsonBody(requestID: String) -> String {
    var out = "{\"error\":\""
    out += code
    out += "\",\"message\":"
    JSON.appendQuoted(message, to: &out)
    out += ",\"request_id\":"
    JSON.appendQuoted(requestID, to: &out)
    out += "}"
    return out
  }

  /// gRPC status for gRPC clients (answered as HTTP 200 with trailers).
  public var grpcStatus: Int {
    switch self {
    case .badRequest, .methodNotAllowed: 13
    case .noRoute: 12
    case .unauthenticated: 16
    case .forbidden: 7
    case .bodyTooLarge, .uriTooLong, .headersTooLarge, .rateLimited: 8
    case .badGateway, .unavailable, .faultAbort: 14
    case .gatewayTimeout, .requestTimeout: 4
    }
  }
}

/// A 429's facts: which limit refused, and what the response headers say (draft-ietf-httpapi-
/// ratelimit-headers-07: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`).
public struct RateLimitRefusal: Sendable, Hashable {
  public var limitName: String
  public var limit: Int64
  public var remaining: Int64
  /// Seconds until a request would be admitted (`Retry-After`, at least 1).
  public var retryAfterSeconds: Int64
  /// Seconds until the full burst is available again (`RateLimit-Reset`).
  public var resetSeconds: Int64

  public init(limitName: String, limit: Int64, remaining: Int64, retryAfterSeconds: Int64, resetSeconds: Int64) {
    self.limitName = limitName
    self.limit = limit
    self.remaining = remaining
    self.retryAfterSeconds = max(1, retryAfterSeconds)
    self.resetSeconds = max(1, resetSeconds)
  }
}
