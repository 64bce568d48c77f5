/// The facts of a TLS ClientHello that routing needs, read without terminating TLS: the
/// server name (SNI), the offered ALPN protocols and versions.
///
/// Why our own parser: a `tls_passthrough` listener must choose its upstream before any TLS
/// library sees the bytes (nginx `ssl_preread`, Envoy `tls_inspector`), and an `https`
/// listener picks its certificate the same way, from the same parse. It is pure and total over
/// hostile bytes (fuzzed by `Fuzz/FuzzClientHello`): every length is checked before it is used.
public struct ClientHelloInfo: Sendable, Equatable {
  /// Lower-cased host name from the `server_name` extension; nil when the client sent none.
  public var serverName: String?
  /// ALPN protocol names in the client's order.
  public var alpn: [String] = []
  /// `supported_versions` (TLS 1.3 clients), else empty: then `legacyVersion` is the offer.
  public var supportedVersions: [UInt16] = []
  public var legacyVersion: UInt16 = 0

  public init() {}

  /// The highest version offered, ignoring GREASE values (RFC 8701).
  public var highestVersion: UInt16 {
    let real = supportedVersions.filter { $0 & 0x0F0F != 0x0A0A }
    return real.max() ?? legacyVersion
  }
}

public enum ClientHelloParser {
  /// SECURITY.md: a ClientHello is reassembled up to 16 KiB; beyond that the peer is refused.
  public static let maxBytes = 16 * 1024
  /// Real clients send a hello in one or two records; a hello cut into many tiny records only
  /// makes each re-parse (one per read until it is complete) copy more.
  public static let maxRecords = 32

  public enum Result: Sendable, Equatable {
    /// The bytes so far are a valid prefix: read more (the caller bounds how much).
    case needMore
    /// Not a TLS ClientHello (plain HTTP on a TLS port, garbage, a broken hello).
    case invalid(String)
    case hello(ClientHelloInfo)
  }

  /// Parses the first bytes a client sent. The hello may span several TLS records, and the
  /// records several reads: only complete records are read, and `needMore` says to wait.
  public static func parse(_ bytes: some Collection<UInt8>) -> Result {
    let input = Array(bytes)
    return input.withUnsafeBytes { parse($0) }
  }

  public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result {
    // Reassemble the handshake layer from the handshake records that have fully arrived.
    var handshake: [UInt8] = []
    var offset = 0
    var needed: Int?  // the hello's length, once its 4-byte header is known
    var records = 0
    while true {
      if let needed, handshake.count >= needed { break }
      guard bytes.count - offset >= 5 else {
        if offset == 0 && bytes.count > 0 && bytes[0] != 0x16 { return .invalid("not a TLS handshake record") }
        return .needMore
      }
      let type = bytes[offset]
      let major = bytes[offset + 1]
      let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
      guard type == 0x16 else { return .invalid("not a TLS handshake record") }
      guard major == 3 else { return .invalid("unknown TLS record version") }
      // A record holds at most 2^14 bytes of plaintext (RFC 8446 §5.1); an empty handshake
      // record is not allowed either.
      guard length > 0, length <= 16384 else { return .invalid("bad TLS record length") }
      guard bytes.count - offset - 5 >= length else { return .needMore }
      records += 1
      guard records <= maxRecords else { return .invalid("ClientHello split into more than \(maxRecords) records") }
      handshake.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[(offset + 5)..<(offset + 5 + length)]))
      offset += 5 + length
      if needed == nil && handshake.count >= 4 {
        guard handshake[0] == 0x01 else { return .invalid("first handshake message is not a ClientHello") }
        let bodyLength = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
        guard bodyLength <= maxBytes else { return .invalid("ClientHello larger than 16 KiB") }
        needed = 4 + bodyLength
      }
      if handshake.count > maxBytes + 4 { return .invalid("ClientHello larger than 16 KiB") }
    }
    guard let needed else { return .needMore }
    return handshake.withUnsafeBytes { parseBody(UnsafeRawBufferPointer(rebasing: $0[4..<needed])) }
  }

  /// A bounds-checked reader over the hello's body.
  struct Cursor {
    let bytes: UnsafeRawBufferPointer
    var at = 0
    var left: Int { bytes.count - at }

    mutating func u8() -> Int? {
      guard left >= 1 else { return nil }
      defer { at += 1 }
      return Int(bytes[at])
    }

    mutating func u16() -> Int? {
      guard left >= 2 else { return nil }
      defer { at += 2 }
      return Int(bytes[at]) << 8 | Int(bytes[at + 1])
    }

    mutating func slice(_ count: Int) -> UnsafeRawBufferPointer? {
      guard count >= 0, left >= count else { return nil }
      defer { at += count }
      return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + count)])
    }
  }

  static func parseBody(_ body: UnsafeRawBufferPointer) -> Result {
    var c = Cursor(bytes: body)
    var info = ClientHelloInfo()
    guard let version = c.u16(), c.slice(32) != nil else { return .invalid("truncated ClientHello") }
    info.legacyVersion = UInt16(version)
    guard let sessionLength = c.u8(), sessionLength <= 32, c.slice(sessionLength) != nil else {
      return .invalid("bad session id")
    }
    guard let suitesLength = c.u16(), suitesLength >= 2, suitesLength % 2 == 0, c.slice(suitesLength) != nil else {
      return .invalid("bad cipher suites")
    }
    guard let compressionLength = c.u8(), compressionLength >= 1, c.slice(compressionLength) != nil else {
      return .invalid("bad compression methods")
    }
    // No extensions at all (very old clients): a valid hello without SNI.
    if c.left == 0 { return .hello(info) }
    guard let extensionsLength = c.u16(), let extensions = c.slice(extensionsLength), c.left == 0 else {
      return .invalid("bad extensions length")
    }
    var e = Cursor(bytes: extensions)
    var seen: Set<Int> = []
    while e.left > 0 {
      guard let type = e.u16(), let length = e.u16(), let data = e.slice(length) else {
        return .invalid("truncated extension")
      }
      // RFC 8446 §4.2: one extension of each type.
      guard seen.insert(type).inserted else { return .invalid("duplicate extension \(type)") }
      switch type {
      case 0:
        switch serverName(data) {
        case .success(let name): info.serverName = name
        case .failure(let why): return .invalid(why.message)
        }
      case 16:
        guard let names = alpn(data) else { return .invalid("bad ALPN extension") }
        info.alpn = names
      case 43:
        var v = Cursor(bytes: data)
        guard let count = v.u8(), count % 2 == 0, count >= 2, v.left == count else {
          return .invalid("bad supported_versions extension")
        }
        while v.left > 0, let value = v.u16() { info.supportedVersions.append(UInt16(value)) }
      default:
        break
      }
    }
    return .hello(info)
  }

  struct Problem: Error {
    let message: String
  }

  /// RFC 6066 §3: a list of names of which at most one `host_name`; the name is DNS
  /// letters, digits, `-`, `_` and `.`, lower-cased here; a trailing dot is dropped.
  static func serverName(_ data: UnsafeRawBufferPointer) -> Swift.Result<String?, Problem> {
    var c = Cursor(bytes: data)
    guard let listLength = c.u16(), listLength == c.left, listLength > 0 else {
      return .failure(Problem(message: "bad server_name extension"))
    }
    var found: String?
    while c.left > 0 {
      guard let type = c.u8(), let length = c.u16(), let name = c.slice(length) else {
        return .failure(Problem(message: "truncated server_name"))
      }
      guard type == 0 else { continue }
      guard found == nil else { return .failure(Problem(message: "two host names in server_name")) }
      guard length > 0, length <= 255 else { return .failure(Problem(message: "bad server name length")) }
      var bytes: [UInt8] = []
      bytes.reserveCapacity(length)
      for byte in name {
        let ok =
          (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
          || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
        if ok {
          bytes.append(byte)
        } else if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") {
          bytes.append(byte | 0x20)
        } else {
          return .failure(Problem(message: "server name holds a byte a host name cannot"))
        }
      }
      if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
      guard !bytes.isEmpty, bytes.first != UInt8(ascii: ".") else {
        return .failure(Problem(message: "empty server name"))
      }
      found = String(decoding: bytes, as: UTF8.self)
    }
    return .success(found)
  }

  static func alpn(_ data: UnsafeRawBufferPointer) -> [String]? {
    var c = Cursor(bytes: data)
    guard let listLength = c.u16(), listLength == c.left, listLength >= 2 else { return nil }
    var out: [String] = []
    while c.left > 0 {
      guard let length = c.u8(), length > 0, let name = c.slice(length) else { return nil }
      out.append(String(decoding: name, as: UTF8.self))
    }
    return out
  }
}
