import XCTest

@testable import SluiceCore

final class UnitsTests: XCTestCase {
  func testDurations() {
    XCTAssertEqual(ConfigDuration.parse("250ms")?.nanoseconds, 250_000_000)
    XCTAssertEqual(ConfigDuration.parse("2s")?.nanoseconds, 2_000_000_000)
    XCTAssertEqual(ConfigDuration.parse("1m")?.nanoseconds, 60_000_000_000)
    XCTAssertEqual(ConfigDuration.parse("1h")?.nanoseconds, 3_600_000_000_000)
    XCTAssertEqual(ConfigDuration.parse("10us")?.nanoseconds, 10_000)
    XCTAssertEqual(ConfigDuration.parse("0s")?.nanoseconds, 0)
    for bad in ["", "5", "s", "1.5s", "-1s", "1 s", "1d", "ms", "999999999999999h", "1sec", "１s"] {
      XCTAssertNil(ConfigDuration.parse(bad), bad)
    }
    XCTAssertEqual(ConfigDuration.parse("90s")?.description, "90s")
    XCTAssertEqual(ConfigDuration.parse("120s")?.description, "2m")
    XCTAssertEqual(ConfigDuration.parse("1500ms")?.description, "1500ms")
    XCTAssertEqual(ConfigDuration(nanoseconds: 0).description, "0s")
  }

  func testSizes() {
    XCTAssertEqual(ByteSize.parse("512B")?.bytes, 512)
    XCTAssertEqual(ByteSize.parse("512")?.bytes, 512)
    XCTAssertEqual(ByteSize.parse("32KiB")?.bytes, 32768)
    XCTAssertEqual(ByteSize.parse("10MiB")?.bytes, 10_485_760)
    XCTAssertEqual(ByteSize.parse("1GiB")?.bytes, 1 << 30)
    for bad in ["", "KiB", "1KB", "1 KiB", "-1B", "1.5MiB", "99999999999999999999GiB", "1kib"] {
      XCTAssertNil(ByteSize.parse(bad), bad)
    }
    XCTAssertEqual(ByteSize(bytes: 32768).description, "32KiB")
    XCTAssertEqual(ByteSize(bytes: 1000).description, "1000B")
    XCTAssertEqual(ByteSize(bytes: 10 << 20).description, "10MiB")
  }

  func testDiagnosticFormat() {
    let d = Diagnostic(file: "a.yaml", line: 3, column: 7, message: "boom")
    XCTAssertEqual(d.description, "a.yaml:3:7: boom")
    let w = Diagnostic(file: "a.yaml", line: 1, column: 1, message: "hm", severity: .warning)
    XCTAssertEqual(w.description, "a.yaml:1:1: warning: hm")
  }
}

final class PathNormalizerTests: XCTestCase {
  func path(_ target: String, merge: Bool = false) -> String? {
    if case .success(let t) = PathNormalizer.normalize(target, mergeSlashes: merge) { return t.uri }
    return nil
  }

  func testUnchangedFastPath() {
    XCTAssertEqual(path("/"), "/")
    XCTAssertEqual(path("/users/7"), "/users/7")
    XCTAssertEqual(path("/users/7?x=1&y=%20"), "/users/7?x=1&y=%20")
    XCTAssertEqual(path("/a//b"), "/a//b")
  }

  /// The byte check that skips the general normaliser says yes only where it changes nothing.
  func testAlreadyCanonicalCheck() {
    for plain in ["/", "/users/7", "/a//b", "/index.html", "/a.b/c.", "/~u/!$&'()*+,;=:@-_"] {
      XCTAssertTrue(PathNormalizer.isAlreadyCanonical(plain, mergeSlashes: false), plain)
    }
    for general in [
      "/a/./b", "/.well-known", "/a/..", "/a%41", "/a?b", "/a#b", "/a\\b", "a", "", "http://x/", "/caf\u{e9}", "/a b",
    ] {
      XCTAssertFalse(PathNormalizer.isAlreadyCanonical(general, mergeSlashes: false), general)
    }
    XCTAssertFalse(PathNormalizer.isAlreadyCanonical("/a//b", mergeSlashes: true))
    XCTAssertEqual(try PathNormalizer.normalize("/a//b", mergeSlashes: true).get().path, "/a/b")
  }

  func testDotSegments() {
    XCTAssertEqual(path("/a/./b"), "/a/b")
    XCTAssertEqual(path("/a/../b"), "/b")
    XCTAssertEqual(path("/../../etc/passwd"), "/etc/passwd")
    XCTAssertEqual(path("/a/b/.."), "/a/")
    XCTAssertEqual(path("/a/b/."), "/a/b/")
    XCTAssertEqual(path("/a/.."), "/")
    XCTAssertEqual(path("/.."), "/")
    XCTAssertEqual(path("/a/...b"), "/a/...b")
    XCTAssertEqual(path("/a/..b/c"), "/a/..b/c")
    XCTAssertEqual(path("/a/../b?q=../x"), "/b?q=../x")
  }

  func testPercentDecoding() {
    XCTAssertEqual(path("/%61dmin"), "/admin")
    XCTAssertEqual(path("/%7euser"), "/~user")
    XCTAssertEqual(path("/a/%2e%2e/b"), "/b")
    XCTAssertEqual(path("/a%2Fb"), "/a%2Fb")
    XCTAssertEqual(path("/a%2fb"), "/a%2Fb")
    XCTAssertEqual(path("/a%5cb"), "/a%5Cb")
    XCTAssertEqual(path("/a%20b"), "/a%20b")
    XCTAssertEqual(path("/%e2%82%ac"), "/%E2%82%AC")
    XCTAssertEqual(path("/caf%C3%A9/%e2%82%ac"), "/caf%C3%A9/%E2%82%AC")
    // The query may carry encoded line breaks (form data); it is forwarded as received.
    XCTAssertEqual(path("/q?text=a%0Ab"), "/q?text=a%0Ab")
  }

  func testRejected() {
    for bad in [
      "/a\\b", "/a#b", "/a b", "/a\u{0}b", "/a%00b", "/a%0", "/a%", "/a%zz", "/caf\u{e9}", "/a\rb", "/a\nb",
      "*", "", "relative", "ftp://host/x", "/q?x=%00", "/q?x=%g1", "/\u{7f}",
      // encoded control bytes and invalid or overlong UTF-8 in the path (issue 11, §9)
      "/a%0d%0aX-Injected:%201", "/a%09b", "/a%7f", "/a%1F", "/%c0%ae%c0%ae/admin", "/%ff", "/%e2%82",
      "/%c3x%a9", "/%ed%a0%80", "/%f8%88%80%80%80",
    ] {
      XCTAssertNil(path(bad), "should reject \(bad.debugDescription)")
    }
  }

  func testAbsoluteForm() {
    XCTAssertEqual(path("http://example.com/a/../b?x=1"), "/b?x=1")
    XCTAssertEqual(path("HTTPS://example.com"), "/")
    XCTAssertEqual(path("http://example.com?x"), "/?x")
  }

  func testMergeSlashes() {
    XCTAssertEqual(path("//a///b", merge: true), "/a/b")
    XCTAssertEqual(path("/a//", merge: true), "/a/")
  }

  func testIdempotent() {
    for input in ["/a/./b/../c/%7e/%2F/x", "/x/%2e%2e/%2e/y", "/", "/a/b/", "/%41%42"] {
      guard let once = path(input) else { return XCTFail(input) }
      XCTAssertEqual(path(once), once, input)
    }
  }
}

final class HeaderRulesTests: XCTestCase {
  func testHopByHop() {
    for name in ["connection", "Connection", "KEEP-ALIVE", "te", "transfer-encoding", "upgrade", "proxy-authorization", "trailer"] {
      XCTAssertTrue(HeaderRules.isHopByHop(name), name)
    }
    for name in ["content-type", "host", "x-forwarded-for", "cookie", "teapot", "proxy"] {
      XCTAssertFalse(HeaderRules.isHopByHop(name), name)
    }
    for name in HeaderRules.hopByHop {
      XCTAssertTrue(HeaderRules.isHopByHop(name), name)
      XCTAssertTrue(HeaderRules.isHopByHop(name.uppercased()), name)
    }
  }

  func testConnectionTokens() {
    XCTAssertEqual(HeaderRules.connectionTokens(["keep-alive, X-Foo", " close ,,"]), ["keep-alive", "x-foo", "close"])
    XCTAssertEqual(HeaderRules.connectionTokens([]), [])
  }

  func testTokensAndValues() {
    XCTAssertTrue(HeaderRules.isToken("x-api-version"))
    XCTAssertFalse(HeaderRules.isToken("x api"))
    XCTAssertFalse(HeaderRules.isToken(""))
    XCTAssertFalse(HeaderRules.isToken("a:b"))
    XCTAssertTrue(HeaderRules.isValidValue("a value; with=stuff"))
    XCTAssertFalse(HeaderRules.isValidValue("a\r\nx-injected: 1"))
  }
}

final class JSONAndClockTests: XCTestCase {
  func testEscaping() {
    XCTAssertEqual(JSON.quoted("plain"), "\"plain\"")
    XCTAssertEqual(JSON.quoted("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"")
    XCTAssertEqual(JSON.quoted("é"), "\"é\"")
  }

  func testValueRendering() {
    let v = JSONValue.object([("a", .int(1)), ("b", .array([.bool(true), .null, .string("x")])), ("c", .object([]))])
    XCTAssertEqual(v.rendered(), "{\"a\":1,\"b\":[true,null,\"x\"],\"c\":{}}")
    XCTAssertTrue(v.rendered(pretty: true).contains("\n  \"a\": 1"))
  }

  func testRFC3339() {
    XCTAssertEqual(WallClock.rfc3339(milliseconds: 0), "1970-01-01T00:00:00.000Z")
    XCTAssertEqual(WallClock.rfc3339(milliseconds: 1_795_687_200_123), "2026-11-26T10:00:00.123Z")
    XCTAssertEqual(WallClock.rfc3339(milliseconds: 951_782_400_000), "2000-02-29T00:00:00.000Z")
    XCTAssertEqual(WallClock.rfc3339(milliseconds: 4_107_542_399_999), "2100-02-28T23:59:59.999Z")
  }

  /// The per-second cache gives the same text as formatting every stamp, across second, day and
  /// year boundaries, before 1970 and past 9999 (no fixed-width prefix there).
  func testRFC3339CacheMatchesUncached() {
    var cache = RFC3339Cache()
    var stamps: [Int64] = [0, 999, 1000, -1, -1000, -1001, 1_795_687_200_123, 1_795_687_200_999, 1_795_687_201_000]
    stamps += [951_868_799_999, 951_868_800_000, 253_402_300_799_999, 253_402_300_800_000, 253_402_300_800_001]
    var rng = FastRandom(seed: 11)
    var t: Int64 = 1_795_687_200_000
    for _ in 0..<2000 {
      t += Int64(rng.next() % 1500)
      stamps.append(t)
    }
    for ms in stamps + stamps.reversed() {
      var cached = ByteWriter()
      ByteText.appendRFC3339(milliseconds: ms, cache: &cache, to: &cached)
      XCTAssertEqual(cached.string, WallClock.rfc3339(milliseconds: ms), "\(ms)")
    }
  }

  /// Integers: the small-number fast path and the general path agree with `String`, with widths.
  func testByteTextIntegers() {
    var values = Array(-1100...11_000)
    values += [Int.max, Int.min + 1, 99_999, 100_000, 123_456_789]
    for value in values {
      for width in [1, 2, 3, 4, 5] {
        var out = ByteWriter()
        ByteText.append(value, width: width, to: &out)
        var expected = String(value.magnitude)
        if expected.count < width { expected = String(repeating: "0", count: width - expected.count) + expected }
        if value < 0 { expected = "-" + expected }
        XCTAssertEqual(out.string, expected, "\(value) width \(width)")
      }
    }
  }

  func testRequestIDs() {
    var rng = FastRandom(seed: 42)
    let a = RequestID(random: &rng).text
    let b = RequestID(random: &rng).text
    XCTAssertEqual(a.count, 32)
    XCTAssertNotEqual(a, b)
    XCTAssertTrue(a.allSatisfy { "0123456789abcdef".contains($0) })
  }

  func testRequestIDBytesMatchText() {
    let id = RequestID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210)
    XCTAssertEqual(id.text, "0123456789abcdeffedcba9876543210")
    XCTAssertEqual(id.withUTF8 { String(decoding: $0, as: UTF8.self) }, id.text)
    let incoming = RequestID(incoming: "client-id.1")
    XCTAssertEqual(incoming.text, "client-id.1")
    XCTAssertEqual(incoming.withUTF8 { Array($0) }, Array("client-id.1".utf8))
    var rng = FastRandom(seed: 7)
    for _ in 0..<100 {
      let generated = RequestID(random: &rng)
      XCTAssertEqual(generated.withUTF8 { String(decoding: $0, as: UTF8.self) }, generated.text)
      XCTAssertEqual(generated.text.utf8.count, 32)
    }
  }

  func testGatewayErrors() {
    let e = GatewayError.noRoute
    XCTAssertEqual(e.status, 404)
    XCTAssertEqual(
      e.jsonBody(requestID: "r1"), "{\"error\":\"no_route\",\"message\":\"no route matches this request\",\"request_id\":\"r1\"}")
    XCTAssertTrue(GatewayError.badRequest("x").closesConnection)
    XCTAssertFalse(GatewayError.badGateway("x").closesConnection)
    XCTAssertEqual(GatewayError.headersTooLarge.status, 431)
    XCTAssertEqual(GatewayError.uriTooLong.status, 414)
    XCTAssertEqual(GatewayError.gatewayTimeout.grpcStatus, 4)
  }
}

final class CIDRTests: XCTestCase {
  func testIPv4() {
    let net = CIDR("10.0.0.0/8")!
    XCTAssertTrue(net.contains(IPAddress.parse("10.1.2.3")!))
    XCTAssertFalse(net.contains(IPAddress.parse("11.0.0.1")!))
    XCTAssertTrue(CIDR("0.0.0.0/0")!.contains(IPAddress.parse("8.8.8.8")!))
    XCTAssertTrue(CIDR("192.168.1.7")!.contains(IPAddress.parse("192.168.1.7")!))
    XCTAssertFalse(CIDR("192.168.1.7")!.contains(IPAddress.parse("192.168.1.8")!))
    XCTAssertTrue(CIDR("172.16.0.0/12")!.contains(IPAddress.parse("172.31.255.255")!))
    XCTAssertFalse(CIDR("172.16.0.0/12")!.contains(IPAddress.parse("172.32.0.0")!))
  }

  func testIPv6AndMapped() {
    let net = CIDR("fd00::/8")!
    XCTAssertTrue(net.contains(IPAddress.parse("fd12::1")!))
    XCTAssertFalse(net.contains(IPAddress.parse("fe80::1")!))
    XCTAssertTrue(CIDR("10.0.0.0/8")!.contains(IPAddress.parse("::ffff:10.2.3.4")!))
    XCTAssertEqual(IPAddress.parse("::1"), Array(repeating: 0, count: 15) + [1])
  }

  func testInvalid() {
    for bad in ["", "10.0.0.0/33", "10.0.0/8", "256.0.0.1", "1.2.3.4/x", "fd00::/129", "a::b::c", "01234::"] {
      XCTAssertNil(CIDR(bad), bad)
    }
  }

  func testByteTextMatchesStringForms() {
    for text in ["", "plain", "q\"b\\s", "nl\n cr\r tab\t", "\u{1}\u{1f}", "caf\u{e9} \u{1F600}"] {
      var bytes = ByteWriter(capacity: 0)
      ByteText.appendQuoted(text, to: &bytes)
      XCTAssertEqual(bytes.string, JSON.quoted(text), text.debugDescription)
    }
    for (value, width, expected) in [(0, 1, "0"), (7, 3, "007"), (-42, 1, "-42"), (1234, 2, "1234"), (Int.min, 1, "\(Int.min)")] {
      var bytes = ByteWriter(capacity: 0)
      ByteText.append(value, width: width, to: &bytes)
      XCTAssertEqual(bytes.string, expected)
    }
  }

  /// The word-at-a-time escape check: each byte value at each position of strings long
  /// enough for the word loop, next to plain and non-ASCII text; the result equals `JSON.quoted`.
  func testQuotedEscapesAtEveryPosition() {
    for length in [8, 9, 15, 16, 17, 24] {
      for position in 0..<length {
        for byte in UInt8(0)...UInt8(0x7F) {
          var bytes = Array(repeating: UInt8(ascii: "a"), count: length)
          bytes[position] = byte
          if position > 0 { bytes[position - 1] = 0xC3 }  // a lead byte before it: "é" or invalid
          let text = String(decoding: bytes, as: UTF8.self)
          var out = ByteWriter(capacity: 0)
          ByteText.appendQuoted(text, to: &out)
          XCTAssertEqual(out.string, JSON.quoted(text), "byte \(byte) at \(position) of \(length)")
        }
      }
    }
  }

  /// Every small size (the inlined word copies) at every alignment, then past 16 (memcpy).
  func testByteWriterSmallAppends() {
    let source = (0..<64).map { UInt8($0 + 1) }
    var writer = ByteWriter(capacity: 1)
    var expected: [UInt8] = []
    for size in 0...40 {
      for offset in 0..<8 {
        source.withUnsafeBytes { writer.append(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + size)])) }
        expected += source[offset..<(offset + size)]
      }
    }
    XCTAssertEqual(writer.bytes, expected)
  }

  func testByteWriterGrowsAndKeepsBytes() {
    var writer = ByteWriter(capacity: 0)
    var expected: [UInt8] = []
    var rng = FastRandom(seed: 3)
    for round in 0..<200 {
      let chunk = (0..<Int(rng.next() % 300)).map { UInt8(truncatingIfNeeded: $0 &+ round) }
      chunk.withUnsafeBytes { writer.append($0) }
      writer.append(UInt8(round & 0xFF))
      expected += chunk + [UInt8(round & 0xFF)]
    }
    writer.append("end" as StaticString)
    expected += Array("end".utf8)
    XCTAssertEqual(writer.count, expected.count)
    XCTAssertEqual(writer.bytes, expected)
    writer.removeAll()
    XCTAssertEqual(writer.count, 0)
    writer.append("x" as StaticString)
    XCTAssertEqual(writer.string, "x")
  }
}
