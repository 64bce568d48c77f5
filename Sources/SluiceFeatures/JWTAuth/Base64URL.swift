/// Strict base64url (RFC 4648 §5, no padding) as JWTs use it (RFC 7515 §2). Padding, other
/// alphabets, whitespace and non-zero trailing bits are refused: one token has one spelling,
/// so a cache keyed by the token's bytes cannot be fooled by a second spelling of it.
public enum Base64URL {
  static let table: [UInt8] = {
    var t = [UInt8](repeating: 0xFF, count: 256)
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
    return t
  }()

  public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
    let count = text.count
    if count % 4 == 1 { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(count * 3 / 4)
    var acc: UInt32 = 0
    var bits = 0
    for c in text {
      let v = table[Int(c)]
      if v == 0xFF { return nil }
      acc = acc << 6 | UInt32(v)
      bits += 6
      if bits >= 8 {
        bits -= 8
        out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
      }
    }
    // Leftover bits must be zero (canonical encoding).
    if bits > 0 && acc & ((1 << UInt32(bits)) - 1) != 0 { return nil }
    return out
  }

  public static func encode(_ bytes: some Collection<UInt8>) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    var out: [UInt8] = []
    var acc: UInt32 = 0
    var bits = 0
    for b in bytes {
      acc = acc << 8 | UInt32(b)
      bits += 8
      while bits >= 6 {
        bits -= 6
        out.append(alphabet[Int((acc >> UInt32(bits)) & 63)])
      }
    }
    if bits > 0 { out.append(alphabet[Int((acc << UInt32(6 - bits)) & 63)]) }
    return String(decoding: out, as: UTF8.self)
  }
}
