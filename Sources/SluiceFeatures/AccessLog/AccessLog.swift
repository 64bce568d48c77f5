import SluiceCore

/// One access log line (SPEC section 7). Filled on the event loop as the request completes;
/// formatted with the hand-written JSON writer (no Foundation), then handed to a sink that
/// writes off the request path.
public struct AccessLogRecord: Sendable {
  public var timeMilliseconds: Int64 = 0
  public var requestID: String = ""
  public var clientIP: String = ""
  public var method: String = ""
  public var host: String = ""
  public var path: String = ""
  public var `protocol`: String = "HTTP/1.1"
  public var status: Int = 0
  public var route: String?
  public var backend: String?
  public var endpoint: String?
  public var upstreamStatus: Int?
  public var bytesIn: Int = 0
  public var bytesOut: Int = 0
  public var durationMicroseconds: Int = 0
  public var upstreamDurationMicroseconds: Int?
  public var retries: Int = 0
  public var error: String?
  public var user: String?

  public init() {}

  /// Appends the JSON object and a newline to `out`.
  public func appendJSON(to out: inout String) {
    out += "{\"time\":\""
    out += WallClock.rfc3339(milliseconds: timeMilliseconds)
    out += "\",\"request_id\":"
    JSON.appendQuoted(requestID, to: &out)
    out += ",\"client_ip\":"
    JSON.appendQuoted(clientIP, to: &out)
    out += ",\"method\":"
    JSON.appendQuoted(method, to: &out)
    out += ",\"host\":"
    JSON.appendQuoted(host, to: &out)
    out += ",\"path\":"
    JSON.appendQuoted(path, to: &out)
    out += ",\"protocol\":"
    JSON.appendQuoted(`protocol`, to: &out)
    out += ",\"status\":"
    out += String(status)
    out += ",\"route\":"
    Self.optional(route, &out)
    out += ",\"backend\":"
    Self.optional(backend, &out)
    out += ",\"endpoint\":"
    Self.optional(endpoint, &out)
    out += ",\"upstream_status\":"
    out += upstreamStatus.map(String.init) ?? "null"
    out += ",\"bytes_in\":"
    out += String(bytesIn)
    out += ",\"bytes_out\":"
    out += String(bytesOut)
    out += ",\"duration_ms\":"
    out += Self.millis(durationMicroseconds)
    out += ",\"upstream_duration_ms\":"
    out += upstreamDurationMicroseconds.map(Self.millis) ?? "null"
    out += ",\"retries\":"
    out += String(retries)
    out += ",\"error\":"
    Self.optional(error, &out)
    out += ",\"user\":"
    Self.optional(user, &out)
    out += "}\n"
  }

  static func optional(_ value: String?, _ out: inout String) {
    if let value { JSON.appendQuoted(value, to: &out) } else { out += "null" }
  }

  /// Microseconds as milliseconds with three decimals (`1.234`).
  static func millis(_ micros: Int) -> String {
    let whole = micros / 1000
    let frac = micros % 1000
    let f = String(frac)
    return "\(whole)." + String(repeating: "0", count: 3 - f.count) + f
  }
}

/// Where formatted access log chunks go. Implementations must never block the caller: a slow
/// or stuck output drops chunks and counts the dropped lines instead.
public protocol AccessLogSink: Sendable {
  /// Takes a chunk of complete lines. Returns false when it had to drop it.
  func submit(_ chunk: String, lines: Int) -> Bool
  /// Lines dropped so far.
  var droppedLines: Int { get }
}
