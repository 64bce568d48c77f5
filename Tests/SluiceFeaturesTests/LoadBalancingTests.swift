import Atomics
import SluiceCore
import XCTest

@testable import SluiceFeatures

final class LoadBalancingTests: XCTestCase {
  func testRoundRobinCycles() {
    XCTAssertEqual((0..<7).map { LoadBalancer.roundRobin(ticket: $0, count: 3) }, [0, 1, 2, 0, 1, 2, 0])
    XCTAssertEqual(LoadBalancer.roundRobin(ticket: Int.min, count: 3), 0)
    XCTAssertEqual(LoadBalancer.roundRobin(ticket: -1, count: 4), (Int.max) % 4)
  }

  func testPickerRoundRobinSharesTicket() {
    let stats = (0..<3).map { EndpointStats(address: "e\($0)") }
    let picker = EndpointPicker(policy: .roundRobin, endpoints: stats, ticket: ManagedAtomic(0))
    var rng = FastRandom(seed: 1)
    XCTAssertEqual((0..<6).map { _ in picker.pick(hashKey: nil, using: &rng) }, [0, 1, 2, 0, 1, 2])
  }

  func testLeastRequestPrefersIdle() {
    var rng = FastRandom(seed: 7)
    let inFlight = [50, 0, 50, 50]
    var wins = [0, 0, 0, 0]
    for _ in 0..<4000 { wins[LoadBalancer.leastRequest(count: 4, inFlight: { inFlight[$0] }, using: &rng)] += 1 }
    // endpoint 1 is chosen whenever it is one of the two candidates: 1 - (3/4 * 2/3) = 1/2
    XCTAssertGreaterThan(wins[1], 1800)
    XCTAssertLessThan(wins[1], 2200)
    XCTAssertEqual(LoadBalancer.leastRequest(count: 1, inFlight: { _ in 0 }, using: &rng), 0)
  }

  func testLeastRequestNeverPicksSameTwice() {
    var rng = FastRandom(seed: 3)
    for _ in 0..<1000 {
      let i = LoadBalancer.leastRequest(count: 2, inFlight: { $0 == 0 ? 1 : 0 }, using: &rng)
      XCTAssertEqual(i, 1)
    }
  }

  func testRandomSpreads() {
    var rng = FastRandom(seed: 9)
    var counts = [0, 0, 0]
    for _ in 0..<3000 { counts[LoadBalancer.random(count: 3, using: &rng)] += 1 }
    for c in counts { XCTAssertGreaterThan(c, 850) }
  }

  func testHashRingStableAndBalanced() {
    let addresses = (1...4).map { "10.0.0.\($0):80" }
    let ring = HashRing(addresses: addresses)
    var counts = [0, 0, 0, 0]
    var assignment: [Int] = []
    for k in 0..<8000 {
      let e = ring.endpoint(for: Hashing.fnv1a("user-\(k)"))
      counts[e] += 1
      assignment.append(e)
    }
    for c in counts { XCTAssertGreaterThan(c, 1200, "\(counts)") }
    // removing one endpoint moves only the keys it owned
    let smaller = HashRing(addresses: Array(addresses.prefix(3)))
    var moved = 0
    for k in 0..<8000 where assignment[k] != 3 {
      if smaller.endpoint(for: Hashing.fnv1a("user-\(k)")) != assignment[k] { moved += 1 }
    }
    XCTAssertEqual(moved, 0)
    XCTAssertEqual(HashRing(addresses: []).endpoint(for: 5), 0)
  }

  func testConsistentHashPickerWithoutKeyFallsBackToRandom() {
    let stats = (0..<3).map { EndpointStats(address: "e\($0)") }
    let picker = EndpointPicker(policy: .consistentHash(.header("x-user")), endpoints: stats, ticket: ManagedAtomic(0))
    var rng = FastRandom(seed: 5)
    let a = picker.pick(hashKey: "alice", using: &rng)
    for _ in 0..<20 { XCTAssertEqual(picker.pick(hashKey: "alice", using: &rng), a) }
    let seen = Set((0..<100).map { _ in picker.pick(hashKey: nil, using: &rng) })
    XCTAssertEqual(seen.count, 3)
  }

  func testCookieParsing() {
    XCTAssertEqual(Hashing.cookie("session", in: "a=1; session=xyz; b=2"), "xyz")
    XCTAssertNil(Hashing.cookie("session", in: "a=1; sessionx=2"))
    XCTAssertEqual(Hashing.cookie("a", in: "a="), "")
  }

  func testWeightedChoice() {
    let choice = WeightedChoice(weights: [90, 10, 0])
    var rng = FastRandom(seed: 11)
    var counts = [0, 0, 0]
    for _ in 0..<10000 { counts[choice.pick(roll: rng.next())] += 1 }
    XCTAssertEqual(counts[2], 0)
    XCTAssertGreaterThan(counts[0], 8800)
    XCTAssertLessThan(counts[0], 9200)
    XCTAssertEqual(WeightedChoice(weights: [0, 5]).pick(roll: 3), 1)
    XCTAssertEqual(WeightedChoice(weights: [1, 1]).pick(roll: 0), 0)
    XCTAssertEqual(WeightedChoice(weights: [1, 1]).pick(roll: 1), 1)
    XCTAssertEqual(WeightedChoice(weights: [0]).pick(roll: 1), 0)
  }
}

final class MetricsAndLogTests: XCTestCase {
  func testRegistryRendersAndReusesSeries() {
    let registry = MetricsRegistry()
    let c1 = registry.counter("x_total", help: "X.", labels: [("a", "1")])
    let c2 = registry.counter("x_total", help: "X.", labels: [("a", "1")])
    XCTAssertTrue(c1 === c2)
    c1.increment()
    c2.increment(by: 2)
    let status = registry.statusCounters("req_total", help: "R.", labels: [("route", "r\"q")])
    status.record(status: 200)
    status.record(status: 503)
    status.record(status: 9999)  // out of range: ignored, never traps
    let h = registry.histogram("d_seconds", help: "D.")
    h.observe(microseconds: 500)
    h.observe(microseconds: 3000)
    h.observe(microseconds: 10_000_000)
    let text = registry.render()
    XCTAssertTrue(text.contains("# TYPE x_total counter\nx_total{a=\"1\"} 3\n"))
    XCTAssertTrue(text.contains("req_total{route=\"r\\\"q\",code=\"200\"} 1"))
    XCTAssertTrue(text.contains("req_total{route=\"r\\\"q\",code=\"503\"} 1"))
    XCTAssertTrue(text.contains("d_seconds_bucket{le=\"0.001\"} 1\n"))
    XCTAssertTrue(text.contains("d_seconds_bucket{le=\"0.004\"} 2\n"))
    XCTAssertTrue(text.contains("d_seconds_bucket{le=\"+Inf\"} 3\n"))
    XCTAssertTrue(text.contains("d_seconds_count 3\n"))
    XCTAssertTrue(text.contains("d_seconds_sum 10.0035\n"))
  }

  func testAccessLogLine() {
    var record = AccessLogRecord()
    record.timeMilliseconds = 1_795_687_200_123
    record.requestID = RequestID(incoming: "rid")
    record.clientIP = "203.0.113.7"
    record.method = "GET"
    record.host = "api"
    record.path = "/a\"b"
    record.status = 200
    record.route = "users"
    record.durationMicroseconds = 1234
    record.upstreamDurationMicroseconds = 5
    let out = record.jsonLine
    XCTAssertTrue(out.hasSuffix("}\n"))
    XCTAssertTrue(out.contains("\"time\":\"2026-11-26T10:00:00.123Z\""))
    XCTAssertTrue(out.contains("\"path\":\"/a\\\"b\""))
    XCTAssertTrue(out.contains("\"duration_ms\":1.234,\"upstream_duration_ms\":0.005"))
    XCTAssertTrue(out.contains("\"backend\":null"))
    XCTAssertTrue(out.contains("\"request_id\":\"rid\""))
    record.requestID = RequestID(high: 1, low: 0xab)
    XCTAssertTrue(record.jsonLine.contains("\"request_id\":\"000000000000000100000000000000ab\""))
    record.requestID = RequestID(incoming: "a\"b")
    XCTAssertTrue(record.jsonLine.contains("\"request_id\":\"a\\\"b\""))
  }

  /// Pre-quoted names (`JSONString`) write the same text as quoting per line, escapes included,
  /// and the common methods come from shared literals.
  func testPreQuotedFieldsMatchQuoting() {
    for text in ["", "users", "r\"q", "back\\slash", "tab\there", "\u{1}", "caf\u{e9}", "127.0.0.1:8080"] {
      XCTAssertEqual(JSONString(text).description, JSON.quoted(text), text.debugDescription)
      var record = AccessLogRecord()
      record.route = JSONString(text)
      record.backend = JSONString(text)
      record.endpoint = JSONString(text)
      record.clientIP = JSONString(text)
      let line = record.jsonLine
      let q = JSON.quoted(text)
      XCTAssertTrue(line.contains("\"client_ip\":\(q),"), line)
      XCTAssertTrue(line.contains("\"route\":\(q),\"backend\":\(q),\"endpoint\":\(q),"), line)
    }
    for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE", "M\"X"] {
      XCTAssertEqual(JSONString.method(method).description, JSON.quoted(method))
    }
    var record = AccessLogRecord()
    XCTAssertTrue(record.jsonLine.contains("\"protocol\":\"HTTP/1.1\""))
    record.protocol = .http10
    XCTAssertTrue(record.jsonLine.contains("\"protocol\":\"HTTP/1.0\""))
  }

  /// What a route's header edits touch, worked out at compile time, agrees with asking the
  /// mutation itself; name lengths never rule out a name the edits do name.
  func testHeaderEditIndex() {
    let mutation = HeaderMutation(
      set: [HeaderPair(name: "x-forwarded-for", value: "1"), HeaderPair(name: "x-gateway", value: "s")],
      remove: ["host", "x-correlation-id", String(repeating: "l", count: 80)])
    let index = HeaderEditIndex(mutation, requestIDHeader: "x-correlation-id")
    XCTAssertEqual(index.identity, [.host, .xForwardedFor, .requestID])
    for name in ["host", "x-forwarded-for", "x-gateway", "x-correlation-id", String(repeating: "l", count: 80)] {
      XCTAssertTrue(index.mayName(length: name.utf8.count), name)
    }
    XCTAssertFalse(index.mayName(length: 6))  // "accept"
    XCTAssertFalse(index.mayName(length: 10))  // "user-agent"
    let empty = HeaderEditIndex(HeaderMutation(), requestIDHeader: "x-request-id")
    XCTAssertEqual(empty.identity, [])
    for length in 0..<100 { XCTAssertFalse(empty.mayName(length: length)) }
    let proto = HeaderEditIndex(HeaderMutation(remove: ["x-forwarded-proto", "x-forwarded-host"]), requestIDHeader: "x-request-id")
    XCTAssertEqual(proto.identity, [.xForwardedProto, .xForwardedHost])
  }
}

final class AvailabilityPickerTests: XCTestCase {
  func picker(_ policy: LoadBalancingPolicy, _ n: Int) -> EndpointPicker {
    EndpointPicker(
      policy: policy, endpoints: (0..<n).map { EndpointStats(address: "10.0.0.\($0):80") }, ticket: ManagedAtomic(0))
  }

  func testSkipsUnhealthyAndEjectedEndpoints() {
    let p = picker(.roundRobin, 3)
    var rng = FastRandom(seed: 1)
    p.endpoints[1].unhealthy.store(true, ordering: .relaxed)
    p.endpoints[2].ejectedUntil.store(100, ordering: .relaxed)
    for _ in 0..<6 { XCTAssertEqual(p.pickAvailable(hashKey: nil, now: { 50 }, using: &rng), 0) }
    // The ejection ended: endpoint 2 is back without anyone clearing it.
    var seen = Set<Int>()
    for _ in 0..<6 { seen.insert(p.pickAvailable(hashKey: nil, now: { 100 }, using: &rng)!) }
    XCTAssertEqual(seen, [0, 2])
    p.endpoints[0].unhealthy.store(true, ordering: .relaxed)
    XCTAssertNil(p.pickAvailable(hashKey: nil, now: { 50 }, using: &rng), "none left: the caller answers 503")
  }

  func testRetriesAvoidTheFailedEndpointWithoutShiftingTheRotation() {
    let p = picker(.roundRobin, 3)
    var rng = FastRandom(seed: 1)
    XCTAssertEqual(p.pick(hashKey: nil, using: &rng), 0)
    XCTAssertEqual(p.pickRetry(hashKey: nil, avoid: 0, using: &rng), 1)
    XCTAssertEqual(p.pick(hashKey: nil, using: &rng), 1, "the retry drew no ticket")
    XCTAssertEqual(p.pickAvailable(hashKey: nil, avoid: 2, now: { 0 }, using: &rng), 0)
    let single = picker(.random, 1)
    XCTAssertEqual(single.pickRetry(hashKey: nil, avoid: 0, using: &rng), 0)
    XCTAssertEqual(single.pickAvailable(hashKey: nil, avoid: 0, now: { 0 }, using: &rng), 0, "the only one, even if it failed")
    let random = picker(.random, 4)
    for _ in 0..<50 { XCTAssertNotEqual(random.pickRetry(hashKey: nil, avoid: 2, using: &rng), 2) }
  }
}
