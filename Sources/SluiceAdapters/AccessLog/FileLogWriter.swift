import Atomics
import Dispatch
import SluiceFeatures

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Writes access log chunks to a file descriptor on its own serial queue, so a slow stdout or
/// disk never stalls an event loop. At most `maxPendingBytes` wait; beyond that chunks are
/// dropped and their lines counted (`sluice_access_log_dropped_lines_total`).
public final class FileLogWriter: AccessLogSink {
  let fd: Int32
  let ownsFD: Bool
  let queue = DispatchQueue(label: "sluice.access-log")
  let pending = ManagedAtomic<Int>(0)
  let dropped = ManagedAtomic<Int>(0)
  let maxPendingBytes: Int

  public init(fd: Int32, ownsFD: Bool, maxPendingBytes: Int = 8 << 20) {
    self.fd = fd
    self.ownsFD = ownsFD
    self.maxPendingBytes = maxPendingBytes
  }

  /// Opens `path` for appending (created 0640).
  public static func open(path: String) -> FileLogWriter? {
    let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
    guard fd >= 0 else { return nil }
    return FileLogWriter(fd: fd, ownsFD: true)
  }

  deinit {
    if ownsFD { close(fd) }
  }

  public var droppedLines: Int { dropped.load(ordering: .relaxed) }

  public func submit(_ chunk: [UInt8], lines: Int) -> Bool {
    let size = chunk.count
    if pending.loadThenWrappingIncrement(by: size, ordering: .relaxed) + size > maxPendingBytes {
      pending.wrappingDecrement(by: size, ordering: .relaxed)
      dropped.wrappingIncrement(by: lines, ordering: .relaxed)
      return false
    }
    queue.async { [fd, pending] in
      chunk.withUnsafeBufferPointer { bytes in
        var offset = 0
        while offset < bytes.count {
          let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
          if n < 0 {
            if errno == EINTR { continue }
            break
          }
          offset += n
        }
      }
      pending.wrappingDecrement(by: size, ordering: .relaxed)
    }
    return true
  }

  /// Waits until everything submitted so far is written (used at shutdown).
  public func sync() { queue.sync {} }
}
