import SluiceCore

/// One access log line (SPEC section 7). Filled on the event loop as the request completes;
/// formatted with the hand-written JSON writer (no Foundation), then handed to a sink that
/// writes off the request path.
public struct AccessLogRecord: Sendable {
  public var timeMilliseconds: Int64 = 0
  public var requestID = RequestID(incoming: "")
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

  /// Appends the JSON object and a newline to `out`, as bytes (see `ByteText`).
  public func appendJSON(to out: inout ByteWriter) {
    ByteText.append("{\"time\":\"", to: &out)
    ByteText.appendRFC3339(milliseconds: timeMilliseconds, to: &out)
    ByteText.append("\",\"request_id\":", to: &out)
    if let incoming = requestID.incoming {
      ByteText.appendQuoted(incoming, to: &out)
    } else {
      out.append(UInt8(ascii: "\""))
      requestID.withUTF8 { out.append($0) }
      out.append(UInt8(ascii: "\""))
    }
    ByteText.append(",\"client_ip\":", to: &out)
    ByteText.appendQuoted(clientIP, to: &out)
    ByteText.append(",\"method\":", to: &out)
    ByteText.appendQuoted(method, to: &out)
    ByteText.append(",\"host\":", to: &out)
    ByteText.appendQuoted(host, to: &out)
    ByteText.append(",\"path\":", to: &out)
    ByteText.appendQuoted(path, to: &out)
    ByteText.append(",\"protocol\":", to: &out)
    ByteText.appendQuoted(`protocol`, to: &out)
    ByteText.append(",\"status\":", to: &out)
    ByteText.append(status, to: &out)
    ByteText.append(",\"route\":", to: &out)
    Self.optional(route, &out)
    ByteText.append(",\"backend\":", to: &out)
    Self.optional(backend, &out)
    ByteText.append(",\"endpoint\":", to: &out)
    Self.optional(endpoint, &out)
    ByteText.append(",\"upstream_status\":", to: &out)
    if let upstreamStatus { ByteText.append(upstreamStatus, to: &out) } else { ByteText.append("null", to: &out) }
    ByteText.append(",\"bytes_in\":", to: &out)
    ByteText.append(bytesIn, to: &out)
    ByteText.append(",\"bytes_out\":", to: &out)
    ByteText.append(bytesOut, to: &out)
    ByteText.append(",\"duration_ms\":", to: &out)
    Self.millis(durationMicroseconds, &out)
    ByteText.append(",\"upstream_duration_ms\":", to: &out)
    if let upstreamDurationMicroseconds { Self.millis(upstreamDurationMicroseconds, &out) } else { ByteText.append("null", to: &out) }
    ByteText.append(",\"retries\":", to: &out)
    ByteText.append(retries, to: &out)
    ByteText.append(",\"error\":", to: &out)
    Self.optional(error, &out)
    ByteText.append(",\"user\":", to: &out)
    Self.optional(user, &out)
    ByteText.append("}\n", to: &out)
  }

  /// The line as a `String` (tests and tools).
  public var jsonLine: String {
    var bytes = ByteWriter()
    appendJSON(to: &bytes)
    return bytes.string
  }

  static func optional(_ value: String?, _ out: inout ByteWriter) {
    if let value { ByteText.appendQuoted(value, to: &out) } else { ByteText.append("null", to: &out) }
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
