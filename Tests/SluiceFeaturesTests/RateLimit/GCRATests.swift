import SluiceCore
import XCTest

@testable import SluiceFeatures

/// GCRA and the local store on a manual clock (nanoseconds).
final class GCRATests: XCTestCase {
  let second: Int64 = 1_000_000_000

  func testBurstThenSteadyRate() {
    // 10 per second, burst 10: ten at once, the eleventh waits one interval (100 ms).
    let rule = GCRA(limit: 10, perNanoseconds: second)
    var tat: Int64 = 0
    let now: Int64 = 1_000 * second
    for i in 0..<10 {
      let d = rule.decide(tat: tat, now: now)
      XCTAssertTrue(d.admitted, "request \(i)")
      XCTAssertEqual(d.remaining, Int64(9 - i))
      tat = d.newTAT
    }
    let refused = rule.decide(tat: tat, now: now)
    XCTAssertFalse(refused.admitted)
    XCTAssertEqual(refused.retryAfter, second / 10)
    XCTAssertEqual(refused.newTAT, tat, "a refusal charges nothing")
    XCTAssertEqual(refused.reset, second, "the full burst is back after one period")
    XCTAssertFalse(rule.decide(tat: tat, now: now + second / 10 - 1).admitted)
    XCTAssertTrue(rule.decide(tat: tat, now: now + second / 10).admitted)
  }

  func testNeverMoreThanLimitPlusBurstInAPeriod() {
    // Over any window of `per`, at most burst + limit requests (the first burst, then the rate).
    let rule = GCRA(limit: 100, perNanoseconds: 60 * second)
    var tat: Int64 = 0
    var admitted = 0
    var t: Int64 = 0
    while t < 60 * second {
      let d = rule.decide(tat: tat, now: t)
      if d.admitted {
        admitted += 1
        tat = d.newTAT
      }
      t += second / 100
    }
    XCTAssertLessThanOrEqual(admitted, 200)
    XCTAssertGreaterThanOrEqual(admitted, 199)
  }

  func testExplicitBurstAndRoundedSeconds() {
    let rule = GCRA(limit: 60, perNanoseconds: 60 * second, burst: 1)
    let first = rule.decide(tat: 0, now: 5 * second)
    XCTAssertTrue(first.admitted)
    XCTAssertEqual(first.remaining, 0)
    let second = rule.decide(tat: first.newTAT, now: 5 * self.second + 1)
    XCTAssertFalse(second.admitted)
    XCTAssertEqual(second.retryAfter.secondsRoundedUp, 1)
    XCTAssertEqual(Int64(0).secondsRoundedUp, 0)
    XCTAssertEqual(Int64(1).secondsRoundedUp, 1)
    XCTAssertEqual(Int64(1_000_000_001).secondsRoundedUp, 2)
  }

  func testHugeBurstSaturatesInsteadOfOverflowing() {
    // 1 per 24 h with a burst of 10⁹: interval × burst is past Int64; the tolerance saturates.
    let rule = GCRA(limit: 1, perNanoseconds: 86_400 * second, burst: 1_000_000_000)
    XCTAssertEqual(rule.tolerance, GCRA.maxTolerance)
    let d = rule.decide(tat: 0, now: 5 * second)
    XCTAssertTrue(d.admitted)
    XCTAssertGreaterThan(d.remaining, 0)
  }

  func testRefundGivesBackOneIntervalNeverBelowNow() {
    let rule = GCRA(limit: 10, perNanoseconds: second)
    XCTAssertEqual(rule.refund(tat: 500 * second, now: 100 * second), 500 * second - second / 10)
    XCTAssertEqual(rule.refund(tat: 100 * second + 5, now: 100 * second), 100 * second)
    XCTAssertTrue(GCRA.isIdle(tat: 100 * second, now: 100 * second))
  }

  func testLocalStoreIsOneLimitAcrossThreads() {
    // Two threads hammer one key: exactly `burst` are admitted at one instant.
    let store = LocalLimitStore(rule: GCRA(limit: 1000, perNanoseconds: 3600 * second), maxKeys: 1000)
    let now: Int64 = 10 * second
    let admitted = ManagedCounter()
    DispatchQueue.concurrentPerform(iterations: 4) { _ in
      for _ in 0..<1000 where store.take(key: 42, now: now).admitted { admitted.add() }
    }
    XCTAssertEqual(admitted.value, 1000)
  }

  func testLocalStoreRefundAndIdleKeysDropped() {
    let store = LocalLimitStore(rule: GCRA(limit: 2, perNanoseconds: second), maxKeys: 64)
    let now: Int64 = 50 * second
    XCTAssertTrue(store.take(key: 1, now: now).admitted)
    XCTAssertTrue(store.take(key: 1, now: now).admitted)
    XCTAssertFalse(store.take(key: 1, now: now).admitted)
    store.refund(key: 1, now: now)
    XCTAssertTrue(store.take(key: 1, now: now).admitted, "a refunded request is available again")
    store.refund(key: 1, now: now)
    store.refund(key: 1, now: now)
    XCTAssertNil(store.tat(key: 1), "a key refunded back to idle is forgotten")
  }

  func testLocalStoreStaysBoundedAndKeepsTheKeysOverTheirLimit() {
    // 64 shards × 16 = 1,024 keys. One hot key far over its limit; a flood of one-off keys.
    let store = LocalLimitStore(rule: GCRA(limit: 10, perNanoseconds: 60 * second), maxKeys: 1024)
    var now: Int64 = 100 * second
    let hot: UInt64 = 0xDEAD_BEEF
    for _ in 0..<10 { _ = store.take(key: hot, now: now) }
    XCTAssertFalse(store.take(key: hot, now: now).admitted)
    var rng = SystemRandomNumberGenerator()
    for _ in 0..<200_000 {
      _ = store.take(key: rng.next(), now: now)
      now += 1_000  // 1 µs apart: all one-off keys are still active (their TAT is 6 s ahead)
    }
    XCTAssertLessThanOrEqual(store.trackedKeys, 1024)
    XCTAssertFalse(store.take(key: hot, now: now).admitted, "the key over its limit is still limited")
  }

  func testKeyValuesFallBackToClientIP() {
    let counter = Counter()
    func limit(_ key: RateLimitKey) -> CompiledLimit {
      CompiledLimit(
        name: "l", key: key, rule: GCRA(limit: 1, perNanoseconds: second),
        placement: .local(LocalLimitStore(rule: GCRA(limit: 1, perNanoseconds: second), maxKeys: 64)), refused: counter)
    }
    let claims: JSONValue = .object([("tenant", .string("acme")), ("n", .int(7))])
    let header: (String) -> String? = { $0 == "x-api-key" ? "k1" : nil }
    XCTAssertEqual(limit(.clientIP).keyValue(clientIP: "10.0.0.1", header: header, claims: nil, route: "r").text, "10.0.0.1")
    XCTAssertEqual(limit(.header("x-api-key")).keyValue(clientIP: "ip", header: header, claims: nil, route: "r").tag, 2)
    let missing = limit(.header("x-other")).keyValue(clientIP: "10.0.0.9", header: header, claims: nil, route: "r")
    XCTAssertEqual(missing.tag, 0)
    XCTAssertEqual(missing.text, "10.0.0.9")
    XCTAssertEqual(limit(.claim("tenant")).keyValue(clientIP: "ip", header: header, claims: claims, route: "r").text, "acme")
    XCTAssertEqual(limit(.claim("n")).keyValue(clientIP: "ip", header: header, claims: claims, route: "r").text, "7")
    XCTAssertEqual(limit(.route).keyValue(clientIP: "ip", header: header, claims: claims, route: "users").text, "users")
    XCTAssertNotEqual(RateLimitKey.hash(tag: 0, "a"), RateLimitKey.hash(tag: 2, "a"), "tags separate namespaces")
    let long = String(repeating: "x", count: 500)
    let key = limit(.header("x-api-key")).sharedKey(tag: 2, text: long)
    XCTAssertEqual(key.utf8.count, "sluice:rl:l:2:".utf8.count + 64)
    XCTAssertEqual(limit(.clientIP).sharedKey(tag: 0, text: "10.0.0.1"), "sluice:rl:l:0:10.0.0.1")
  }
}

/// A thread-safe counter for the concurrency test.
final class ManagedCounter: @unchecked Sendable {
  let lock = Mutex()
  var count = 0
  func add() { lock.withLock { count += 1 } }
  var value: Int { lock.withLock { count } }
}
