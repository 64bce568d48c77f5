import SluiceCore
import XCTest

@testable import SluiceFeatures

/// The resilience state machines on a manual clock (nanoseconds).
final class CircuitBreakerTests: XCTestCase {
  let s: Int64 = 1_000_000_000
  func breaker() -> CircuitBreaker {
    CircuitBreaker(
      policy: CircuitBreakerPolicy(errorRate: 0.5, window: 30 * s, minRequests: 20, openFor: 30 * s, halfOpenRequests: 5))
  }

  func testOpensOnlyAboveTheRateWithEnoughRequests() {
    var b = breaker()
    var t: Int64 = 100 * s
    // 19 failures: under min_requests, stays closed.
    for _ in 0..<19 { XCTAssertNil(b.record(failure: true, probe: false, now: t)) }
    XCTAssertEqual(b.phase, .closed)
    // 10 successes then failures: opens when failures / total > 50 %.
    b = breaker()
    for _ in 0..<10 { _ = b.record(failure: false, probe: false, now: t) }
    for i in 0..<10 {
      t += 1
      XCTAssertNil(b.record(failure: true, probe: false, now: t), "failure \(i)")
    }
    XCTAssertEqual(b.record(failure: true, probe: false, now: t), .opened)
    XCTAssertEqual(b.phase, .open(until: t + 30 * s))
    XCTAssertEqual(b.gaugeValue, 1)
    let (admission, _) = b.admit(now: t + 10 * s)
    XCTAssertEqual(admission, .reject(retryAfter: 20 * s))
  }

  func testOldFailuresAgeOutOfTheWindow() {
    var b = breaker()
    for _ in 0..<15 { _ = b.record(failure: true, probe: false, now: 0) }
    // 40 s later the 15 failures are out of the 30 s window: 10 fresh failures of 15 are
    // under min_requests.
    for _ in 0..<5 { _ = b.record(failure: false, probe: false, now: 40 * s) }
    for _ in 0..<10 { XCTAssertNil(b.record(failure: true, probe: false, now: 40 * s)) }
    XCTAssertEqual(b.counts(now: 40 * s).failures, 10)
    XCTAssertEqual(b.phase, .closed)
  }

  func testHalfOpenProbesCloseWithAFreshWindowOrReopen() {
    var b = breaker()
    for _ in 0..<20 { _ = b.record(failure: true, probe: false, now: 0) }
    XCTAssertEqual(b.phase, .open(until: 30 * s))
    var (a, tr) = b.admit(now: 30 * s)
    XCTAssertEqual(a, .probe)
    XCTAssertEqual(tr, .halfOpened)
    for _ in 0..<4 { XCTAssertEqual(b.admit(now: 30 * s).0, .probe) }
    if case .reject = b.admit(now: 30 * s).0 {} else { XCTFail("only 5 probes") }
    for _ in 0..<4 { XCTAssertNil(b.record(failure: false, probe: true, now: 31 * s)) }
    XCTAssertNil(b.record(failure: false, probe: false, now: 31 * s), "a non-probe does not count")
    XCTAssertEqual(b.record(failure: false, probe: true, now: 31 * s), .closed)
    XCTAssertEqual(b.counts(now: 31 * s).failures, 0, "the failures that opened it no longer count")
    // Re-open from half-open on a failed probe.
    for _ in 0..<20 { _ = b.record(failure: true, probe: false, now: 40 * s) }
    (a, tr) = b.admit(now: 70 * s)
    XCTAssertEqual(a, .probe)
    XCTAssertEqual(b.record(failure: true, probe: true, now: 70 * s), .opened)
    XCTAssertEqual(b.phase, .open(until: 100 * s))
  }

  func testAbandonedProbeGivesItsPlaceBack() {
    var b = CircuitBreaker(
      policy: CircuitBreakerPolicy(errorRate: 0.1, window: s, minRequests: 1, openFor: s, halfOpenRequests: 1))
    XCTAssertEqual(b.record(failure: true, probe: false, now: 0), .opened)
    XCTAssertEqual(b.admit(now: s).0, .probe)
    if case .reject = b.admit(now: s).0 {} else { XCTFail() }
    b.abandonProbe()
    XCTAssertEqual(b.admit(now: s).0, .probe)
    XCTAssertEqual(b.record(failure: false, probe: true, now: s), .closed)
    XCTAssertEqual(b.name, "closed")
  }
}

final class HealthAndOutlierTests: XCTestCase {
  let s: Int64 = 1_000_000_000

  func testThresholdsInARow() {
    var h = HealthState(healthyThreshold: 2, unhealthyThreshold: 3)
    XCTAssertTrue(h.healthy)
    XCTAssertFalse(h.record(ok: false))
    XCTAssertFalse(h.record(ok: false))
    XCTAssertFalse(h.record(ok: true), "a success breaks the run")
    XCTAssertFalse(h.record(ok: false))
    XCTAssertFalse(h.record(ok: false))
    XCTAssertTrue(h.record(ok: false))
    XCTAssertFalse(h.healthy)
    XCTAssertFalse(h.record(ok: true))
    XCTAssertTrue(h.record(ok: true))
    XCTAssertTrue(h.healthy)
  }

  func testConsecutiveFailuresEjectLongerEachTimeWithinTheShare() {
    var o = OutlierDetector(policy: .init(consecutiveFailures: 3, ejectFor: 10 * s), endpoints: 4)
    XCTAssertFalse(o.record(0, failure: true, now: 0))
    XCTAssertFalse(o.record(0, failure: false, now: 0), "a success resets the run")
    for _ in 0..<2 { XCTAssertFalse(o.record(0, failure: true, now: 0)) }
    XCTAssertTrue(o.record(0, failure: true, now: 0))
    XCTAssertTrue(o.isEjected(0, now: 9 * s))
    XCTAssertFalse(o.isEjected(0, now: 10 * s))
    for _ in 0..<2 { _ = o.record(0, failure: true, now: 20 * s) }
    XCTAssertTrue(o.record(0, failure: true, now: 20 * s))
    XCTAssertTrue(o.isEjected(0, now: 39 * s), "second ejection lasts 2 × eject_for")
    // Share: 50 % of 4 = 2 endpoints at most.
    for _ in 0..<3 { _ = o.record(1, failure: true, now: 21 * s) }
    XCTAssertTrue(o.isEjected(1, now: 21 * s))
    for _ in 0..<3 { XCTAssertFalse(o.record(2, failure: true, now: 21 * s)) }
    XCTAssertEqual(o.ejectedCount(now: 21 * s), 2)
    XCTAssertEqual(o.policy.maxEjectFor, 100 * s)
  }

  func testOneOfTwoMayAlwaysBeEjectedButNotBoth() {
    var o = OutlierDetector(policy: .init(consecutiveFailures: 1, ejectFor: s, maxEjectedShare: 0.1), endpoints: 2)
    XCTAssertTrue(o.record(0, failure: true, now: 0))
    XCTAssertFalse(o.record(1, failure: true, now: 0))
    XCTAssertEqual(o.ejectedCount(now: 0), 1)
  }
}

final class RetryAndQueueTests: XCTestCase {
  func testBudgetWithAFloor() {
    let b = RetryBudget(budget: 0.2)
    XCTAssertTrue(b.allows(activeRequests: 0, activeRetries: 2), "a quiet backend can still retry")
    XCTAssertFalse(b.allows(activeRequests: 0, activeRetries: 3))
    XCTAssertTrue(b.allows(activeRequests: 100, activeRetries: 19))
    XCTAssertFalse(b.allows(activeRequests: 100, activeRetries: 20))
  }

  func testBackoffDoublesUpToTheCapWithFullJitter() {
    let b = Backoff(base: 25_000_000)
    XCTAssertEqual(b.ceiling(retry: 1), 25_000_000)
    XCTAssertEqual(b.ceiling(retry: 2), 50_000_000)
    XCTAssertEqual(b.ceiling(retry: 4), 200_000_000)
    XCTAssertEqual(b.ceiling(retry: 5), 250_000_000)
    XCTAssertEqual(b.ceiling(retry: 60), 250_000_000)
    XCTAssertEqual(b.delay(retry: 2, unit: 0), 0)
    XCTAssertEqual(b.delay(retry: 2, unit: 0.5), 25_000_000)
    XCTAssertLessThan(b.delay(retry: 2, unit: 1.0), 50_000_000)
  }

  func testRetrySafety() {
    XCTAssertTrue(
      RetrySafety.mayRetry(
        method: "POST", failure: .connectFailure, bodyKept: true, responseStarted: false, retryNonIdempotent: false))
    XCTAssertFalse(
      RetrySafety.mayRetry(method: "POST", failure: .reset, bodyKept: true, responseStarted: false, retryNonIdempotent: false))
    XCTAssertTrue(
      RetrySafety.mayRetry(method: "POST", failure: .reset, bodyKept: true, responseStarted: false, retryNonIdempotent: true))
    XCTAssertTrue(
      RetrySafety.mayRetry(method: "GET", failure: .status(503), bodyKept: true, responseStarted: false, retryNonIdempotent: false))
    XCTAssertFalse(
      RetrySafety.mayRetry(method: "GET", failure: .timeout, bodyKept: true, responseStarted: true, retryNonIdempotent: true))
    XCTAssertFalse(
      RetrySafety.mayRetry(method: "PUT", failure: .connectFailure, bodyKept: false, responseStarted: false, retryNonIdempotent: true))
  }

  func testQueueAdmitsInOrderTimesOutAndFreesPlaces() {
    var q = AdmissionQueue<String>(limit: 2, size: 2, timeout: 100)
    XCTAssertEqual(q.enter("a", now: 0), .admitted)
    XCTAssertEqual(q.enter("b", now: 0), .admitted)
    XCTAssertEqual(q.enter("c", now: 0), .queued(id: 1))
    XCTAssertEqual(q.enter("d", now: 10), .queued(id: 2))
    XCTAssertEqual(q.enter("e", now: 10), .rejected, "beyond the queue: 503 at once")
    XCTAssertEqual(q.queued, 2)
    XCTAssertEqual(q.nextDeadline, 100)
    XCTAssertTrue(q.cancel(1), "a client that leaves frees its place")
    XCTAssertFalse(q.cancel(1))
    XCTAssertEqual(q.enter("f", now: 20), .queued(id: 3))
    var (next, expired) = q.release(now: 50)
    XCTAssertEqual(next, "d")
    XCTAssertEqual(expired, [])
    XCTAssertEqual(q.inFlight, 2)
    XCTAssertEqual(q.expire(now: 120), ["f"])
    (next, expired) = q.release(now: 130)
    XCTAssertNil(next)
    XCTAssertEqual(q.inFlight, 1)
    XCTAssertEqual(q.enter("g", now: 130), .admitted)
  }

  func testAReleasePassesOverExpiredWaiters() {
    var q = AdmissionQueue<Int>(limit: 1, size: 3, timeout: 10)
    XCTAssertEqual(q.enter(0, now: 0), .admitted)
    _ = q.enter(1, now: 0)
    _ = q.enter(2, now: 5)
    _ = q.enter(3, now: 20)
    let (next, expired) = q.release(now: 16)
    XCTAssertEqual(next, 3)
    XCTAssertEqual(expired, [1, 2])
    XCTAssertEqual(q.queued, 0)
  }
}

final class OutlierFaultAndPickerTests: XCTestCase {
  let s: Int64 = 1_000_000_000

  func testEjectIsTheThresholdCrossingAndForgetsOldEjections() {
    var o = OutlierDetector(policy: .init(consecutiveFailures: 5, ejectFor: 10 * s), endpoints: 3)
    XCTAssertEqual(o.eject(0, now: 0), 10 * s)
    XCTAssertNil(o.eject(0, now: 5 * s), "already out")
    XCTAssertEqual(o.eject(0, now: 20 * s), 40 * s, "second ejection: 2 × eject_for")
    // Back since long before maxEjectFor (100 s): it starts again from eject_for.
    XCTAssertEqual(o.eject(0, now: 200 * s), 210 * s)
    // The share: 50 % of 3 is one endpoint.
    XCTAssertNil(o.eject(1, now: 201 * s))
    XCTAssertEqual(o.eject(1, now: 210 * s), 220 * s)
  }

  func testOutlierBoxSharesOneDetector() {
    let box = OutlierBox(policy: .init(consecutiveFailures: 1, ejectFor: s), endpoints: 4)
    XCTAssertNotNil(box.eject(0, now: 0))
    XCTAssertNotNil(box.eject(1, now: 0))
    XCTAssertNil(box.eject(2, now: 0), "two of four are out")
  }

  func testFaultRollsDelayAndAbortIndependently() {
    let half = UInt64(1) << 63
    let d = FaultInjection.decide(delayShare: 0.5, delay: 7, abortShare: 0.5, abortStatus: 503, rolls: (half - 4096, half))
    XCTAssertEqual(d, FaultInjection.Decision(delay: 7, abort: nil))
    XCTAssertEqual(
      FaultInjection.decide(delayShare: 1, delay: 7, abortShare: 1, abortStatus: 418, rolls: (.max, .max)),
      FaultInjection.Decision(delay: 7, abort: 418), "100 % always fires")
    XCTAssertEqual(
      FaultInjection.decide(delayShare: 0, delay: 7, abortShare: 0, abortStatus: 503, rolls: (0, 0)), .init())
    XCTAssertEqual(FaultInjection.decide(delayShare: 1, delay: 0, abortShare: 0, abortStatus: 503, rolls: (0, 0)).delay, nil)
    var rng = FastRandom(seed: 7)
    var hits = 0
    for _ in 0..<10_000 where FaultInjection.unit(rng.next()) < 0.1 { hits += 1 }
    XCTAssertTrue((800...1200).contains(hits), "\(hits)")
  }
}
