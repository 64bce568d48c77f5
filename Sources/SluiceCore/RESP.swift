/// A Redis reply (RESP2). Pure, so the parser is unit-tested and fuzzed apart from sockets.
public indirect enum RESPValue: Sendable, Hashable {
  case simple(String)
  case error(String)
  case integer(Int64)
  case bulk([UInt8])
  /// `$-1` / `*-1`.
  case null
  case array([RESPValue])

  /// The error's first word (`NOSCRIPT`, `WRONGTYPE`, `NOAUTH`…).
  public var errorCode: Substring? {
    guard case .error(let text) = self else { return nil }
    return text.split(separator: " ", maxSplits: 1).first
  }
}

/// An incremental RESP2 reply parser: bytes arrive as TCP delivers them, `parse` answers one
/// reply, "need more", or a protocol error (after which the connection must be closed — the
/// stream can no longer be framed). Bounded: bulk strings up to `maxBulk` bytes, arrays up to
/// `maxElements` and `maxDepth` deep, lines up to `maxLine` bytes, so a hostile or broken peer
/// cannot make the gateway allocate without limit.
public struct RESPParser: Sendable {
  public enum Failure: Error, Sendable, Hashable {
    case badType(UInt8)
    case badLine
    case badLength
    case tooLarge
    case tooDeep
  }

  public enum Outcome: Sendable, Hashable {
    /// A reply and the bytes it used.
    case value(RESPValue, consumed: Int)
    case needMore
  }

  public var maxBulk = 1 << 20
  public var maxElements = 4096
  public var maxDepth = 8
  public var maxLine = 64 * 1024

  public init() {}

  /// Parses one reply from the front of `bytes`.
  public func parse(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> Outcome {
    var index = 0
    guard let value = try value(bytes, &index, depth: 0) else { return .needMore }
    return .value(value, consumed: index)
  }

  public func parse(_ bytes: [UInt8]) throws(Failure) -> Outcome {
    let result: Result<Outcome, Failure> = bytes.withUnsafeBytes { buffer in
      Result { () throws(Failure) in try parse(buffer) }
    }
    return try result.get()
  }

  /// The line from `index` up to CRLF (without it), or nil when the CRLF has not arrived.
  func line(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) throws(Failure) -> Range<Int>? {
    var i = index
    while i < bytes.count {
      if bytes[i] == 0x0D {
        guard i + 1 < bytes.count else { return nil }
        guard bytes[i + 1] == 0x0A else { throw .badLine }
        let range = index..<i
        index = i + 2
        return range
      }
      if bytes[i] == 0x0A { throw .badLine }
      i += 1
      if i - index > maxLine { throw .tooLarge }
    }
    if i - index > maxLine { throw .tooLarge }
    return nil
  }

  func integer(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws(Failure) -> Int64 {
    guard !range.isEmpty, range.count <= 20 else { throw .badLength }
    var i = range.lowerBound
    var negative = false
    if bytes[i] == UInt8(ascii: "-") {
      negative = true
      i += 1
      guard i < range.upperBound else { throw .badLength }
    }
    var value: Int64 = 0
    while i < range.upperBound {
      let d = bytes[i]
      guard d >= 0x30 && d <= 0x39 else { throw .badLength }
      let (m, o1) = value.multipliedReportingOverflow(by: 10)
      let (a, o2) = m.addingReportingOverflow(Int64(d - 0x30))
      guard !o1 && !o2 else { throw .badLength }
      value = a
      i += 1
    }
    return negative ? -value : value
  }

  func text(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
    String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
  }

  func value(_ bytes: UnsafeRawBufferPointer, _ index: inout Int, depth: Int) throws(Failure) -> RESPValue? {
    guard depth <= maxDepth else { throw .tooDeep }
    guard index < bytes.count else { return nil }
    let type = bytes[index]
    var i = index + 1
    switch type {
    case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"):
      guard let range = try line(bytes, &i) else { return nil }
      index = i
      switch type {
      case UInt8(ascii: "+"): return .simple(text(bytes, range))
      case UInt8(ascii: "-"): return .error(text(bytes, range))
      default: return .integer(try integer(bytes, range))
      }
    case UInt8(ascii: "$"):
      guard let range = try line(bytes, &i) else { return nil }
      let length = try integer(bytes, range)
      if length == -1 {
        index = i
        return .null
      }
      guard length >= 0 else { throw .badLength }
      guard length <= maxBulk else { throw .tooLarge }
      let end = i + Int(length)
      guard end + 2 <= bytes.count else { return nil }
      guard bytes[end] == 0x0D && bytes[end + 1] == 0x0A else { throw .badLine }
      let payload = Array(UnsafeRawBufferPointer(rebasing: bytes[i..<end]))
      index = end + 2
      return .bulk(payload)
    case UInt8(ascii: "*"):
      guard let range = try line(bytes, &i) else { return nil }
      let count = try integer(bytes, range)
      if count == -1 {
        index = i
        return .null
      }
      guard count >= 0 else { throw .badLength }
      guard count <= maxElements else { throw .tooLarge }
      var elements: [RESPValue] = []
      elements.reserveCapacity(Int(count))
      for _ in 0..<count {
        guard let element = try value(bytes, &i, depth: depth + 1) else { return nil }
        elements.append(element)
      }
      index = i
      return .array(elements)
    default:
      throw .badType(type)
    }
  }
}

/// Commands as RESP arrays of bulk strings (what every Redis accepts, inline commands aside).
public enum RESPEncoder {
  public static func command(_ parts: [String], into out: inout [UInt8]) {
    out.append(UInt8(ascii: "*"))
    out.append(contentsOf: String(parts.count).utf8)
    out.append(0x0D)
    out.append(0x0A)
    for part in parts {
      out.append(UInt8(ascii: "$"))
      out.append(contentsOf: String(part.utf8.count).utf8)
      out.append(0x0D)
      out.append(0x0A)
      out.append(contentsOf: part.utf8)
      out.append(0x0D)
      out.append(0x0A)
    }
  }

  public static func command(_ parts: [String]) -> [UInt8] {
    var out: [UInt8] = []
    command(parts, into: &out)
    return out
  }
}
