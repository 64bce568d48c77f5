import SluiceCore

/// SPEC §8 audit events. Other capabilities add their kinds here (rate limiting:
/// `rate_limited`, the circuit breaker: `circuit_opened`).
public enum AuditEventKind: String, Sendable, CaseIterable {
  case authDenied = "auth_denied"
  case policyDenied = "policy_denied"
  case configReloaded = "config_reloaded"
  case rateLimited = "rate_limited"
  case circuitOpened = "circuit_opened"
}

/// One audit event. Never holds a credential: `detail` carries provider, reason and similar
/// fixed facts only.
public struct AuditEvent: Sendable {
  public var timeMilliseconds: Int64
  public var kind: AuditEventKind
  public var requestID: String?
  public var route: String?
  public var clientIP: String?
  public var user: String?
  public var detail: [(String, String)]

  public init(
    kind: AuditEventKind, timeMilliseconds: Int64 = WallClock.nowMilliseconds(), requestID: String? = nil,
    route: String? = nil, clientIP: String? = nil, user: String? = nil, detail: [(String, String)] = []
  ) {
    self.kind = kind
    self.timeMilliseconds = timeMilliseconds
    self.requestID = requestID
    self.route = route
    self.clientIP = clientIP
    self.user = user
    self.detail = detail
  }

  public var json: JSONValue {
    var pairs: [(String, JSONValue)] = [
      ("time", .string(WallClock.rfc3339(milliseconds: timeMilliseconds))), ("event", .string(kind.rawValue)),
    ]
    if let requestID { pairs.append(("request_id", .string(requestID))) }
    if let route { pairs.append(("route", .string(route))) }
    if let clientIP { pairs.append(("client_ip", .string(clientIP))) }
    if let user { pairs.append(("user", .string(user))) }
    pairs.append(("detail", .object(detail.map { ($0.0, .string($0.1)) })))
    return .object(pairs)
  }
}

/// The port audit events leave through. `publish` never blocks and never fails the caller: a
/// sink that cannot keep up drops and counts (`sluice_audit_events_dropped_total{sink}`).
public protocol AuditPublisher: AnyObject, Sendable {
  func publish(_ event: AuditEvent)
}
