import XCTest

@testable import SluiceCore

final class RESPTests: XCTestCase {
  func parse(_ text: String) throws -> RESPParser.Outcome { try RESPParser().parse(Array(text.utf8)) }

  func testEveryReplyType() throws {
    XCTAssertEqual(try parse("+OK\r\n"), .value(.simple("OK"), consumed: 5))
    XCTAssertEqual(try parse("-NOSCRIPT No matching script\r\n"), .value(.error("NOSCRIPT No matching script"), consumed: 30))
    XCTAssertEqual(try parse(":-42\r\n"), .value(.integer(-42), consumed: 6))
    XCTAssertEqual(try parse("$5\r\nhe\r\no\r\n"), .value(.bulk(Array("he\r\no".utf8)), consumed: 11))
    XCTAssertEqual(try parse("$-1\r\n"), .value(.null, consumed: 5))
    XCTAssertEqual(try parse("*-1\r\n"), .value(.null, consumed: 5))
    XCTAssertEqual(try parse("$0\r\n\r\n"), .value(.bulk([]), consumed: 6))
    XCTAssertEqual(
      try parse("*3\r\n:1\r\n*1\r\n+x\r\n$1\r\ny\r\n+next\r\n"),
      .value(.array([.integer(1), .array([.simple("x")]), .bulk([UInt8(ascii: "y")])]), consumed: 23))
    XCTAssertEqual(RESPValue.error("NOSCRIPT No matching").errorCode, "NOSCRIPT")
  }

  func testEveryPrefixNeedsMore() throws {
    // Replies arrive split anywhere: every proper prefix is "need more", never an error.
    let whole = "*2\r\n$3\r\nabc\r\n*2\r\n:10\r\n+OK\r\n"
    let bytes = Array(whole.utf8)
    for cut in 0..<bytes.count {
      XCTAssertEqual(try RESPParser().parse(Array(bytes[..<cut])), .needMore, "cut at \(cut)")
    }
    XCTAssertEqual(
      try RESPParser().parse(bytes),
      .value(.array([.bulk(Array("abc".utf8)), .array([.integer(10), .simple("OK")])]), consumed: bytes.count))
  }

  func testGarbageAndHostileLengthsAreErrors() {
    func fails(_ text: String, _ failure: RESPParser.Failure, line: UInt = #line) {
      XCTAssertThrowsError(try parse(text), line: line) { XCTAssertEqual($0 as? RESPParser.Failure, failure, line: line) }
    }
    fails("HTTP/1.1 200 OK\r\n", .badType(UInt8(ascii: "H")))
    fails(":12a\r\n", .badLength)
    fails(":\r\n", .badLength)
    fails(":99999999999999999999\r\n", .badLength)
    fails("$-2\r\n", .badLength)
    fails("$3\r\nabcXY", .badLine)
    fails("+OK\n", .badLine)
    fails("+O\rK\r\n", .badLine)
    fails("$2000000\r\n", .tooLarge)
    fails("*5000\r\n", .tooLarge)
    fails(String(repeating: "*1\r\n", count: 20) + ":1\r\n", .tooDeep)
    var parser = RESPParser()
    parser.maxLine = 8
    XCTAssertThrowsError(try parser.parse(Array("+0123456789".utf8)))
  }

  func testEncoder() {
    XCTAssertEqual(
      String(decoding: RESPEncoder.command(["EXISTS", "k é"]), as: UTF8.self), "*2\r\n$6\r\nEXISTS\r\n$4\r\nk é\r\n")
  }
}
