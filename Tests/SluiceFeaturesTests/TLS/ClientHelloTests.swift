import SluiceCore
import XCTest

@testable import SluiceFeatures

final class ClientHelloTests: XCTestCase {
  /// A captured hello from `hellos/` (see its make script and tests/integration for how).
  func captured(_ name: String) throws -> [UInt8] {
    let dir = ProcessFiles.directory(of: #filePath) + "/hellos/"
    let text = try XCTUnwrap(ProcessFiles.read(dir + name + ".hex"))
    var out: [UInt8] = []
    var high: UInt8?
    for c in text.utf8 {
      guard let v = c >= 97 ? c &- 87 : c >= 48 && c <= 57 ? c &- 48 : nil else { continue }
      if let h = high {
        out.append(h << 4 | v)
        high = nil
      } else {
        high = v
      }
    }
    return out
  }

  func hello(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> ClientHelloInfo? {
    guard case .hello(let info) = ClientHelloParser.parse(bytes) else {
      XCTFail("not parsed: \(ClientHelloParser.parse(bytes))", file: file, line: line)
      return nil
    }
    return info
  }

  func testCurlHello() throws {
    let info = try XCTUnwrap(hello(captured("curl")))
    XCTAssertEqual(info.serverName, "api.example.com")  // sent as API.Example.com
    XCTAssertEqual(info.alpn, ["h2", "http/1.1"])
    XCTAssertEqual(info.highestVersion, 0x0304)
  }

  func testOpenSSLHello() throws {
    let info = try XCTUnwrap(hello(captured("openssl")))
    XCTAssertEqual(info.serverName, "shop.example.org")
    XCTAssertEqual(info.alpn, ["h2", "http/1.1"])
  }

  func testOpenSSLWithoutServerName() throws {
    let info = try XCTUnwrap(hello(captured("openssl-nosni")))
    XCTAssertNil(info.serverName)
  }

  func testPythonHello() throws {
    let info = try XCTUnwrap(hello(captured("python")))
    XCTAssertEqual(info.serverName, "py.example.net")
    XCTAssertEqual(info.alpn, [])
  }

  func testBrowserHelloWithGreaseAndECH() throws {
    let bytes = try captured("browser")
    XCTAssertGreaterThan(bytes.count, 1500)  // spans TCP segments
    let info = try XCTUnwrap(hello(bytes))
    XCTAssertEqual(info.serverName, "www.example.com")
    XCTAssertEqual(info.alpn, ["h2", "http/1.1"])
    XCTAssertEqual(info.highestVersion, 0x0304)  // the GREASE version is ignored
    XCTAssertEqual(info.supportedVersions.count, 3)
  }

  /// Every prefix of a hello asks for more; the whole parses.
  func testEveryPrefixNeedsMore() throws {
    for name in ["curl", "browser", "openssl"] {
      let bytes = try captured(name)
      for cut in 0..<bytes.count where cut % 7 == 0 || cut < 12 {
        XCTAssertEqual(ClientHelloParser.parse(bytes[..<cut]), .needMore, "\(name) cut at \(cut)")
      }
    }
  }

  /// The same hello split over many TLS records (a record boundary anywhere in the message).
  func testHelloAcrossRecords() throws {
    let bytes = try captured("browser")
    let message = Array(bytes[5...])
    for size in [100, 512, 1000] {
      var framed: [UInt8] = []
      var at = 0
      while at < message.count {
        let part = message[at..<min(message.count, at + size)]
        framed += [0x16, 0x03, 0x01, UInt8(part.count >> 8), UInt8(part.count & 0xFF)] + part
        at += size
      }
      XCTAssertEqual(hello(framed)?.serverName, "www.example.com", "records of \(size)")
    }
  }

  func testTooManyRecordsRefused() throws {
    let message = Array(try captured("curl")[5...])
    var framed: [UInt8] = []
    for byte in message { framed += [0x16, 0x03, 0x01, 0x00, 0x01, byte] }
    XCTAssertEqual(ClientHelloParser.parse(framed), .invalid("ClientHello split into more than 32 records"))
  }

  func testNotTLS() {
    XCTAssertEqual(ClientHelloParser.parse(Array("GET / HTTP/1.1\r\n".utf8)), .invalid("not a TLS handshake record"))
    XCTAssertEqual(ClientHelloParser.parse([0x16, 0x03, 0x01, 0x00, 0x00]), .invalid("bad TLS record length"))
    XCTAssertEqual(ClientHelloParser.parse([0x16, 0x03, 0x01, 0x40, 0x01]), .invalid("bad TLS record length"))
    XCTAssertEqual(ClientHelloParser.parse([0x16, 0x02, 0x01, 0x00, 0x01]), .invalid("unknown TLS record version"))
    // A ServerHello (type 2) where a ClientHello must be.
    XCTAssertEqual(
      ClientHelloParser.parse([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]),
      .invalid("first handshake message is not a ClientHello"))
  }

  func testOversizedHelloRefused() {
    // Declares a 20 KiB ClientHello: refused as soon as the header says so.
    XCTAssertEqual(
      ClientHelloParser.parse([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x50, 0x00]),
      .invalid("ClientHello larger than 16 KiB"))
  }

  /// Hand-built hellos: the lengths inside must agree, names must be host names.
  func testBrokenExtensions() throws {
    func build(_ extensions: [UInt8]) -> [UInt8] {
      var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 7, count: 32) + [0]  // no session id
      body += [0x00, 0x02, 0x13, 0x01, 0x01, 0x00]
      body += [UInt8(extensions.count >> 8), UInt8(extensions.count & 0xFF)] + extensions
      let hs: [UInt8] = [0x01, 0x00, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
      return [0x16, 0x03, 0x01, UInt8(hs.count >> 8), UInt8(hs.count & 0xFF)] + hs
    }
    func sni(_ name: [UInt8]) -> [UInt8] {
      let entry: [UInt8] = [0, UInt8(name.count >> 8), UInt8(name.count & 0xFF)] + name
      let list: [UInt8] = [UInt8(entry.count >> 8), UInt8(entry.count & 0xFF)] + entry
      return [0x00, 0x00, UInt8(list.count >> 8), UInt8(list.count & 0xFF)] + list
    }
    XCTAssertEqual(hello(build(sni(Array("A.b.C.".utf8))))?.serverName, "a.b.c")
    XCTAssertEqual(ClientHelloParser.parse(build(sni(Array("a b".utf8)))), .invalid("server name holds a byte a host name cannot"))
    XCTAssertEqual(ClientHelloParser.parse(build(sni([0x61, 0x00]))), .invalid("server name holds a byte a host name cannot"))
    XCTAssertEqual(ClientHelloParser.parse(build(sni(Array(".".utf8)))), .invalid("empty server name"))
    XCTAssertEqual(ClientHelloParser.parse(build(sni(Array("a".utf8)) + sni(Array("b".utf8)))), .invalid("duplicate extension 0"))
    // An extension whose length runs past the block.
    XCTAssertEqual(ClientHelloParser.parse(build([0x00, 0x10, 0x00, 0x09, 0x00])), .invalid("truncated extension"))
    // No extensions block at all: a hello without SNI.
    var bare: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 7, count: 32) + [0, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00]
    bare = [0x01, 0x00, 0x00, UInt8(bare.count)] + bare
    XCTAssertNil(hello([0x16, 0x03, 0x01, 0x00, UInt8(bare.count)] + bare)?.serverName)
  }

  /// Random mutations of real hellos never trap (the fuzzer does this at scale).
  func testMutationsNeverTrap() throws {
    var random = FastRandom(seed: 42)
    for name in ["curl", "browser", "python"] {
      let original = try captured(name)
      for _ in 0..<2000 {
        var bytes = original
        for _ in 0..<(1 + Int(random.next() % 4)) {
          bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
        }
        _ = ClientHelloParser.parse(bytes[..<Int(random.next() % UInt64(bytes.count + 1))])
      }
    }
  }

  func testServerNameTable() {
    let table = ServerNameTable<Int>([
      (.wildcard(suffix: ".example.com"), 1), (.exact("api.example.com"), 2),
      (.wildcard(suffix: ".eu.example.com"), 3), (.exact("api.example.com"), 4),
    ])
    XCTAssertEqual(table.lookup("api.example.com"), 2)  // exact beats wildcard; first exact wins
    XCTAssertEqual(table.lookup("www.example.com"), 1)
    XCTAssertEqual(table.lookup("x.eu.example.com"), 3)  // the longer suffix wins
    XCTAssertNil(table.lookup("example.com"))
    XCTAssertNil(table.lookup("other.org"))
    XCTAssertEqual(ServerNameTable<Int>.name("*.Example.com"), .wildcard(suffix: ".example.com"))
    XCTAssertEqual(ServerNameTable<Int>.name("API.example.com"), .exact("api.example.com"))
    XCTAssertNil(ServerNameTable<Int>.name("*.*.example.com"))
    XCTAssertNil(ServerNameTable<Int>.name("a b"))
    XCTAssertNil(ServerNameTable<Int>.name("*"))
    XCTAssertNil(ServerNameTable<Int>.name("a..example.com"))
  }
}
