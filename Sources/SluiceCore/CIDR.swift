/// An IPv4 or IPv6 network (`10.0.0.0/8`, `fd00::/8`), for `trusted_proxies` and, later,
/// source-IP policies. Parsing is our own so that no resolver is ever involved.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
  public var address: [UInt8]  // 4 or 16 bytes
  public var prefix: Int

  public init?(_ text: String) {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count <= 2, let addr = IPAddress.parse(String(parts[0])) else { return nil }
    let maxPrefix = addr.count * 8
    if parts.count == 2 {
      guard let p = Int(parts[1]), p >= 0, p <= maxPrefix else { return nil }
      prefix = p
    } else {
      prefix = maxPrefix
    }
    address = addr
  }

  public func contains(_ ip: [UInt8]) -> Bool {
    var candidate = ip
    // IPv4-mapped IPv6 (::ffff:a.b.c.d) compares as IPv4
    if candidate.count == 16 && address.count == 4 && candidate[0..<10].allSatisfy({ $0 == 0 })
      && candidate[10] == 0xFF && candidate[11] == 0xFF
    {
      candidate = Array(candidate[12..<16])
    }
    guard candidate.count == address.count else { return false }
    var bits = prefix
    var i = 0
    while bits > 0 {
      let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
      if candidate[i] & mask != address[i] & mask { return false }
      bits -= 8
      i += 1
    }
    return true
  }

  public var description: String { IPAddress.format(address) + "/\(prefix)" }
}

public enum IPAddress {
  /// Parses dotted IPv4 or RFC 4291 IPv6 text (no zone ids) into 4 or 16 bytes.
  public static func parse(_ text: String) -> [UInt8]? {
    if text.contains(":") { return parseV6(text) }
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    var out: [UInt8] = []
    for part in parts {
      guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
        let v = Int(part), v <= 255
      else { return nil }
      out.append(UInt8(v))
    }
    return out
  }

  static func parseV6(_ text: String) -> [UInt8]? {
    var text = Substring(text)
    if text.hasPrefix("[") && text.hasSuffix("]") { text = text.dropFirst().dropLast() }
    let halves = text.components(separatedBy: "::")
    guard halves.count <= 2 else { return nil }
    func groups(_ s: Substring) -> [UInt16]? {
      if s.isEmpty { return [] }
      var out: [UInt16] = []
      let items = s.split(separator: ":", omittingEmptySubsequences: false)
      for (n, item) in items.enumerated() {
        if n == items.count - 1, item.contains("."), let v4 = parse(String(item)) {
          out.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
          out.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
          continue
        }
        guard !item.isEmpty, item.count <= 4, let v = UInt16(item, radix: 16) else { return nil }
        out.append(v)
      }
      return out
    }
    guard let head = groups(halves[0]) else { return nil }
    var all: [UInt16]
    if halves.count == 2 {
      guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
      all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
    } else {
      guard head.count == 8 else { return nil }
      all = head
    }
    return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
  }

  public static func format(_ bytes: [UInt8]) -> String {
    if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
    var groups: [String] = []
    for i in stride(from: 0, to: bytes.count, by: 2) {
      groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
    }
    return groups.joined(separator: ":")
  }
}

extension Substring {
  fileprivate func components(separatedBy separator: String) -> [Substring] {
    var out: [Substring] = []
    var rest = self[...]
    while let range = rest.firstRange(of: separator) {
      out.append(rest[rest.startIndex..<range.lowerBound])
      rest = rest[range.upperBound...]
    }
    out.append(rest)
    return out
  }
}
