/// A strict RFC 8259 JSON reader for bytes that come from outside (JWT segments, JWKS
/// documents, webhook answers): no Foundation, bounded depth, invalid UTF-8 and duplicate
/// object keys refused. Malformed input is an error value, never a trap (SECURITY.md rule 3).
public enum JSONParser {
  public enum Failure: Error, Sendable, Equatable {
    case syntax(offset: Int)
    case tooDeep
    case invalidUTF8
    case duplicateKey(String)
  }

  /// The nesting limit: JWT headers and claims, and JWKS documents, need 3-4 levels.
  public static let defaultMaxDepth = 32

  public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = defaultMaxDepth) -> Result<JSONValue, Failure> {
    let array = Array(bytes)
    return array.withUnsafeBufferPointer { buffer in
      var reader = Reader(bytes: buffer, maxDepth: maxDepth)
      do {
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.index == buffer.count else { throw Failure.syntax(offset: reader.index) }
        return .success(value)
      } catch let failure as Failure {
        return .failure(failure)
      } catch {
        return .failure(.syntax(offset: 0))
      }
    }
  }

  struct Reader {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
      self.bytes = bytes
      self.maxDepth = maxDepth
    }

    mutating func skipSpace() {
      while index < bytes.count {
        switch bytes[index] {
        case 0x20, 0x09, 0x0A, 0x0D: index += 1
        default: return
        }
      }
    }

    func fail() -> Failure { .syntax(offset: index) }

    mutating func expect(_ literal: StaticString) throws {
      let count = literal.utf8CodeUnitCount
      guard index + count <= bytes.count else { throw fail() }
      let p = literal.utf8Start
      for i in 0..<count where bytes[index + i] != p[i] { throw fail() }
      index += count
    }

    mutating func value(depth: Int) throws -> JSONValue {
      guard index < bytes.count else { throw fail() }
      switch bytes[index] {
      case UInt8(ascii: "{"):
        guard depth < maxDepth else { throw Failure.tooDeep }
        return try object(depth: depth + 1)
      case UInt8(ascii: "["):
        guard depth < maxDepth else { throw Failure.tooDeep }
        return try array(depth: depth + 1)
      case UInt8(ascii: "\""): return .string(try string())
      case UInt8(ascii: "t"):
        try expect("true")
        return .bool(true)
      case UInt8(ascii: "f"):
        try expect("false")
        return .bool(false)
      case UInt8(ascii: "n"):
        try expect("null")
        return .null
      case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
      default: throw fail()
      }
    }

    mutating func object(depth: Int) throws -> JSONValue {
      index += 1
      var pairs: [(String, JSONValue)] = []
      skipSpace()
      if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
        index += 1
        return .object(pairs)
      }
      while true {
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail() }
        let key = try string()
        if pairs.contains(where: { $0.0 == key }) { throw Failure.duplicateKey(key) }
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail() }
        index += 1
        skipSpace()
        pairs.append((key, try value(depth: depth)))
        skipSpace()
        guard index < bytes.count else { throw fail() }
        if bytes[index] == UInt8(ascii: ",") {
          index += 1
          continue
        }
        guard bytes[index] == UInt8(ascii: "}") else { throw fail() }
        index += 1
        return .object(pairs)
      }
    }

    mutating func array(depth: Int) throws -> JSONValue {
      index += 1
      var items: [JSONValue] = []
      skipSpace()
      if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
        index += 1
        return .array(items)
      }
      while true {
        skipSpace()
        items.append(try value(depth: depth))
        skipSpace()
        guard index < bytes.count else { throw fail() }
        if bytes[index] == UInt8(ascii: ",") {
          index += 1
          continue
        }
        guard bytes[index] == UInt8(ascii: "]") else { throw fail() }
        index += 1
        return .array(items)
      }
    }

    mutating func hex4() throws -> UInt32 {
      guard index + 4 <= bytes.count else { throw fail() }
      var v: UInt32 = 0
      for _ in 0..<4 {
        let b = bytes[index]
        let d: UInt32
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
        default: throw fail()
        }
        v = v << 4 | d
        index += 1
      }
      return v
    }

    mutating func string() throws -> String {
      index += 1
      var out: [UInt8] = []
      while true {
        guard index < bytes.count else { throw fail() }
        let b = bytes[index]
        if b == UInt8(ascii: "\"") {
          index += 1
          break
        }
        if b < 0x20 { throw fail() }
        if b != UInt8(ascii: "\\") {
          out.append(b)
          index += 1
          continue
        }
        index += 1
        guard index < bytes.count else { throw fail() }
        let e = bytes[index]
        index += 1
        switch e {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
          var scalar = try hex4()
          if scalar >= 0xD800 && scalar < 0xDC00 {
            // A high surrogate must be followed by an escaped low one.
            try expect("\\u")
            let low = try hex4()
            guard low >= 0xDC00 && low < 0xE000 else { throw Failure.invalidUTF8 }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
          } else if scalar >= 0xDC00 && scalar < 0xE000 {
            throw Failure.invalidUTF8
          }
          guard let s = Unicode.Scalar(scalar) else { throw Failure.invalidUTF8 }
          out.append(contentsOf: Array(String(Character(s)).utf8))
        default: throw fail()
        }
      }
      guard let text = String(validating: out, as: UTF8.self) else { throw Failure.invalidUTF8 }
      return text
    }

    mutating func number() throws -> JSONValue {
      let start = index
      var integral = true
      if bytes[index] == UInt8(ascii: "-") { index += 1 }
      guard index < bytes.count else { throw fail() }
      if bytes[index] == UInt8(ascii: "0") {
        index += 1
      } else if bytes[index] >= UInt8(ascii: "1") && bytes[index] <= UInt8(ascii: "9") {
        while index < bytes.count && bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9") { index += 1 }
      } else {
        throw fail()
      }
      if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
        integral = false
        index += 1
        let digits = index
        while index < bytes.count && bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9") { index += 1 }
        guard index > digits else { throw fail() }
      }
      if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
        integral = false
        index += 1
        if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
        let digits = index
        while index < bytes.count && bytes[index] >= UInt8(ascii: "0") && bytes[index] <= UInt8(ascii: "9") { index += 1 }
        guard index > digits else { throw fail() }
      }
      let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
      if integral, let value = Int(text) { return .int(value) }
      guard let value = Double(text), value.isFinite else { throw fail() }
      return .double(value)
    }
  }
}

extension JSONValue {
  /// The member named `key` of an object; nil for other values.
  public subscript(key: String) -> JSONValue? {
    guard case .object(let pairs) = self else { return nil }
    for (k, v) in pairs where k == key { return v }
    return nil
  }

  public var stringValue: String? {
    if case .string(let s) = self { return s }
    return nil
  }

  /// An integer, or a number with a fraction truncated toward zero (NumericDate allows both).
  public var numericDate: Int64? {
    switch self {
    case .int(let i): return Int64(i)
    case .double(let d) where d.isFinite && abs(d) < 9.2e18: return Int64(d)
    default: return nil
    }
  }
}
