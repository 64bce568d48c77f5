import XCTest
final class PSluiceFeaturesTests: XCTestCase { func testX() {} }
