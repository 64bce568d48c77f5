import SluiceCore
import XCTest

@testable import SluiceFeatures

final class AccessPolicyTests: XCTestCase {
  let claims: JSONValue = .object([
    ("role", .string("user")), ("groups", .array([.string("dev"), .string("ops")])), ("level", .int(3)),
    ("admin", .bool(false)),
  ])

  func rule(_ configure: (inout AccessPolicy.Rule) -> Void) -> AccessPolicy.Rule {
    var r = AccessPolicy.Rule()
    configure(&r)
    return r
  }

  func testClaimsEqualityMembershipAndLists() {
    func allows(_ claim: String, _ values: [String]) -> Bool {
      AccessPolicy(name: "p", rules: [rule { $0.claims = [.init(claim: claim, values: values)] }])
        .allows(claims: claims, clientIP: nil, method: "GET", path: "/")
    }
    XCTAssertFalse(allows("role", ["admin"]))
    XCTAssertTrue(allows("role", ["admin", "user"]))
    XCTAssertTrue(allows("groups", ["ops"]))  // a list claim contains the value
    XCTAssertFalse(allows("groups", ["sre"]))
    XCTAssertTrue(allows("level", ["3"]))
    XCTAssertTrue(allows("admin", ["false"]))
    XCTAssertFalse(allows("missing", ["x"]))
    XCTAssertFalse(
      AccessPolicy(name: "p", rules: [rule { $0.claims = [.init(claim: "role", values: ["user"])] }])
        .allows(claims: nil, clientIP: nil, method: "GET", path: "/"))
  }

  func testAllConditionsOfARuleAnyRule() {
    let p = AccessPolicy(
      name: "p",
      rules: [
        rule {
          $0.sourceIPs = [CIDR("10.1.0.0/16")!]
          $0.methods = ["GET"]
        },
        rule { $0.paths = ["/public"] },
      ])
    XCTAssertTrue(p.allows(claims: nil, clientIP: IPAddress.parse("10.1.2.3"), method: "GET", path: "/x"))
    XCTAssertFalse(p.allows(claims: nil, clientIP: IPAddress.parse("10.1.2.3"), method: "POST", path: "/x"))
    XCTAssertFalse(p.allows(claims: nil, clientIP: IPAddress.parse("10.2.2.3"), method: "GET", path: "/x"))
    XCTAssertFalse(p.allows(claims: nil, clientIP: nil, method: "GET", path: "/x"))
    XCTAssertTrue(p.allows(claims: nil, clientIP: nil, method: "POST", path: "/public/a"))
    XCTAssertTrue(p.allows(claims: nil, clientIP: nil, method: "POST", path: "/public"))
    XCTAssertFalse(p.allows(claims: nil, clientIP: nil, method: "POST", path: "/publicity"))
    XCTAssertFalse(AccessPolicy(name: "none", rules: []).allows(claims: nil, clientIP: nil, method: "GET", path: "/"))
  }
}
