import Foundation
import Glibc
import SluiceFeatures
import XCTest

@testable import SluiceAdapters

/// The access log writer must never block its caller: with a reader that never reads, chunks
/// beyond the pending limit are dropped and counted.
final class FileLogWriterTests: XCTestCase {
  func testStuckOutputDropsAndCountsInsteadOfBlocking() throws {
    var fds: [Int32] = [0, 0]
    XCTAssertEqual(pipe(&fds), 0)
    defer { if fds[1] >= 0 { close(fds[1]) } }
    let writer = FileLogWriter(fd: fds[1], ownsFD: false, maxPendingBytes: 256 * 1024)
    let line = String(repeating: "x", count: 999) + "\n"
    let chunk = Array(String(repeating: line, count: 64).utf8)  // 64 KB, 64 lines
    let start = DispatchTime.now().uptimeNanoseconds
    var accepted = 0
    for _ in 0..<40 where writer.submit(chunk, lines: 64) { accepted += 1 }
    let elapsed = DispatchTime.now().uptimeNanoseconds - start
    XCTAssertLessThan(elapsed, 500_000_000, "submit must not block on a full pipe")
    XCTAssertLessThan(accepted, 40)
    XCTAssertEqual(writer.droppedLines, (40 - accepted) * 64)
    // drain the pipe so the writer's queue can finish
    let readFD = fds[0]
    let reader = Thread {
      var buffer = [UInt8](repeating: 0, count: 65536)
      while read(readFD, &buffer, buffer.count) > 0 {}
    }
    reader.start()
    writer.sync()
    close(fds[1])
    fds[1] = -1
  }

  func testWritesEverythingWhenTheOutputKeepsUp() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-log-\(getpid()).log").path
    defer { unlink(path) }
    let writer = try XCTUnwrap(FileLogWriter.open(path: path))
    for i in 0..<100 { XCTAssertTrue(writer.submit(Array("{\"n\":\(i)}\n".utf8), lines: 1)) }
    writer.sync()
    let text = try String(contentsOfFile: path, encoding: .utf8)
    XCTAssertEqual(text.split(separator: "\n").count, 100)
    XCTAssertEqual(writer.droppedLines, 0)
  }
}
