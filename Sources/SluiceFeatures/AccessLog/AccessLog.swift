import SluiceCore

/// One access log line (SPEC section 7). Filled on the event loop as the request completes;
/// formatted with the hand-written JSON writer (no Foundation), then handed to a sink that
/// writes off the request path.
public struct AccessLogRecord: Sendable {
  public var timeMilliseconds: Int64 = 0
  public var requestID = RequestID(incoming: "")
  // Fields that repeat across lines are pre-quoted `JSONString`s (see there why).
  public var clientIP: JSONString = .empty
  public var method: JSONString = .empty
  public var host: String = ""
  public var path: String = ""
  public var `protocol`: JSONString = .http11
  public var status: Int = 0
  public var route: JSONString?
  public var backend: JSONString?
  public var endpoint: JSONString?
  public var upstreamStatus: Int?
  public var bytesIn: Int = 0
  public var bytesOut: Int = 0
  public var durationMicroseconds: Int = 0
  public var upstreamDurationMicroseconds: Int?
  public var retries: Int = 0
  public var error: String?
  public var user: String?
  /// The TLS server name (SNI) of an https or tls_passthrough connection; the field is
  /// written only when there is one.
  public var serverName: String?

  public init() {}

  /// Appends the JSON object and a newline to `out`, as bytes (see `ByteText`).
  public func appendJSON(to out: inout ByteWriter) {
    var clock = RFC3339Cache()
    appendJSON(to: &out, clock: &clock)
  }

  /// As `appendJSON(to:)`, with the writer's cache of the last second's date and time.
  public func appendJSON(to out: inout ByteWriter, clock: inout RFC3339Cache) {
    out.append("{\"time\":\"" as StaticString)
    ByteText.appendRFC3339(milliseconds: timeMilliseconds, cache: &clock, to: &out)
    out.append("\",\"request_id\":" as StaticString)
    if let incoming = requestID.incoming {
      ByteText.appendQuoted(incoming, to: &out)
    } else {
      out.append(UInt8(ascii: "\""))
      requestID.withUTF8 { out.append($0) }
      out.append(UInt8(ascii: "\""))
    }
    out.append(",\"client_ip\":" as StaticString)
    ByteText.append(clientIP, to: &out)
    out.append(",\"method\":" as StaticString)
    ByteText.append(method, to: &out)
    out.append(",\"host\":" as StaticString)
    ByteText.appendQuoted(host, to: &out)
    out.append(",\"path\":" as StaticString)
    ByteText.appendQuoted(path, to: &out)
    out.append(",\"protocol\":" as StaticString)
    ByteText.append(`protocol`, to: &out)
    out.append(",\"status\":" as StaticString)
    ByteText.append(status, to: &out)
    out.append(",\"route\":" as StaticString)
    Self.optional(route, &out)
    out.append(",\"backend\":" as StaticString)
    Self.optional(backend, &out)
    out.append(",\"endpoint\":" as StaticString)
    Self.optional(endpoint, &out)
    out.append(",\"upstream_status\":" as StaticString)
    if let upstreamStatus { ByteText.append(upstreamStatus, to: &out) } else { out.append("null" as StaticString) }
    out.append(",\"bytes_in\":" as StaticString)
    ByteText.append(bytesIn, to: &out)
    out.append(",\"bytes_out\":" as StaticString)
    ByteText.append(bytesOut, to: &out)
    out.append(",\"duration_ms\":" as StaticString)
    Self.millis(durationMicroseconds, &out)
    out.append(",\"upstream_duration_ms\":" as StaticString)
    if let upstreamDurationMicroseconds { Self.millis(upstreamDurationMicroseconds, &out) } else { out.append("null" as StaticString) }
    out.append(",\"retries\":" as StaticString)
    ByteText.append(retries, to: &out)
    out.append(",\"error\":" as StaticString)
    Self.optional(error, &out)
    out.append(",\"user\":" as StaticString)
    Self.optional(user, &out)
    if let serverName {
      out.append(",\"server_name\":" as StaticString)
      ByteText.appendQuoted(serverName, to: &out)
    }
    out.append("}\n" as StaticString)
  }

  /// The line as a `String` (tests and tools).
  public var jsonLine: String {
    var bytes = ByteWriter()
    appendJSON(to: &bytes)
    return bytes.string
  }

  @inline(__always) static func optional(_ value: JSONString?, _ out: inout ByteWriter) {
    if let value { ByteText.append(value, to: &out) } else { out.append("null" as StaticString) }
  }

  static func optional(_ value: String?, _ out: inout ByteWriter) {
    if let value { ByteText.appendQuoted(value, to: &out) } else { out.append("null" as StaticString) }
  }

  /// Microseconds as milliseconds with three decimals (`1.234`).
  static func millis(_ micros: Int, _ out: inout ByteWriter) {
    if micros < 0 { out.append(UInt8(ascii: "-")) }
    ByteText.append(Int(micros.magnitude / 1000), to: &out)
    out.append(UInt8(ascii: "."))
    ByteText.append(Int(micros.magnitude % 1000), width: 3, to: &out)
  }
}

/// Where formatted access log chunks go. Implementations must never block the caller: a slow
/// or stuck output drops chunks and counts the dropped lines instead.
public protocol AccessLogSink: Sendable {
  /// Takes a chunk of complete lines. Returns false when it had to drop it.
  func submit(_ chunk: [UInt8], lines: Int) -> Bool
  /// Lines dropped so far.
  var droppedLines: Int { get }
}
