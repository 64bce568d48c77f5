import XCTest

@testable import SluiceProxy

final class ConnectPolicyTests: XCTestCase {
  let near: UInt64 = 80_000  // 80 µs: loopback
  let far: UInt64 = 20_000_000  // 20 ms: across a WAN

  func testNothingToStartWithoutWaiters() {
    for connecting in 0...6 {
      for open in 0...6 {
        XCTAssertEqual(ConnectPolicy.connectsToStart(waiting: 0, connecting: connecting, open: open, fastestConnectNanos: nil), 0)
      }
    }
  }

  func testOneConnectPerWaiterUpToTheCap() {
    for waiting in 1...20 {
      let start = ConnectPolicy.connectsToStart(waiting: waiting, connecting: 0, open: 0, fastestConnectNanos: nil)
      XCTAssertEqual(start, min(waiting, ConnectPolicy.minInFlight), "waiting \(waiting)")
    }
  }

  func testConnectsInFlightCountAgainstTheCap() {
    let cap = ConnectPolicy.minInFlight
    for connecting in 0...(cap + 2) {
      let start = ConnectPolicy.connectsToStart(waiting: 50, connecting: connecting, open: 10, fastestConnectNanos: near)
      XCTAssertEqual(start, max(0, cap - connecting))
      // Never more in flight than waiting requests.
      XCTAssertEqual(
        ConnectPolicy.connectsToStart(waiting: 2, connecting: connecting, open: 10, fastestConnectNanos: near),
        max(0, min(2, cap) - connecting))
    }
  }

  func testNearEndpointKeepsTheCapHoweverLargeThePool() {
    for open in [0, 4, 40, 4000] {
      XCTAssertEqual(
        ConnectPolicy.connectsToStart(waiting: 10_000, connecting: 0, open: open, fastestConnectNanos: near),
        ConnectPolicy.minInFlight)
    }
  }

  func testFarEndpointGrowsWithThePool() {
    XCTAssertEqual(
      ConnectPolicy.connectsToStart(waiting: 1000, connecting: 0, open: 0, fastestConnectNanos: far), ConnectPolicy.minInFlight)
    XCTAssertEqual(ConnectPolicy.connectsToStart(waiting: 1000, connecting: 0, open: 64, fastestConnectNanos: far), 64)
    XCTAssertEqual(ConnectPolicy.connectsToStart(waiting: 1000, connecting: 60, open: 64, fastestConnectNanos: far), 4)
    XCTAssertEqual(ConnectPolicy.connectsToStart(waiting: 30, connecting: 0, open: 64, fastestConnectNanos: far), 30)
    // The boundary: exactly the threshold counts as far.
    XCTAssertEqual(
      ConnectPolicy.connectsToStart(
        waiting: 100, connecting: 0, open: 50, fastestConnectNanos: ConnectPolicy.remoteConnectNanos), 50)
    XCTAssertEqual(
      ConnectPolicy.connectsToStart(
        waiting: 100, connecting: 0, open: 50, fastestConnectNanos: ConnectPolicy.remoteConnectNanos - 1),
      ConnectPolicy.minInFlight)
  }

  /// A far pool grows at least by doubling per round trip: after each round every connect
  /// completed and the next round may have as many in flight as are open.
  func testFarPoolDoublesPerRound() {
    var open = 0
    var rounds = 0
    while open < 1000 {
      open += ConnectPolicy.connectsToStart(waiting: 1000 - open, connecting: 0, open: open, fastestConnectNanos: far)
      rounds += 1
    }
    XCTAssertEqual(open, 1000)
    XCTAssertLessThanOrEqual(rounds, 10)  // 2, 4, 8, ..., 512, then the rest
  }

  func testUnreachableEndpointFailsEveryoneNotCoveredByAConnect() {
    XCTAssertEqual(ConnectPolicy.failuresAfterConnectError(waiting: 0, connecting: 0, open: 0), 0)
    XCTAssertEqual(ConnectPolicy.failuresAfterConnectError(waiting: 40, connecting: 0, open: 0), 40)
    XCTAssertEqual(ConnectPolicy.failuresAfterConnectError(waiting: 40, connecting: 3, open: 0), 37)
    // The failed connect's own request fails even when the others in flight outnumber the queue.
    XCTAssertEqual(ConnectPolicy.failuresAfterConnectError(waiting: 2, connecting: 3, open: 0), 1)
  }

  func testWithConnectionsOpenOnlyTheFailedConnectsShareFails() {
    for waiting in 1...10 {
      XCTAssertEqual(ConnectPolicy.failuresAfterConnectError(waiting: waiting, connecting: 0, open: 1), 1)
      XCTAssertEqual(ConnectPolicy.failuresAfterConnectError(waiting: waiting, connecting: 4, open: 30), 1)
    }
  }
}
