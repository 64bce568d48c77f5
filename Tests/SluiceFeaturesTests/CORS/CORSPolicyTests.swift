import XCTest

@testable import SluiceFeatures

final class CORSPolicyTests: XCTestCase {
  func policy() -> CORSPolicy {
    var p = CORSPolicy()
    p.allowOrigins = [.exact("https://app.example.com"), .wildcard(scheme: "https", suffix: ".example.org")]
    p.allowMethods = ["GET", "PUT"]
    p.allowHeaders = ["content-type"]
    p.exposeHeaders = ["x-total"]
    p.allowCredentials = true
    p.maxAgeSeconds = 600
    return p
  }

  func value(_ headers: [HeaderPair], _ name: String) -> String? { headers.first { $0.name == name }?.value }

  func testOrigins() {
    let p = policy()
    XCTAssertTrue(p.allows(origin: "https://app.example.com"))
    XCTAssertTrue(p.allows(origin: "HTTPS://APP.EXAMPLE.COM"))
    XCTAssertTrue(p.allows(origin: "https://a.b.example.org"))
    for bad in [
      "https://example.org", "http://a.example.org", "https://a.example.org.evil", "https://evil.com/.example.org",
      "https://a_b.example.org", "null", "https://app.example.com.evil.com",
    ] {
      XCTAssertFalse(p.allows(origin: bad), bad)
    }
    var any = CORSPolicy()
    any.allowOrigins = [.any]
    XCTAssertEqual(value(any.responseHeaders(origin: "https://x"), "access-control-allow-origin"), "*")
  }

  func testPreflight() {
    let p = policy()
    XCTAssertTrue(CORSPolicy.isPreflight(method: "OPTIONS", origin: "o", requestMethod: "PUT"))
    XCTAssertFalse(CORSPolicy.isPreflight(method: "OPTIONS", origin: "o", requestMethod: nil))
    let ok = p.preflightHeaders(origin: "https://app.example.com", requestMethod: "PUT", requestHeaders: "Content-Type")
    XCTAssertEqual(value(ok, "access-control-allow-origin"), "https://app.example.com")
    XCTAssertEqual(value(ok, "access-control-allow-credentials"), "true")
    XCTAssertEqual(value(ok, "access-control-max-age"), "600")
    XCTAssertNil(
      value(
        p.preflightHeaders(origin: "https://app.example.com", requestMethod: "DELETE", requestHeaders: nil), "access-control-allow-origin"))
    XCTAssertNil(
      value(
        p.preflightHeaders(origin: "https://app.example.com", requestMethod: "PUT", requestHeaders: "x-evil"), "access-control-allow-origin"
      ))
    XCTAssertNil(
      value(p.preflightHeaders(origin: "https://evil.com", requestMethod: "GET", requestHeaders: nil), "access-control-allow-origin"))
    let actual = p.responseHeaders(origin: "https://app.example.com")
    XCTAssertEqual(value(actual, "vary"), "Origin")
    XCTAssertEqual(value(actual, "access-control-expose-headers"), "x-total")
    XCTAssertEqual(p.responseHeaders(origin: "https://evil.com").map(\.name), ["vary"])
  }
}
