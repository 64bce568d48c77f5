/// A growable byte buffer over raw memory that the access log is written into, one per event
/// loop, reused for the life of the process.
///
/// `[UInt8].append(contentsOf:)` is a generic call with a uniqueness check and a capacity
/// check through the array's storage object per append; a log line makes ~45 of them. Here an
/// append is a compare and a copy, inlined at the call site (features config: the log line's
/// share of CPU, bench/RESULTS.md). Non-copyable so that the memory has exactly one owner.
public struct ByteWriter: ~Copyable {
  @usableFromInline var base: UnsafeMutablePointer<UInt8>
  @usableFromInline var capacity: Int
  @usableFromInline var used: Int

  public init(capacity: Int = 256) {
    self.capacity = max(capacity, 16)
    self.base = .allocate(capacity: self.capacity)
    self.used = 0
  }

  deinit { base.deallocate() }

  /// Bytes written so far.
  @inlinable public var count: Int { used }

  @inlinable public mutating func removeAll() { used = 0 }

  @inlinable @inline(__always) public mutating func append(_ byte: UInt8) {
    if used == capacity { grow(1) }
    base[used] = byte
    used += 1
  }

  @inlinable @inline(__always) public mutating func append(_ bytes: UnsafeRawBufferPointer) {
    let n = bytes.count
    guard n > 0, let source = bytes.baseAddress else { return }
    if used + n > capacity { grow(n) }
    let target = UnsafeMutableRawPointer(base + used)
    // Most appends are a few bytes (a JSON key, a header name): two overlapping word copies
    // instead of a call into `memcpy` (the features config's largest single cost after the
    // access log's own formatting, bench/RESULTS.md).
    if n <= 32 {
      if n > 16 {
        // 17-32 bytes (the longer JSON keys, a request id): the first and last 16, overlapping.
        target.storeBytes(of: source.loadUnaligned(as: UInt64.self), as: UInt64.self)
        (target + 8).storeBytes(of: (source + 8).loadUnaligned(as: UInt64.self), as: UInt64.self)
        (target + (n - 16)).storeBytes(of: (source + (n - 16)).loadUnaligned(as: UInt64.self), as: UInt64.self)
        (target + (n - 8)).storeBytes(of: (source + (n - 8)).loadUnaligned(as: UInt64.self), as: UInt64.self)
      } else if n >= 8 {
        target.storeBytes(of: source.loadUnaligned(as: UInt64.self), as: UInt64.self)
        (target + (n - 8)).storeBytes(of: (source + (n - 8)).loadUnaligned(as: UInt64.self), as: UInt64.self)
      } else if n >= 4 {
        target.storeBytes(of: source.loadUnaligned(as: UInt32.self), as: UInt32.self)
        (target + (n - 4)).storeBytes(of: (source + (n - 4)).loadUnaligned(as: UInt32.self), as: UInt32.self)
      } else if n >= 2 {
        // (a byte loop here was turned back into a `memcpy` call by the optimizer)
        target.storeBytes(of: source.loadUnaligned(as: UInt16.self), as: UInt16.self)
        (target + (n - 2)).storeBytes(of: (source + (n - 2)).loadUnaligned(as: UInt16.self), as: UInt16.self)
      } else {
        target.storeBytes(of: source.load(as: UInt8.self), as: UInt8.self)
      }
    } else {
      target.copyMemory(from: source, byteCount: n)
    }
    used += n
  }

  @inlinable @inline(__always) public mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
    append(UnsafeRawBufferPointer(bytes))
  }

  @inlinable @inline(__always) public mutating func append(_ text: StaticString) {
    append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
  }

  @usableFromInline mutating func grow(_ extra: Int) {
    var newCapacity = capacity * 2
    while newCapacity < used + extra { newCapacity *= 2 }
    let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
    newBase.update(from: base, count: used)
    base.deallocate()
    base = newBase
    capacity = newCapacity
  }

  /// Calls `body` with the bytes written so far.
  public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try body(UnsafeRawBufferPointer(start: base, count: used))
  }

  /// A copy of the bytes written so far.
  public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: used)) }

  /// The bytes written so far as text.
  public var string: String { String(decoding: UnsafeBufferPointer(start: base, count: used), as: UTF8.self) }
}
