import NIOCore
import XCTest

@testable import SluiceProxy

final class ConnectionDeadlinesTests: XCTestCase {
  let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

  func testEarliestAndOrder() {
    var d = ConnectionDeadlines()
    XCTAssertNil(d.earliest)
    d.idle = t0 + .seconds(60)
    d.upstream = t0 + .seconds(30)
    XCTAssertEqual(d.earliest, t0 + .seconds(30))
    d.header = t0 + .seconds(10)
    XCTAssertEqual(d.earliest, t0 + .seconds(10))
    d.body = t0 + .seconds(20)
    XCTAssertNil(d.takeExpired(at: t0 + .seconds(5)))
    XCTAssertEqual(d.takeExpired(at: t0 + .seconds(61)), .header)
    XCTAssertEqual(d.takeExpired(at: t0 + .seconds(61)), .body)
    XCTAssertEqual(d.takeExpired(at: t0 + .seconds(61)), .upstream)
    XCTAssertEqual(d.takeExpired(at: t0 + .seconds(61)), .idle)
    XCTAssertNil(d.takeExpired(at: t0 + .seconds(61)))
    XCTAssertEqual(d, ConnectionDeadlines())
  }

  func testMovingADeadlineLaterNeedsNoNewTimer() {
    var d = ConnectionDeadlines()
    d.idle = t0 + .seconds(60)
    let armed = d.earliest!
    d.idle = t0 + .seconds(90)  // a later request: the armed timer fires early and re-arms
    XCTAssertNil(d.takeExpired(at: armed))
    XCTAssertEqual(d.earliest, t0 + .seconds(90))
  }
}
