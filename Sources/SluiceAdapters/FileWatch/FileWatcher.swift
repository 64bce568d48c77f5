import Dispatch

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Polls files' identities (inode, size, mtime) and calls back once a change has settled
/// (unchanged for one more tick), so an editor's write-then-rename, or a Kubernetes
/// ConfigMap symlink swap, triggers one reload, not several. The config file is watched, and
/// the files it names that are read at load time (TLS certificates and keys).
public final class FileWatcher: @unchecked Sendable {
  // Safe: all mutable state is touched only on `queue`.
  struct Signature: Equatable {
    var inode: UInt64
    var size: Int64
    var mtimeSec: Int
    var mtimeNsec: Int
  }

  var paths: [String]
  let queue: DispatchQueue
  let onChange: @Sendable () -> Void
  var timer: (any DispatchSourceTimer)?
  var last: [Signature?]
  var candidate: [Signature?]?

  public init(
    paths: [String], queue: DispatchQueue, interval: DispatchTimeInterval = .milliseconds(500),
    onChange: @escaping @Sendable () -> Void
  ) {
    self.paths = paths
    self.queue = queue
    self.onChange = onChange
    self.last = []
    queue.sync { self.last = paths.map { Self.signature($0) } }
    let timer = DispatchSource.makeTimerSource(queue: queue)
    timer.schedule(deadline: .now() + interval, repeating: interval)
    timer.setEventHandler { [weak self] in self?.tick() }
    timer.resume()
    self.timer = timer
  }

  /// Records the current state as seen (after a reload triggered elsewhere).
  public func markSeen() { queue.async { self.last = self.paths.map { Self.signature($0) } } }

  /// Watches `paths` from now on (the files the newly loaded config reads).
  public func watch(_ paths: [String]) {
    queue.async {
      guard paths != self.paths else { return }
      self.paths = paths
      self.candidate = nil
      self.last = paths.map { Self.signature($0) }
    }
  }

  func tick() {
    let now = paths.map { Self.signature($0) }
    guard now != last else {
      candidate = nil
      return
    }
    if let candidate, candidate == now {
      self.candidate = nil
      last = now
      // The config file itself missing (mid-swap) is not a change to load.
      if now.first != nil { onChange() }
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
