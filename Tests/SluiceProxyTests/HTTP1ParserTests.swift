import NIOCore
import SluiceCore
import XCTest

@testable import SluiceProxy

/// Sluice's own HTTP/1 parser: heads, the head scanner and reader, and body framing.
final class HTTP1ParserTests: XCTestCase {
  func request(_ text: String, maxHeaders: Int = 100, maxURI: Int = 8192) -> Result<RequestHead, GatewayError> {
    HeadParser.parseRequest(ByteBuffer(string: text), maxHeaders: maxHeaders, maxURIBytes: maxURI)
  }

  func parsed(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> RequestHead? {
    switch request(text) {
    case .success(let head): return head
    case .failure(let error):
      XCTFail("unexpected \(error)", file: file, line: line)
      return nil
    }
  }

  func rejected(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> GatewayError? {
    switch request(text) {
    case .success: XCTFail("accepted: \(text.debugDescription)", file: file, line: line)
    case .failure(let error): return error
    }
    return nil
  }

  func testRequestHeadAndFacts() throws {
    let head = try XCTUnwrap(
      parsed("POST /a?b=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 12\r\nX-Trim:  v v \t\r\nExpect: 100-continue\r\n\r\n"))
    XCTAssertEqual(head.method, "POST")
    XCTAssertEqual(head.target, "/a?b=1")
    XCTAssertEqual(head.versionMinor, 1)
    XCTAssertEqual(head.host, "example.com")
    XCTAssertEqual(head.hostCount, 1)
    XCTAssertEqual(head.framing, .length(12))
    XCTAssertTrue(head.keepAlive)
    XCTAssertTrue(head.expectContinue)
    XCTAssertEqual(head.fields.count, 4)
    XCTAssertEqual(head.fields.name(2), "X-Trim")
    XCTAssertEqual(head.fields.value(2), "v v")
    XCTAssertEqual(head.fields.first("x-trim"), "v v")
    XCTAssertEqual(head.fields.first("content-length"), "12")
    XCTAssertNil(head.fields.first("missing"))
    XCTAssertTrue(head.fields.contains("host", value: "example.com"))
    XCTAssertEqual(
      head.headerBytes, "Host: example.com\r\nContent-Length: 12\r\nX-Trim:  v v \t\r\nExpect: 100-continue\r\n\r\n".utf8.count)
  }

  func testKeepAliveRules() throws {
    XCTAssertFalse(try XCTUnwrap(parsed("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, Close\r\n\r\n")).keepAlive)
    XCTAssertFalse(try XCTUnwrap(parsed("GET / HTTP/1.0\r\n\r\n")).keepAlive)
    XCTAssertTrue(try XCTUnwrap(parsed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")).keepAlive)
    let head = try XCTUnwrap(parsed("GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a, x-b\r\n\r\n"))
    XCTAssertTrue(head.keepAlive)
    XCTAssertTrue(head.connectionNamesHeaders)
    XCTAssertFalse(try XCTUnwrap(parsed("GET / HTTP/1.1\r\nConnection: Keep-Alive , close,\r\n\r\n")).connectionNamesHeaders)
    XCTAssertTrue(try XCTUnwrap(parsed("GET / HTTP/1.1\r\nConnection: close, x-b\r\n\r\n")).connectionNamesHeaders)
    XCTAssertEqual(head.fields.connectionTokens(), ["x-a", "x-b"])
  }

  func testFramingFacts() throws {
    XCTAssertEqual(try XCTUnwrap(parsed("GET / HTTP/1.1\r\nHost: a\r\n\r\n")).framing, .none)
    XCTAssertEqual(try XCTUnwrap(parsed("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")).framing, .length(0))
    XCTAssertEqual(try XCTUnwrap(parsed("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked \r\n\r\n")).framing, .chunked)
    let gzip = try XCTUnwrap(parsed("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"))
    XCTAssertTrue(gzip.transferEncodingInvalid)
    let twice = try XCTUnwrap(parsed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"))
    XCTAssertTrue(twice.transferEncodingInvalid)
    XCTAssertEqual(rejected("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")?.status, 400)
    XCTAssertEqual(rejected("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n")?.status, 400)
    for bad in ["5x", "-1", "", "+5", "1 2", "1234567890123456789", "0x10"] {
      XCTAssertEqual(rejected("POST / HTTP/1.1\r\nContent-Length: \(bad)\r\n\r\n"), .badRequest("invalid Content-Length"), bad)
    }
    XCTAssertEqual(
      try XCTUnwrap(parsed("POST / HTTP/1.1\r\nContent-Length: 123456789012345678\r\n\r\n")).framing, .length(123_456_789_012_345_678))
  }

  func testSyntaxErrors() {
    let cases: [(String, GatewayError)] = [
      ("GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n", .badRequest("obsolete line folding")),
      ("GET / HTTP/1.1\r\nX-A : b\r\n\r\n", .badRequest("invalid header name")),
      ("GET / HTTP/1.1\r\n: b\r\n\r\n", .badRequest("invalid header name")),
      ("GET / HTTP/1.1\r\nX(A): b\r\n\r\n", .badRequest("invalid header name")),
      ("GET / HTTP/1.1\r\nX-A: b\u{0}c\r\n\r\n", .badRequest("invalid byte in header value")),
      ("GET / HTTP/1.1\r\nX-A: b\rc\r\n\r\n", .badRequest("malformed header line")),
      ("GET / HTTP/1.1\r\nX-A: b\u{7f}\r\n\r\n", .badRequest("invalid byte in header value")),
      ("GET / HTTP/2.0\r\n\r\n", .badRequest("unsupported HTTP version")),
      ("GET / HTTP/1.2\r\n\r\n", .badRequest("unsupported HTTP version")),
      ("GET / http/1.1\r\n\r\n", .badRequest("unsupported HTTP version")),
      ("GET  / HTTP/1.1\r\n\r\n", .badRequest("malformed request line")),
      ("GET / HTTP/1.1 \r\n\r\n", .badRequest("malformed request line")),
      ("G(T / HTTP/1.1\r\n\r\n", .badRequest("malformed request line")),
      (" GET / HTTP/1.1\r\n\r\n", .badRequest("malformed request line")),
      ("GET /caf\u{e9} HTTP/1.1\r\n\r\n", .badRequest("invalid request target")),
      ("GET /a\tb HTTP/1.1\r\n\r\n", .badRequest("malformed request line")),
    ]
    for (text, expected) in cases {
      XCTAssertEqual(rejected(text), expected, text.debugDescription)
    }
  }

  func testLimits() {
    let many = "GET / HTTP/1.1\r\n" + (0..<6).map { "X-\($0): v\r\n" }.joined() + "\r\n"
    XCTAssertEqual(request(many, maxHeaders: 5).failure, .headersTooLarge)
    if case .failure = request(many, maxHeaders: 6) { XCTFail("six headers are allowed") }
    XCTAssertEqual(request("GET /" + String(repeating: "a", count: 64) + " HTTP/1.1\r\n\r\n", maxURI: 64).failure, .uriTooLong)
  }

  /// The token-byte bit set matches RFC 9110 `tchar` for every byte value.
  func testTokenBytesMatchTheGrammar() {
    let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
    for byte in UInt8.min...UInt8.max {
      XCTAssertEqual(HTTP1Bytes.isTokenByte(byte), tchar.contains(byte), "byte \(byte)")
    }
  }

  /// The eight-bytes-at-a-time value check: every byte value in every position, among
  /// harmless neighbours of both kinds (plain text and obs-text, which must not borrow), and
  /// the first flag is where the bad byte is. Then pairs: two bad bytes, the lower one found.
  func testWordControlCheckIsExact() {
    forEachWord(fillers: [0x41, 0xFF, 0x80, 0x20]) { word, _, position, byte in
      let mask = HTTP1Bytes.controlOrDELMask(word)
      let bad = byte < 0x20 || byte == 0x7F
      XCTAssertEqual(mask != 0, bad, "byte \(byte) at \(position)")
      if bad { XCTAssertEqual(mask.trailingZeroBitCount / 8, position, "first flag of byte \(byte)") }
    }
  }

  /// Calls `body` with every 8-byte word made of one filler byte with any byte value at any
  /// position (the word little-endian, its bytes, the position, the byte).
  func forEachWord(fillers: [UInt8], _ body: (UInt64, [UInt8], Int, UInt8) -> Void) {
    for filler in fillers {
      for position in 0..<8 {
        for byte in UInt8.min...UInt8.max {
          var bytes = [UInt8](repeating: filler, count: 8)
          bytes[position] = byte
          body(UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }), bytes, position, byte)
        }
      }
    }
  }

  /// The eight-bytes-at-a-time name check: every byte value in every position, among
  /// neighbours of each kind (name bytes, obs-text, `:`), flags exactly the bytes that are not
  /// letters, digits or `-`.
  func testWordNameCheckIsExact() {
    let nameChars = Set("-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
    forEachWord(fillers: [0x61, 0x5A, 0x2D, 0x39, 0xFF, 0x80, 0x3A]) { word, bytes, _, _ in
      let mask = HTTP1Bytes.nonNameCharMask(word)
      for i in 0..<8 {
        XCTAssertEqual((mask >> UInt64(i * 8 + 7)) & 1 == 1, !nameChars.contains(bytes[i]), "byte \(bytes[i]) at \(i)")
      }
    }
  }

  /// Header names of every length around the word size, with every byte value at every
  /// position: accepted exactly when every byte is a token byte, and the name ends at `:`.
  func testHeaderNamesAtEveryLengthAndPosition() {
    let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
    for length in [1, 2, 7, 8, 9, 15, 16, 17, 23] {
      for position in 0..<length {
        for byte in UInt8.min...UInt8.max where byte != 0x0D && byte != 0x0A {
          var name = Array("x-abcdefghij_klmnop.qrstuvw".utf8.prefix(length))
          name[position] = byte
          let raw = ByteBuffer(bytes: Array("GET / HTTP/1.1\r\n".utf8) + name + Array(": v\r\nHost: a\r\n\r\n".utf8))
          let result = HeadParser.parseRequest(raw, maxHeaders: 10, maxURIBytes: 100)
          // The name ends at the first non-token byte: a valid head when that is the `:`
          // (an earlier `:` makes a shorter name, the rest going into the value).
          let end = name.firstIndex { !tchar.contains($0) } ?? length
          let valid = end > 0 && (end == length || name[end] == UInt8(ascii: ":"))
          switch result {
          case .success(let head):
            XCTAssertTrue(valid, "byte \(byte) at \(position) of \(length) accepted")
            XCTAssertEqual(head.fields.fields.first.map { Int($0.nameLength) }, end)
          case .failure:
            XCTAssertFalse(valid, "byte \(byte) at \(position) of \(length) rejected")
          }
        }
      }
    }
  }

  func testWordControlCheckFindsTheFirstOfTwo() {
    let bad: [UInt8] = [0x00, 0x09, 0x0D, 0x1F, 0x7F, 0x01]
    for first in 0..<8 {
      for second in (first + 1)..<8 {
        for a in bad {
          for b in bad {
            var bytes = [UInt8](repeating: 0x61, count: 8)
            bytes[first] = a
            bytes[second] = b
            let word = UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            XCTAssertEqual(HTTP1Bytes.controlOrDELMask(word).trailingZeroBitCount / 8, first)
          }
        }
      }
    }
  }

  /// A bad byte anywhere in a long value is found, whether the word loop or the byte loop
  /// sees it; tabs and obs-text anywhere are kept; trailing blanks are trimmed.
  func testLongValuesAtEveryOffset() throws {
    for offset in 0..<40 {
      var value = String(repeating: "v", count: 40)
      for bad in ["\u{0}", "\u{7f}", "\u{1}", "\u{1f}"] {
        let index = value.index(value.startIndex, offsetBy: offset)
        value.replaceSubrange(index...index, with: bad)
        XCTAssertEqual(rejected("GET / HTTP/1.1\r\nX-A: \(value)\r\n\r\n"), .badRequest("invalid byte in header value"))
        value = String(repeating: "v", count: 40)
      }
      var tabbed = Array(repeating: UInt8(ascii: "v"), count: 40)
      tabbed[offset] = 0x09
      tabbed[(offset + 7) % 40] = 0xE9
      let text = "GET / HTTP/1.1\r\nX-A: " + String(decoding: tabbed, as: UTF8.self) + " \t \r\n\r\n"
      let raw = ByteBuffer(bytes: Array("GET / HTTP/1.1\r\nX-A: ".utf8) + tabbed + Array(" \t \r\n\r\n".utf8))
      guard case .success(let head) = HeadParser.parseRequest(raw, maxHeaders: 10, maxURIBytes: 100) else {
        XCTFail("rejected \(text.debugDescription)")
        continue
      }
      XCTAssertEqual(head.fields.fields.first.map { Int($0.valueLength) }, offset == 0 || offset == 39 ? 39 : 40, "\(offset)")
    }
  }

  /// The byte-level hop-by-hop check the handlers use agrees with the reference list, including
  /// names that only look close.
  func testRawHopByHopMatchesTheList() {
    let others = ["host", "tee", "trailers", "upgrade-insecure-requests", "connection2", "x-forwarded-for", "te "]
    for name in HeaderRules.hopByHop.sorted() + HeaderRules.hopByHop.map({ $0.uppercased() }) + others {
      let expected = HeaderRules.hopByHop.contains(name.lowercased())
      let raw = Array(name.utf8)
      XCTAssertEqual(raw.withUnsafeBytes { HeaderRules.isHopByHop($0, 0, raw.count) }, expected, name)
    }
  }

  // MARK: - Scanner and reader

  func testScannerFindsEndAcrossPieces() {
    let text = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT".utf8)
    for split in 1..<text.count {
      var scanner = HeadScanner()
      var outcome = text[0..<split].withUnsafeBytes { scanner.scan($0) }
      if outcome == .incomplete { outcome = text.withUnsafeBytes { scanner.scan($0) } }
      XCTAssertEqual(outcome, .complete(length: text.count - 4), "split \(split)")
    }
  }

  func testScannerRejectsBareLF() {
    for text in ["GET / HTTP/1.1\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\n\r\n", "\n", "GET / HTTP/1.1\r\nA: b\r\n\n"] {
      var scanner = HeadScanner()
      XCTAssertEqual(Array(text.utf8).withUnsafeBytes { scanner.scan($0) }, .bareLF, text.debugDescription)
    }
  }

  func testReaderGathersAHeadSentByteByByte() throws {
    var reader = HeadReader(requests: true)
    let text = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET"
    var head: ByteBuffer?
    var rest = ByteBuffer()
    for byte in text.utf8 {
      var piece = ByteBuffer(bytes: [byte])
      if head != nil {
        rest.writeBuffer(&piece)
        continue
      }
      switch reader.take(&piece, limit: 1024) {
      case .head(let bytes):
        head = bytes
        rest.writeBuffer(&piece)
      case .incomplete: break
      default: XCTFail("unexpected outcome")
      }
    }
    XCTAssertEqual(head.map { String(buffer: $0) }, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    XCTAssertEqual(String(buffer: rest), "GET")
  }

  func testReaderLimitsAndGarbage() {
    var reader = HeadReader(requests: true)
    var long = ByteBuffer(string: "GET /" + String(repeating: "a", count: 100))
    guard case .tooLarge(sawLineEnd: false) = reader.take(&long, limit: 64) else { return XCTFail("long line") }
    reader.reset()
    var headers = ByteBuffer(string: "GET / HTTP/1.1\r\nX-A: " + String(repeating: "a", count: 100))
    guard case .tooLarge(sawLineEnd: true) = reader.take(&headers, limit: 64) else { return XCTFail("long headers") }
    reader.reset()
    var tls = ByteBuffer(bytes: [0x16, 0x03, 0x01, 0x02, 0x00])
    guard case .notHTTP = reader.take(&tls, limit: 64) else { return XCTFail("tls") }
    reader.reset()
    var method = ByteBuffer(string: String(repeating: "A", count: 40))
    guard case .notHTTP = reader.take(&method, limit: 64) else { return XCTFail("long method") }
    var responses = HeadReader(requests: false)
    var partial = ByteBuffer(bytes: [0x16, 0x03])
    guard case .incomplete = responses.take(&partial, limit: 64) else { return XCTFail("responses skip the method check") }
  }

  // MARK: - Bodies

  /// Feeds `wire` to a decoder in pieces of `size` bytes; returns the body, the trailers, and
  /// the bytes left after the end.
  func decode(_ framing: BodyFraming, _ wire: [UInt8], pieces size: Int) throws -> (String, String?, String) {
    var decoder = BodyDecoder(framing, maxTrailerBytes: 64)
    var body = ""
    var trailers: String?
    var rest = ""
    var offset = 0
    var ended = false
    while offset < wire.count {
      var piece = ByteBuffer(bytes: wire[offset..<min(wire.count, offset + size)])
      offset += size
      if ended {
        rest += String(buffer: piece)
        continue
      }
      while let event = try decoder.next(&piece) {
        switch event {
        case .data(let data): body += String(buffer: data)
        case .end(let t):
          trailers = t.map { String(buffer: $0) }
          ended = true
        }
        if ended { break }
      }
      if ended { rest += String(buffer: piece) }
    }
    var empty = ByteBuffer()
    if !ended, case .end(let t)? = try decoder.next(&empty) {
      trailers = t.map { String(buffer: $0) }
      ended = true
    }
    XCTAssertTrue(ended, "body did not end")
    return (body, trailers, rest)
  }

  func testLengthBodyInEveryPieceSize() throws {
    let wire = Array("hello worldGET".utf8)
    for size in 1...wire.count {
      let (body, trailers, rest) = try decode(.length(11), wire, pieces: size)
      XCTAssertEqual(body, "hello world")
      XCTAssertNil(trailers)
      XCTAssertEqual(rest, "GET")
    }
  }

  func testChunkedBodyInEveryPieceSize() throws {
    let wire = Array("5;ext=1\r\nhello\r\n6\r\n world\r\nA \r\n0123456789\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\nNEXT".utf8)
    for size in 1...wire.count {
      let (body, trailers, rest) = try decode(.chunked, wire, pieces: size)
      XCTAssertEqual(body, "hello world0123456789", "pieces of \(size)")
      XCTAssertEqual(trailers, "X-Sum: 1\r\nX-B: 2\r\n")
      XCTAssertEqual(rest, "NEXT")
    }
    let (body, trailers, rest) = try decode(.chunked, Array("0\r\n\r\n".utf8), pieces: 1)
    XCTAssertEqual(body, "")
    XCTAssertNil(trailers)
    XCTAssertEqual(rest, "")
  }

  func testChunkedRoundTripOfRandomBodies() throws {
    var random = FastRandom(seed: 42)
    for _ in 0..<200 {
      var original: [UInt8] = []
      var wire: [UInt8] = []
      for _ in 0..<Int(random.next() % 5) {
        let size = Int(random.next() % 300) + 1
        let chunk = (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        original += chunk
        wire += Array(String(size, radix: 16).utf8) + [13, 10] + chunk + [13, 10]
      }
      wire += Array("0\r\n\r\n".utf8)
      let pieces = Int(random.next() % 64) + 1
      var decoder = BodyDecoder(.chunked)
      var decoded: [UInt8] = []
      var ended = false
      var offset = 0
      while offset < wire.count && !ended {
        var piece = ByteBuffer(bytes: wire[offset..<min(wire.count, offset + pieces)])
        offset += pieces
        while let event = try decoder.next(&piece) {
          if case .data(let data) = event { decoded += data.readableBytesView } else { ended = true }
        }
      }
      XCTAssertTrue(ended)
      XCTAssertEqual(decoded, original)
    }
  }

  func testChunkedErrors() {
    let cases: [(String, BodyDecoder.Failure)] = [
      ("\r\n", .invalidChunkSize),
      ("x\r\n", .invalidChunkSize),
      (";a\r\n", .invalidChunkSize),
      ("1000000000000000\r\n", .invalidChunkSize),
      ("1;" + String(repeating: "e", count: 5000), .invalidChunkSize),
      ("5\n", .invalidChunkSize),
      ("5\r\nhelloX", .invalidChunkFraming),
      ("5\r\nhello\rX", .invalidChunkFraming),
      ("0\r\nX-A: b\n", .invalidChunkFraming),
      ("0\r\nX A: b\r\n", .invalidTrailer("invalid header name")),
      ("0\r\n" + String(repeating: "X-A: bbbbbbbb\r\n", count: 10), .trailersTooLarge),
    ]
    for (wire, expected) in cases {
      var decoder = BodyDecoder(.chunked, maxTrailerBytes: 64)
      var buffer = ByteBuffer(string: wire)
      do {
        while try decoder.next(&buffer) != nil {}
        XCTFail("accepted \(wire.debugDescription)")
      } catch {
        XCTAssertEqual(error, expected, wire.debugDescription)
      }
    }
  }

  func testUntilCloseAndEmptyBodies() throws {
    var decoder = BodyDecoder(.untilClose)
    var buffer = ByteBuffer(string: "abc")
    XCTAssertEqual(try decoder.next(&buffer), .data(ByteBuffer(string: "abc")))
    XCTAssertNil(try decoder.next(&buffer))
    XCTAssertTrue(decoder.finishAtClose())
    XCTAssertEqual(try decoder.next(&buffer), .end(trailers: nil))
    XCTAssertTrue(decoder.isDone)
    var none = BodyDecoder(.none)
    XCTAssertEqual(try none.next(&buffer), .end(trailers: nil))
    XCTAssertNil(try none.next(&buffer))
    XCTAssertFalse(none.finishAtClose())
    XCTAssertTrue(BodyDecoder().isDone)
  }

  // MARK: - Responses

  func response(_ text: String, head: Bool = false) -> Result<ResponseHead, UpstreamProtocolError> {
    HeadParser.parseResponse(ByteBuffer(string: text), requestWasHEAD: head, maxHeaders: 100)
  }

  func testResponseHeadsAndFraming() throws {
    let ok = try response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\n").get()
    XCTAssertEqual(ok.status, 200)
    XCTAssertEqual(ok.framing, .length(5))
    XCTAssertTrue(ok.keepAlive)
    XCTAssertEqual(ok.reasonLength, 2)
    XCTAssertEqual(try response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", head: true).get().framing, .none)
    XCTAssertEqual(try response("HTTP/1.1 204 No Content\r\n\r\n").get().framing, .none)
    XCTAssertEqual(try response("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").get().framing, .none)
    XCTAssertEqual(try response("HTTP/1.1 100 Continue\r\n\r\n").get().framing, .none)
    XCTAssertEqual(try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").get().framing, .chunked)
    let gzip = try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").get()
    XCTAssertEqual(gzip.framing, .untilClose)
    XCTAssertFalse(gzip.keepAlive)
    XCTAssertEqual(try response("HTTP/1.1 200\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n").get().framing, .length(1))
    let both = try response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n").get()
    XCTAssertEqual(both.framing, .chunked)
    XCTAssertTrue(both.hasTransferEncoding)
    XCTAssertFalse(both.keepAlive)
    XCTAssertFalse(try response("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").get().keepAlive)
    XCTAssertTrue(try response("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n").get().keepAlive)
    XCTAssertFalse(try response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n").get().keepAlive)
    for bad in [
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/2 200 OK\r\n\r\n",
      "HTTP/1.1 099 x\r\n\r\n", "HTTP/1.1 200 OK\r\nA: \u{1}\r\n\r\n", "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
    ] {
      if case .success = response(bad) { XCTFail("accepted \(bad.debugDescription)") }
    }
  }
}

extension Result {
  fileprivate var failure: Failure? {
    if case .failure(let error) = self { return error }
    return nil
  }
}
