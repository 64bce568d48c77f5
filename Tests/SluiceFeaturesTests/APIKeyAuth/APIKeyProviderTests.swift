import XCTest

@testable import SluiceFeatures

final class APIKeyProviderTests: XCTestCase {
  func testIdentify() {
    let p = APIKeyProvider(
      name: "keys", source: .header("x-api-key"), keys: [("a", "key-a-0123456789"), ("b", "key-b-0123456789")], forwardKey: false)
    XCTAssertEqual(p.identify("key-a-0123456789"), "a")
    XCTAssertEqual(p.identify("key-b-0123456789"), "b")
    XCTAssertNil(p.identify("key-a-012345678"))
    XCTAssertNil(p.identify("key-a-0123456789 "))
    XCTAssertNil(p.identify(""))
  }
}
