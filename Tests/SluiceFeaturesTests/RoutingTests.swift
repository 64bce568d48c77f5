import Dispatch
import SluiceCore
import XCTest

@testable import SluiceFeatures

final class RoutingTests: XCTestCase {
  func req(_ method: String = "GET", _ host: String = "api.example.com", path: String, _ headers: [(String, String)] = [])
    -> RouteRequest<HeaderList>
  {
    RouteRequest(method: method, host: host, path: path, headers: HeaderList(headers))
  }

  /// The flattened scan and the full `RouteMatch` rules choose the same route, over every
  /// combination of a set of routes (paths, prefixes, methods, hosts, headers, a regex) and
  /// requests.
  func testRouterScanAgreesWithFullMatching() throws {
    let paths: [RouteMatch.Path?] = [
      nil, .exact("/"), .exact("/a"), .prefix("/a"), .prefix("/a/"), .prefix("/"), .prefix("/ab"),
      .regex(try PathRegex("^/a/[0-9]+$")),
    ]
    let methods: [Set<String>?] = [nil, ["GET"], ["POST", "PUT"], ["PURGE"], ["GET", "PURGE"]]
    var matches: [RouteMatch] = []
    for path in paths {
      for method in methods {
        matches.append(RouteMatch(path: path, methods: method))
      }
    }
    matches.append(RouteMatch(host: .exact("b.example.com"), path: .prefix("/")))
    matches.append(RouteMatch(path: .prefix("/"), headers: [("x-v", "2")]))
    let requestPaths = ["/", "/a", "/a/", "/a/7", "/ab", "/abc", "/a/x", "/b", "/a//7"]
    let requestMethods = ["GET", "POST", "PUT", "PURGE", "HEAD", "BREW"]
    // Each route alone, and routers over shifting windows of the list (first match wins).
    for start in 0..<matches.count {
      let window = Array(matches[start...].prefix(7))
      let entries = window.enumerated().map { Router<Int>.Entry(name: "r\($0.offset)", match: $0.element, payload: $0.offset) }
      // the plain scan, and the bit-set filter forced on for this small table
      for router in [Router(entries, filterFrom: 100), Router(entries, filterFrom: 1)] {
        for path in requestPaths {
          for method in requestMethods {
            for host in ["api.example.com", "b.example.com"] {
              for headers in [[], [("x-v", "2")]] {
                let request = req(method, host, path: path, headers)
                let expected = window.firstIndex { $0.matches(request) }
                XCTAssertEqual(router.route(request)?.payload, expected, "\(method) \(host) \(path) \(headers) from \(start)")
              }
            }
          }
        }
      }
    }
  }

  /// The bit-set filter over large tables (several 64-route blocks, prefixes and exact paths
  /// longer than the filtered bytes and than 64 bytes, methods): the same route as the rules.
  func testFilteredScanAgreesOnLargeTables() {
    var rng = FastRandom(seed: 11)
    func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }
    func randomPath(_ maxSegments: Int) -> String {
      let segments = Int(rng.next() % UInt64(maxSegments + 1))
      if segments == 0 { return "/" }
      return (0..<segments).map { _ in "/" + pick(["a", "ab", "b", "svc1", "svc12", "x", String(repeating: "l", count: 70)]) }.joined()
    }
    for round in 0..<40 {
      let count = pick([9, 63, 64, 65, 130, 200])
      var matches: [RouteMatch] = []
      for _ in 0..<count {
        let path = randomPath(3)
        let kind = rng.next() % 10
        let methods: Set<String>? = pick([nil, ["GET"], ["POST"], ["GET", "HEAD"], ["PURGE"]])
        switch kind {
        case 0: matches.append(RouteMatch(path: nil, methods: methods))
        case 1, 2, 3: matches.append(RouteMatch(path: .exact(path), methods: methods))
        default: matches.append(RouteMatch(path: .prefix(rng.next() % 4 == 0 ? path + "/" : path), methods: methods))
        }
      }
      let entries = matches.enumerated().map { Router<Int>.Entry(name: "r\($0.offset)", match: $0.element, payload: $0.offset) }
      let router = Router(entries, filterFrom: 1)
      for _ in 0..<300 {
        let request = req(pick(["GET", "POST", "HEAD", "PURGE", "BREW"]), path: randomPath(4))
        let expected = matches.firstIndex { $0.matches(request) }
        XCTAssertEqual(router.route(request)?.payload, expected, "round \(round): \(request.method) \(request.path)")
      }
    }
  }

  func testHostMatching() {
    XCTAssertTrue(RouteMatch.Host.exact("api.example.com").matches("api.example.com"))
    XCTAssertFalse(RouteMatch.Host.exact("api.example.com").matches("www.example.com"))
    let wild = RouteMatch.Host.wildcard(suffix: ".example.com")
    XCTAssertTrue(wild.matches("a.example.com"))
    XCTAssertTrue(wild.matches("a.b.example.com"))
    XCTAssertFalse(wild.matches("example.com"))
    XCTAssertFalse(wild.matches(".example.com"))
    XCTAssertFalse(wild.matches("badexample.com"))
  }

  func testCanonicalHost() {
    XCTAssertEqual(HostName.canonicalHost("API.Example.com:8080"), "api.example.com")
    XCTAssertEqual(HostName.canonicalHost("[::1]:80"), "[::1]")
    XCTAssertEqual(HostName.canonicalHost("example.com."), "example.com")
    XCTAssertEqual(HostName.canonicalHost("plain"), "plain")
    XCTAssertEqual(HostName.canonicalHost("Example.COM.:8080"), "example.com")
    XCTAssertEqual(HostName.canonicalHost(""), "")
    XCTAssertEqual(HostName.canonicalHost("."), "")
    XCTAssertEqual(HostName.canonicalHost("[::1]"), "[::1]")
    XCTAssertEqual(HostName.canonicalHost("A"), "a")
    XCTAssertEqual(HostName.canonicalHost(":80"), "")
    XCTAssertEqual(HostName.canonicalHost("[::1"), "[::1")
    XCTAssertEqual(HostName.canonicalHost("127.0.0.1:18090"), "127.0.0.1")
    XCTAssertEqual(HostName.canonicalHost("a-very-long-host-name.Example.internal:443"), "a-very-long-host-name.example.internal")
  }

  func testPathMatching() {
    let prefix = RouteMatch.Path.prefix("/users")
    XCTAssertTrue(prefix.matches("/users"))
    XCTAssertTrue(prefix.matches("/users/"))
    XCTAssertTrue(prefix.matches("/users/7"))
    XCTAssertFalse(prefix.matches("/usersX"))
    XCTAssertFalse(prefix.matches("/user"))
    XCTAssertTrue(RouteMatch.Path.prefix("/").matches("/anything"))
    XCTAssertTrue(RouteMatch.Path.prefix("/api/").matches("/api/x"))
    XCTAssertFalse(RouteMatch.Path.prefix("/api/").matches("/api"))
    XCTAssertTrue(RouteMatch.Path.exact("/health").matches("/health"))
    XCTAssertFalse(RouteMatch.Path.exact("/health").matches("/health/"))
    let regex = RouteMatch.Path.regex(try! PathRegex("^/users/[0-9]+$"))
    XCTAssertTrue(regex.matches("/users/42"))
    XCTAssertFalse(regex.matches("/users/42/x"))
    XCTAssertTrue(RouteMatch.Path.regex(try! PathRegex("/v[12]/")).matches("/api/v2/x"))
    let shorthand = try! PathRegex("^/orders/\\d+(/items/\\w+)?$")
    XCTAssertTrue(shorthand.matches("/orders/12/items/ab_c"))
    XCTAssertFalse(shorthand.matches("/orders/x"))
    XCTAssertThrowsError(try PathRegex("^/(unclosed"))
    XCTAssertThrowsError(try PathRegex("a{2,1}"))
  }

  func testFirstMatchWinsAndConditionsAreAnded() {
    let router = Router<String>([
      .init(name: "v2", match: RouteMatch(path: .prefix("/users"), headers: [("x-api-version", "2")]), payload: "v2"),
      .init(name: "write", match: RouteMatch(path: .prefix("/users"), methods: ["POST"]), payload: "write"),
      .init(name: "users", match: RouteMatch(host: .exact("api.example.com"), path: .prefix("/users")), payload: "users"),
      .init(name: "any", match: RouteMatch(), payload: "any"),
    ])
    XCTAssertEqual(router.route(req(path: "/users/1", [("X-Api-Version", "2")]))?.payload, "v2")
    XCTAssertEqual(router.route(req("POST", path: "/users/1"))?.payload, "write")
    XCTAssertEqual(router.route(req(path: "/users/1"))?.payload, "users")
    XCTAssertEqual(router.route(req("GET", "other.com", path: "/users/1"))?.payload, "any")
    XCTAssertEqual(router.route(req(path: "/users/1", [("x-api-version", "3")]))?.payload, "users")
    let empty = Router<String>([])
    XCTAssertNil(empty.route(req(path: "/")))
  }

  func testExplain() {
    let router = Router<Int>([
      .init(name: "a", match: RouteMatch(host: .exact("x.com")), payload: 0),
      .init(name: "b", match: RouteMatch(methods: ["POST"]), payload: 1),
      .init(name: "c", match: RouteMatch(path: .exact("/c")), payload: 2),
    ])
    let explained = router.explain(req(path: "/c"))
    XCTAssertEqual(explained[0].mismatch, "host api.example.com is not x.com")
    XCTAssertEqual(explained[1].mismatch, "method GET not in [POST]")
    XCTAssertNil(explained[2].mismatch)
  }

  func testShadowing() {
    let router = Router<Int>([
      .init(name: "all-users", match: RouteMatch(path: .prefix("/users")), payload: 0),
      .init(name: "user-get", match: RouteMatch(path: .prefix("/users/admin"), methods: ["GET"]), payload: 1),
      .init(name: "other", match: RouteMatch(path: .prefix("/orders")), payload: 2),
      .init(name: "regex", match: RouteMatch(path: .regex(try! PathRegex("^/users"))), payload: 3),
      .init(name: "host", match: RouteMatch(host: .exact("a.com"), path: .prefix("/orders/x")), payload: 4),
    ])
    let pairs = router.shadowed()
    XCTAssertEqual(pairs.map(\.shadowed), [1, 4])
    XCTAssertEqual(pairs.map(\.shadowing), [0, 2])
  }

  func testRewrite() {
    let r = PathRewrite(stripPrefix: "/users", addPrefix: "/v1/users")
    XCTAssertEqual(r.apply(to: "/users/7"), "/v1/users/7")
    XCTAssertEqual(r.apply(to: "/users"), "/v1/users")
    XCTAssertEqual(r.apply(to: "/usersX"), "/v1/users/usersX")
    XCTAssertEqual(PathRewrite(stripPrefix: "/api").apply(to: "/api"), "/")
    XCTAssertEqual(PathRewrite(stripPrefix: "/api/").apply(to: "/api/x"), "/x")
    XCTAssertEqual(PathRewrite(addPrefix: "/v2/").apply(to: "/x"), "/v2/x")
    XCTAssertEqual(PathRewrite(addPrefix: "/v2").apply(to: "/"), "/v2")
    XCTAssertEqual(PathRewrite(stripPrefix: "/").apply(to: "/x"), "/x")
  }

  func testRegexFromManyThreads() {
    let regex = try! PathRegex("^/users/[0-9]+$")
    DispatchQueue.concurrentPerform(iterations: 8) { i in
      for n in 0..<2000 {
        XCTAssertTrue(regex.matches("/users/\(n)"))
        XCTAssertFalse(regex.matches("/users/x\(i)"))
      }
    }
  }

  /// The router matches a regex on the path's bytes in place (their range is given to glibc):
  /// bytes past the path, and a missing NUL, change nothing; `$` holds at the path's end.
  func testRegexOnBytesWithoutTerminator() throws {
    let regex = try PathRegex("^/a/[0-9]+$")
    let buffer = Array("/a/12x/a/7".utf8)
    buffer.withUnsafeBufferPointer { all in
      XCTAssertTrue(regex.matches(bytes: UnsafeBufferPointer(rebasing: all[0..<5])))  // "/a/12"
      XCTAssertFalse(regex.matches(bytes: UnsafeBufferPointer(rebasing: all[0..<6])))  // "/a/12x"
      XCTAssertFalse(regex.matches(bytes: UnsafeBufferPointer(rebasing: all[0..<3])))  // "/a/"
      XCTAssertTrue(regex.matches(bytes: UnsafeBufferPointer(rebasing: all[6..<10])))  // "/a/7": `^` at its start
    }
    XCTAssertTrue(try PathRegex("^$").matches(bytes: UnsafeBufferPointer(start: nil, count: 0)))
    XCTAssertTrue(regex.matches("/a/7"))
  }
}
