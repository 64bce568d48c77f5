import SluiceCore
import SluiceFeatures
import XCTest

@testable import SluiceAdapters

/// The limit script's reply comes from outside the process: any integers must give a verdict
/// or nil, never a trap.
final class RedisVerdictTests: XCTestCase {
  func testVerdictsAndHostileNumbers() {
    XCTAssertEqual(
      RedisClient.verdict(.array([.integer(0), .integer(2), .integer(0), .integer(1_500_000), .integer(60_000_000)])),
      SharedLimitVerdict(admitted: false, refusedBy: 1, remaining: 0, retryAfterNanos: 1_500_000_000, resetNanos: 60_000_000_000))
    XCTAssertEqual(RedisClient.verdict(.array([.integer(1), .integer(0), .integer(7), .integer(0), .integer(5)]))?.remaining, 7)
    let extreme = RedisClient.verdict(
      .array([.integer(0), .integer(Int64.min), .integer(Int64.min), .integer(Int64.max), .integer(Int64.max)]))
    XCTAssertEqual(extreme?.refusedBy, 0)
    XCTAssertEqual(extreme?.remaining, 0)
    XCTAssertEqual(extreme?.retryAfterNanos, 1_000_000_000_000_000_000)
    XCTAssertEqual(Int64.max.secondsRoundedUp, Int64.max / 1_000_000_000 + 1)
    XCTAssertNil(RedisClient.verdict(.array([.integer(2), .integer(0), .integer(0), .integer(0), .integer(0)])))
    XCTAssertNil(RedisClient.verdict(.array([.integer(1), .simple("x"), .integer(0), .integer(0), .integer(0)])))
    XCTAssertNil(RedisClient.verdict(.error("ERR script")))
    XCTAssertNil(RedisClient.verdict(.array([.integer(1)])))
  }
}
