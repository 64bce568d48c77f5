import Dispatch

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Polls a file's identity (inode, size, mtime) and calls back once a change has settled
/// (unchanged for one more tick), so an editor's write-then-rename, or a Kubernetes
/// ConfigMap symlink swap, triggers one reload, not several.
public final class FileWatcher: @unchecked Sendable {
  // Safe: all mutable state is touched only on `queue`.
  struct Signature: Equatable {
    var inode: UInt64
    var size: Int64
    var mtimeSec: Int
    var mtimeNsec: Int
  }

  let path: String
  let queue: DispatchQueue
  let onChange: @Sendable () -> Void
  var timer: (any DispatchSourceTimer)?
  var last: Signature?
  var candidate: Signature?

  public init(
    path: String, queue: DispatchQueue, interval: DispatchTimeInterval = .milliseconds(500), onChange: @escaping @Sendable () -> Void
  ) {
    self.path = path
    self.queue = queue
    self.onChange = onChange
    queue.sync { self.last = Self.signature(path) }
    let timer = DispatchSource.makeTimerSource(queue: queue)
    timer.schedule(deadline: .now() + interval, repeating: interval)
    timer.setEventHandler { [weak self] in self?.tick() }
    timer.resume()
    self.timer = timer
  }

  /// Records the current state as seen (after a reload triggered elsewhere).
  public func markSeen() { queue.async { self.last = Self.signature(self.path) } }

  func tick() {
    let now = Self.signature(path)
    guard now != last else {
      candidate = nil
      return
    }
    if let candidate, candidate == now {
      self.candidate = nil
      last = now
      if now != nil { onChange() }
    } else {
      candidate = now
    }
  }

  static func signature(_ path: String) -> Signature? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return Signature(inode: UInt64(st.st_ino), size: Int64(st.st_size), mtimeSec: st.st_mtim.tv_sec, mtimeNsec: st.st_mtim.tv_nsec)
  }

  public func stop() { timer?.cancel() }
}
