import XCTest
final class PSluiceCoreTests: XCTestCase { func testX() {} }
