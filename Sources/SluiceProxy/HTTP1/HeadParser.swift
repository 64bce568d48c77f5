import NIOCore
import SluiceCore

/// How a message body is delimited (RFC 9112 §6).
enum BodyFraming: Equatable, Sendable {
  case none
  case length(Int)
  case chunked
  /// A response without length or chunked coding: the body ends when the upstream closes.
  case untilClose
}

/// A request head as Sluice's parser reads it, with the facts the request path needs gathered
/// in the same pass over the bytes.
struct RequestHead: Sendable {
  var method: String
  var target: String
  var versionMinor: Int
  var fields: HeadFields
  var framing: BodyFraming = .none
  var keepAlive = true
  var host = ""
  var hostCount = 0
  var expectContinue = false
  /// `Connection` names headers other than itself (`close`/`keep-alive` aside): they must be
  /// removed before forwarding.
  var connectionNamesHeaders = false
  /// Set when `Transfer-Encoding` is present but is not exactly `chunked` (answered with 400
  /// by the request path, after the method and version checks).
  var transferEncodingInvalid = false
  var hasTransferEncoding = false
  /// Bytes of the header block (the head without its request line).
  var headerBytes = 0

  var isHEAD: Bool { method == "HEAD" }
}

/// An upstream response head.
struct ResponseHead: Sendable {
  var status: Int
  var versionMinor: Int
  /// Offsets of the reason phrase in `fields.bytes`.
  var reasonStart: Int
  var reasonLength: Int
  var fields: HeadFields
  var framing: BodyFraming = .untilClose
  /// False when the upstream asked to close after this response.
  var keepAlive = true
  /// As for requests: `Connection` names headers to remove.
  var connectionNamesHeaders = false
  /// The body is framed by `Transfer-Encoding`: any `Content-Length` beside it is not the
  /// length of what is forwarded and must not reach the client.
  var hasTransferEncoding = false
}

/// Strict HTTP/1.x head parsing over bytes already known to hold one complete head (see
/// `HeadScanner`). Pure functions of their input; fuzzed by `Fuzz/FuzzHTTP1`.
///
/// Sluice parses heads itself rather than with NIO's llhttp-based decoder: that decoder hands
/// every header over as two `String`s in an `HTTPHeaders` array and every part through the
/// pipeline as a boxed `NIOAny`; here a head is one slice of the read buffer plus offsets, and
/// the framing facts come out of the same pass (bench/RESULTS.md has what it bought).
enum HeadParser {
  /// Empties a recycled field list keeping its capacity (no allocation when the head that
  /// used it is gone), or gives a new one room for a typical head.
  @inline(__always) static func prepare(_ fields: inout [HeaderField]) {
    if fields.capacity == 0 {
      fields.reserveCapacity(8)
    } else {
      fields.removeAll(keepingCapacity: true)
    }
  }

  enum FieldResult {
    case field(HeaderField)
    case end
    case invalid(String)
  }

  /// Parses a request head held exactly by `head` (request line to the blank line).
  static func parseRequest(_ head: ByteBuffer, maxHeaders: Int, maxURIBytes: Int) -> Result<RequestHead, GatewayError> {
    var storage: [HeaderField] = []
    return parseRequest(head, maxHeaders: maxHeaders, maxURIBytes: maxURIBytes, storage: &storage)
  }

  /// `storage` is the field list to fill (emptied first, its capacity kept): the request path
  /// hands in a list recycled from an earlier head, so parsing allocates nothing.
  static func parseRequest(
    _ head: ByteBuffer, maxHeaders: Int, maxURIBytes: Int, storage: inout [HeaderField]
  ) -> Result<RequestHead, GatewayError> {
    head.withUnsafeReadableBytes { raw in
      parseRequest(raw, head: head, maxHeaders: maxHeaders, maxURIBytes: maxURIBytes, storage: &storage)
    }
  }

  static func parseRequest(
    _ raw: UnsafeRawBufferPointer, head: ByteBuffer, maxHeaders: Int, maxURIBytes: Int, storage fields: inout [HeaderField]
  ) -> Result<RequestHead, GatewayError> {
    let n = raw.count
    var i = 0
    while i < n && HTTP1Bytes.isTokenByte(raw[i]) { i += 1 }
    guard i > 0, i < n, raw[i] == UInt8(ascii: " ") else { return .failure(.badRequest("malformed request line")) }
    let methodEnd = i
    i += 1
    let targetStart = i
    while i < n && raw[i] > 0x20 && raw[i] < 0x7F { i += 1 }
    let targetEnd = i
    guard targetEnd > targetStart, i < n else { return .failure(.badRequest("malformed request line")) }
    if targetEnd - targetStart > maxURIBytes { return .failure(.uriTooLong) }
    guard raw[i] == UInt8(ascii: " ") else {
      return .failure(.badRequest(raw[i] >= 0x80 ? "invalid request target" : "malformed request line"))
    }
    i += 1
    guard let minor = version(raw, &i) else { return .failure(.badRequest("unsupported HTTP version")) }
    guard i + 1 < n, raw[i] == 0x0D, raw[i + 1] == 0x0A else { return .failure(.badRequest("malformed request line")) }
    i += 2
    var request = RequestHead(
      method: string(raw, 0, methodEnd), target: string(raw, targetStart, targetEnd - targetStart),
      versionMinor: minor, fields: HeadFields())
    request.headerBytes = n - i
    prepare(&fields)
    var contentLength: Int?
    var connection = ConnectionFacts()
    var teCount = 0
    var teChunked = false
    loop: while true {
      switch parseField(raw, &i) {
      case .end: break loop
      case .invalid(let why): return .failure(.badRequest(why))
      case .field(let field):
        if fields.count >= maxHeaders { return .failure(.headersTooLarge) }
        fields.append(field)
        let ns = Int(field.nameStart)
        let vs = Int(field.valueStart)
        let vl = Int(field.valueLength)
        switch field.nameLength {
        case 4 where HTTP1Bytes.equalsLower(raw, ns, 4, "host" as StaticString):
          request.hostCount += 1
          request.host = string(raw, vs, vl)
        case 6 where HTTP1Bytes.equalsLower(raw, ns, 6, "expect" as StaticString):
          if HTTP1Bytes.equalsLower(raw, vs, vl, "100-continue" as StaticString) { request.expectContinue = true }
        case 10 where HTTP1Bytes.equalsLower(raw, ns, 10, "connection" as StaticString):
          connection.add(raw, vs, vl)
        case 14 where HTTP1Bytes.equalsLower(raw, ns, 14, "content-length" as StaticString):
          guard contentLength == nil else { return .failure(.badRequest("more than one Content-Length")) }
          guard let length = HTTP1Bytes.parseLength(raw, vs, vl) else {
            return .failure(.badRequest("invalid Content-Length"))
          }
          contentLength = length
        case 17 where HTTP1Bytes.equalsLower(raw, ns, 17, "transfer-encoding" as StaticString):
          teCount += 1
          teChunked = HTTP1Bytes.trimmedEqualsLower(raw, vs, vl, "chunked")
        default: break
        }
      }
    }
    request.fields = HeadFields(bytes: head, fields: fields)
    request.keepAlive = connection.keepAlive(minor: minor)
    request.connectionNamesHeaders = connection.namesHeaders
    if teCount > 0 {
      request.hasTransferEncoding = true
      if contentLength != nil { return .failure(.badRequest("both Content-Length and Transfer-Encoding")) }
      if teCount == 1 && teChunked { request.framing = .chunked } else { request.transferEncodingInvalid = true }
    } else if let contentLength, contentLength > 0 {
      request.framing = .length(contentLength)
    } else if contentLength != nil {
      request.framing = .length(0)
    }
    return .success(request)
  }

  /// Parses an upstream response head. `requestWasHEAD` decides whether a body follows.
  static func parseResponse(_ head: ByteBuffer, requestWasHEAD: Bool, maxHeaders: Int) -> Result<ResponseHead, UpstreamProtocolError> {
    var storage: [HeaderField] = []
    return parseResponse(head, requestWasHEAD: requestWasHEAD, maxHeaders: maxHeaders, storage: &storage)
  }

  /// `storage` as for `parseRequest`.
  static func parseResponse(
    _ head: ByteBuffer, requestWasHEAD: Bool, maxHeaders: Int, storage: inout [HeaderField]
  ) -> Result<ResponseHead, UpstreamProtocolError> {
    head.withUnsafeReadableBytes { raw in
      parseResponse(raw, head: head, requestWasHEAD: requestWasHEAD, maxHeaders: maxHeaders, storage: &storage)
    }
  }

  static func parseResponse(
    _ raw: UnsafeRawBufferPointer, head: ByteBuffer, requestWasHEAD: Bool, maxHeaders: Int,
    storage fields: inout [HeaderField]
  ) -> Result<ResponseHead, UpstreamProtocolError> {
    let n = raw.count
    var i = 0
    guard let minor = version(raw, &i), i + 4 < n, raw[i] == UInt8(ascii: " ") else {
      return .failure(UpstreamProtocolError(description: "malformed status line"))
    }
    i += 1
    var status = 0
    for _ in 0..<3 {
      let digit = raw[i]
      guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else {
        return .failure(UpstreamProtocolError(description: "malformed status line"))
      }
      status = status * 10 + Int(digit - UInt8(ascii: "0"))
      i += 1
    }
    guard status >= 100 else { return .failure(UpstreamProtocolError(description: "malformed status line")) }
    var reasonStart = i
    if raw[i] == UInt8(ascii: " ") {
      i += 1
      reasonStart = i
      while i < n && raw[i] != 0x0D {
        guard HTTP1Bytes.isValueByte(raw[i]) else { return .failure(UpstreamProtocolError(description: "malformed status line")) }
        i += 1
      }
    }
    let reasonLength = i - reasonStart
    guard i + 1 < n, raw[i] == 0x0D, raw[i + 1] == 0x0A else {
      return .failure(UpstreamProtocolError(description: "malformed status line"))
    }
    i += 2
    var response = ResponseHead(
      status: status, versionMinor: minor, reasonStart: reasonStart, reasonLength: reasonLength, fields: HeadFields())
    prepare(&fields)
    var contentLength: Int?
    var chunked = false
    var hasTransferEncoding = false
    var connection = ConnectionFacts()
    loop: while true {
      switch parseField(raw, &i) {
      case .end: break loop
      case .invalid(let why): return .failure(UpstreamProtocolError(description: why))
      case .field(let field):
        if fields.count >= maxHeaders { return .failure(UpstreamProtocolError(description: "too many header fields")) }
        fields.append(field)
        let ns = Int(field.nameStart)
        let vs = Int(field.valueStart)
        let vl = Int(field.valueLength)
        switch field.nameLength {
        case 10 where HTTP1Bytes.equalsLower(raw, ns, 10, "connection" as StaticString):
          connection.add(raw, vs, vl)
        case 14 where HTTP1Bytes.equalsLower(raw, ns, 14, "content-length" as StaticString):
          guard let length = HTTP1Bytes.parseLength(raw, vs, vl) else {
            return .failure(UpstreamProtocolError(description: "invalid Content-Length"))
          }
          if let contentLength, contentLength != length {
            return .failure(UpstreamProtocolError(description: "conflicting Content-Length"))
          }
          contentLength = length
        case 17 where HTTP1Bytes.equalsLower(raw, ns, 17, "transfer-encoding" as StaticString):
          hasTransferEncoding = true
          chunked = HTTP1Bytes.lastItemIs(raw, vs, vl, "chunked")
        default: break
        }
      }
    }
    response.fields = HeadFields(bytes: head, fields: fields)
    response.keepAlive = connection.keepAlive(minor: minor)
    response.connectionNamesHeaders = connection.namesHeaders
    response.hasTransferEncoding = hasTransferEncoding
    // Both framings in one response: Transfer-Encoding wins (RFC 9112 §6.3), and a connection
    // that sent it is not trusted with another request.
    if hasTransferEncoding && contentLength != nil { response.keepAlive = false }
    // RFC 9112 §6.3, in its order.
    if requestWasHEAD || status < 200 || status == 204 || status == 304 {
      response.framing = .none
    } else if hasTransferEncoding {
      response.framing = chunked ? .chunked : .untilClose
    } else if let contentLength {
      response.framing = .length(contentLength)
    } else {
      response.framing = .untilClose
    }
    if response.framing == .untilClose { response.keepAlive = false }
    return .success(response)
  }

  /// `HTTP/1.0` or `HTTP/1.1` at `i`; advances past it.
  @inline(__always) static func version(_ raw: UnsafeRawBufferPointer, _ i: inout Int) -> Int? {
    guard i + 8 <= raw.count, raw[i] == UInt8(ascii: "H"), raw[i + 1] == UInt8(ascii: "T"),
      raw[i + 2] == UInt8(ascii: "T"), raw[i + 3] == UInt8(ascii: "P"), raw[i + 4] == UInt8(ascii: "/"),
      raw[i + 5] == UInt8(ascii: "1"), raw[i + 6] == UInt8(ascii: ".")
    else { return nil }
    let minor = raw[i + 7]
    guard minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1") else { return nil }
    i += 8
    return Int(minor - UInt8(ascii: "0"))
  }

  /// One header line at `i` (or the blank line that ends the head); advances past it.
  /// Rejects obs-fold, whitespace before the colon, empty or non-token names, and control
  /// bytes (NUL, bare CR) in values. Bare LF never gets here: `HeadScanner` rejects it.
  @inline(__always) static func parseField(_ raw: UnsafeRawBufferPointer, _ i: inout Int) -> FieldResult {
    let n = raw.count
    guard i < n, let base = raw.baseAddress else { return .invalid("truncated head") }
    let p = base.assumingMemoryBound(to: UInt8.self)
    var j = i  // a local cursor stays in a register; `i` is written once, at the end
    if p[j] == 0x0D {
      guard j + 1 < n, p[j + 1] == 0x0A else { return .invalid("malformed header line") }
      i = j + 2
      return .end
    }
    if p[j] == 0x20 || p[j] == 0x09 { return .invalid("obsolete line folding") }
    let nameStart = j
    // Eight name bytes at a time while they are letters, digits or `-`; any other token byte
    // (`_`, `.`, …) is stepped over singly, and the first non-token byte ends the name.
    while true {
      if j + 8 <= n {
        let mask = HTTP1Bytes.nonNameCharMask(UInt64(littleEndian: UnsafeRawPointer(p + j).loadUnaligned(as: UInt64.self)))
        if mask == 0 {
          j += 8
          continue
        }
        j += mask.trailingZeroBitCount &>> 3
        if HTTP1Bytes.isTokenByte(p[j]) {
          j += 1
          continue
        }
        break
      }
      while j < n && HTTP1Bytes.isTokenByte(p[j]) { j += 1 }
      break
    }
    guard j < n, p[j] == UInt8(ascii: ":"), j > nameStart else { return .invalid("invalid header name") }
    let nameLength = j - nameStart
    j += 1
    while j < n && (p[j] == 0x20 || p[j] == 0x09) { j += 1 }
    let valueStart = j
    // Eight value bytes at a time: a word with no control byte (CR included) or DEL is skipped
    // whole, and in one that has one the mask says where the first is, so the bytes before
    // the line's CR are never visited one by one (HTAB, allowed, is the only way back in).
    while true {
      if j + 8 <= n {
        let word = UInt64(littleEndian: UnsafeRawPointer(p + j).loadUnaligned(as: UInt64.self))
        let mask = HTTP1Bytes.controlOrDELMask(word)
        if mask == 0 {
          j += 8
          continue
        }
        j += mask.trailingZeroBitCount &>> 3
      } else {
        while j < n && p[j] >= 0x20 && p[j] != 0x7F { j += 1 }
        guard j < n else { return .invalid("malformed header line") }
      }
      let byte = p[j]
      if byte == 0x0D { break }
      guard byte == 0x09 else { return .invalid("invalid byte in header value") }
      j += 1
    }
    guard j + 1 < n, p[j + 1] == 0x0A else { return .invalid("malformed header line") }
    var valueEnd = j
    while valueEnd > valueStart && (p[valueEnd - 1] == 0x20 || p[valueEnd - 1] == 0x09) { valueEnd -= 1 }
    i = j + 2
    return .field(
      HeaderField(
        nameStart: Int32(nameStart), nameLength: Int32(nameLength), valueStart: Int32(valueStart),
        valueLength: Int32(valueEnd - valueStart), lineEnd: Int32(i)))
  }

  @inline(__always) static func string(_ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int) -> String {
    String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)]), as: UTF8.self)
  }
}

/// What the `Connection` fields of a head say, gathered field by field (requests and responses).
struct ConnectionFacts {
  var close = false
  var keepAliveToken = false
  var namesHeaders = false

  /// One pass over the comma-separated items of a `Connection` value (trimmed, any case):
  /// `close`, `keep-alive`, or a header name to drop. (Three passes, one per question, were
  /// 0.5 % of a proxied request's CPU: every upstream response carries `Connection`.)
  mutating func add(_ raw: UnsafeRawBufferPointer, _ start: Int, _ length: Int) {
    let end = start + length
    var itemStart = start
    var i = start
    while i <= end {
      if i == end || raw[i] == UInt8(ascii: ",") {
        var s = itemStart
        var e = i
        while s < e && (raw[s] == 0x20 || raw[s] == 0x09) { s += 1 }
        while e > s && (raw[e - 1] == 0x20 || raw[e - 1] == 0x09) { e -= 1 }
        if e > s {
          if HTTP1Bytes.equalsLower(raw, s, e - s, "close" as StaticString) {
            close = true
          } else if HTTP1Bytes.equalsLower(raw, s, e - s, "keep-alive" as StaticString) {
            keepAliveToken = true
          } else {
            namesHeaders = true
          }
        }
        itemStart = i + 1
      }
      i += 1
    }
  }

  /// HTTP/1.1 stays open unless `close`; HTTP/1.0 only with `keep-alive` (RFC 9112 §9.3).
  func keepAlive(minor: Int) -> Bool {
    minor >= 1 ? !close : (keepAliveToken && !close)
  }
}

/// Finds where a head ends in bytes that arrive in pieces: after the first empty line.
/// Rejects a bare LF as soon as it is seen (request smuggling relies on parsers that accept
/// it), and remembers how far it looked so a head sent a byte at a time is scanned once.
struct HeadScanner: Sendable {
  var scanned = 0

  enum Outcome: Equatable {
    case incomplete
    /// The head is `raw[0..<length]`.
    case complete(length: Int)
    case bareLF
  }

  mutating func scan(_ raw: UnsafeRawBufferPointer) -> Outcome {
    let n = raw.count
    var i = scanned
    while i < n {
      guard let base = raw.baseAddress, let found = memchr(base + i, 0x0A, n - i) else {
        scanned = max(0, n - 1)
        return .incomplete
      }
      let lf = base.distance(to: UnsafeRawPointer(found))
      if lf == 0 || raw[lf - 1] != 0x0D { return .bareLF }
      // "\r\n\r\n": the line that just ended is empty, or the next one is.
      if lf >= 3 && raw[lf - 2] == 0x0A && raw[lf - 3] == 0x0D {
        scanned = 0
        return .complete(length: lf + 1)
      }
      i = lf + 1
    }
    scanned = n
    return .incomplete
  }

  mutating func reset() { scanned = 0 }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
