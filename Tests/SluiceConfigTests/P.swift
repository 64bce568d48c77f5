import XCTest
final class PSluiceConfigTests: XCTestCase { func testX() {} }
