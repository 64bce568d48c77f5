import XCTest
final class PSluiceProxyTests: XCTestCase { func testX() {} }
