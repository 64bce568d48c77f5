import NIOCore
import NIOEmbedded
import SluiceConfig
import SluiceCore
import XCTest

@testable import SluiceProxy

/// The server handler driven in `EmbeddedChannel`: no sockets, a manual clock for timeouts.
final class ServerHandlerTests: XCTestCase {
  var loop: EmbeddedEventLoop!
  var channel: EmbeddedChannel!

  static let yaml = """
    version: 1
    listeners:
      - name: l
        listen: 127.0.0.1:8080
        limits: { request_header_timeout: 2s, idle_timeout: 5s, max_request_uri_bytes: 64B, max_request_headers: 5 }
        routes:
          - { name: hello, match: { path: / }, direct_response: { status: 200, body: "hi" } }
          - { name: echo, match: { path: /echo }, direct_response: { status: 200, echo: true } }

    """

  override func setUpWithError() throws {
    loop = EmbeddedEventLoop()
    let config = try XCTUnwrap(ConfigLoader.load(text: Self.yaml, file: "t.yaml", environment: [:]).configuration)
    let graph = Compiler.compile(config, state: PersistentState())
    let contexts = LoopContexts(group: loop, graph: graph, sink: nil, manualClock: true)
    let context = try XCTUnwrap(contexts.context(for: loop))
    let listener = try XCTUnwrap(graph.listeners["l"])
    channel = EmbeddedChannel(loop: loop)
    let server = ServerHandler(loop: context, listener: listener, peerIP: "127.0.0.1", peerBytes: [127, 0, 0, 1])
    try channel.pipeline.syncOperations.addHandler(server)
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
  }

  override func tearDown() {
    _ = try? channel.finish()
  }

  func send(_ text: String) throws {
    try channel.writeInbound(ByteBuffer(string: text))
  }

  func output() throws -> String {
    var out = ""
    while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
      out += String(buffer: buffer)
    }
    return out
  }

  /// A closed connection's handler is freed: it must not keep itself alive through its
  /// context (a leak of ~0.8 KiB per connection until the fix).
  func testHandlerIsFreedWhenItsConnectionCloses() throws {
    weak var handler: ServerHandler?
    try {
      let config = try XCTUnwrap(ConfigLoader.load(text: Self.yaml, file: "t.yaml", environment: [:]).configuration)
      let graph = Compiler.compile(config, state: PersistentState())
      let contexts = LoopContexts(group: loop, graph: graph, sink: nil, manualClock: true)
      let context = try XCTUnwrap(contexts.context(for: loop))
      let other = EmbeddedChannel(loop: loop)
      let server = ServerHandler(
        loop: context, listener: try XCTUnwrap(graph.listeners["l"]), peerIP: "127.0.0.1", peerBytes: [127, 0, 0, 1])
      handler = server
      try other.pipeline.syncOperations.addHandler(server)
      try other.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
      try other.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
      loop.run()
      XCTAssertFalse(other.isActive)
      _ = try? other.finish()
    }()
    loop.run()
    XCTAssertNil(handler)
  }

  func testDirectResponse() throws {
    try send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    let out = try output()
    XCTAssertTrue(out.hasPrefix("HTTP/1.1 200 OK\r\n"), out)
    XCTAssertTrue(out.contains("content-length: 2\r\n"))
    XCTAssertTrue(out.contains("x-request-id: "))
    XCTAssertTrue(out.hasSuffix("\r\n\r\nhi"))
    XCTAssertTrue(channel.isActive)
  }

  func testNoRouteIsJSON404AndKeepsConnection() throws {
    try send("GET /missing HTTP/1.1\r\nHost: a\r\nX-Request-Id: req-1\r\n\r\n")
    let out = try output()
    XCTAssertTrue(out.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
    XCTAssertTrue(out.contains("content-type: application/json"))
    XCTAssertTrue(out.hasSuffix("{\"error\":\"no_route\",\"message\":\"no route matches this request\",\"request_id\":\"req-1\"}"))
    XCTAssertTrue(channel.isActive)
  }

  func testMissingHostIs400AndCloses() throws {
    try send("GET / HTTP/1.1\r\n\r\n")
    let out = try output()
    XCTAssertTrue(out.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
    XCTAssertTrue(out.contains("connection: close"))
    XCTAssertFalse(channel.isActive)
  }

  func testConnectAndTraceAre405() throws {
    try send("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n")
    XCTAssertTrue(try output().hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
    XCTAssertFalse(channel.isActive)
  }

  func testURIAndHeaderLimits() throws {
    try send("GET /" + String(repeating: "a", count: 100) + " HTTP/1.1\r\nHost: a\r\n\r\n")
    XCTAssertTrue(try output().hasPrefix("HTTP/1.1 414 URI Too Long\r\n"))
    XCTAssertFalse(channel.isActive)
  }

  func testTooManyHeaders() throws {
    try send("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n")
    XCTAssertTrue(try output().hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
  }

  func testParserErrorIs400() throws {
    try send("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n")
    XCTAssertTrue(try output().hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
    XCTAssertFalse(channel.isActive)
  }

  func testPipelinedRequestsAnsweredInOrder() throws {
    try send("GET /echo?n=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /missing HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
    let out = try output()
    let first = try XCTUnwrap(out.range(of: "HTTP/1.1 200 OK"))
    let second = try XCTUnwrap(out.range(of: "HTTP/1.1 404"))
    let third = try XCTUnwrap(out.range(of: "HTTP/1.1 200 OK", range: second.upperBound..<out.endIndex))
    XCTAssertLessThan(first.lowerBound, second.lowerBound)
    XCTAssertLessThan(second.lowerBound, third.lowerBound)
    XCTAssertTrue(out.contains("\"query\":\"n=1\""))
  }

  func testHeadGetsNoBody() throws {
    try send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    let out = try output()
    XCTAssertTrue(out.contains("content-length: 2\r\n"))
    XCTAssertTrue(out.hasSuffix("\r\n\r\n"))
  }

  func testHTTP10ClosesUnlessKeepAlive() throws {
    try send("GET / HTTP/1.0\r\n\r\n")
    let out = try output()
    XCTAssertTrue(out.contains("connection: close"))
    XCTAssertFalse(channel.isActive)
  }

  func testHTTP10KeepAlive() throws {
    try send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    XCTAssertTrue(try output().contains("connection: keep-alive"))
    XCTAssertTrue(channel.isActive)
  }

  func testSlowLorisGets408() throws {
    try send("GET / HTTP/1.1\r\nHo")
    loop.advanceTime(by: .milliseconds(1900))
    XCTAssertEqual(try output(), "")
    XCTAssertTrue(channel.isActive)
    loop.advanceTime(by: .milliseconds(200))
    XCTAssertTrue(try output().hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
    XCTAssertFalse(channel.isActive)
  }

  func testIdleConnectionClosedSilently() throws {
    try send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    _ = try output()
    loop.advanceTime(by: .seconds(4))
    XCTAssertTrue(channel.isActive)
    loop.advanceTime(by: .seconds(2))
    XCTAssertEqual(try output(), "")
    XCTAssertFalse(channel.isActive)
  }

  func testTransferEncodingRules() throws {
    try send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
    XCTAssertTrue(try output().hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
    XCTAssertFalse(channel.isActive)
  }
}
