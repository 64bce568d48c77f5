import NIOCore

/// Head buffers and header-field lists recycled on one event loop.
///
/// Every proxied request used to allocate four objects for its two outgoing heads (a
/// `ByteBuffer` storage object and its bytes, per head) and two field lists for its two parsed
/// heads: half of the 8 allocations per request left after the own parser (bench/RESULTS.md).
/// A returned buffer may still be referenced by a write NIO has not finished; `clear()` then
/// copies on write into new storage, so recycling is always correct and only saves work when
/// the earlier user is gone, which on a loop that wrote and flushed it is the usual case.
///
/// Per loop, not per connection: an idle keep-alive connection holds none of this, and the
/// loop keeps at most `maxKept` of each (of at most `maxBufferCapacity` bytes), so the cache
/// is bounded by the loop's concurrency, not by its connection count.
struct HeadRecycler {
  static let maxKept = 64
  static let maxBufferCapacity = 4096

  private var buffers: [ByteBuffer] = []
  private var fieldLists: [[HeaderField]] = []

  /// An empty buffer with room for `capacity` bytes.
  mutating func buffer(capacity: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
    guard var buffer = buffers.popLast() else { return allocator.buffer(capacity: max(capacity, 512)) }
    buffer.clear(minimumCapacity: capacity)
    return buffer
  }

  mutating func recycle(_ buffer: ByteBuffer) {
    guard buffers.count < Self.maxKept, buffer.capacity <= Self.maxBufferCapacity else { return }
    buffers.append(buffer)
  }

  /// A field list for the parser to fill (see `HeadParser.prepare`).
  mutating func fields() -> [HeaderField] {
    fieldLists.popLast() ?? []
  }

  mutating func recycle(fields: [HeaderField]) {
    guard fieldLists.count < Self.maxKept, fields.capacity > 0, fields.capacity <= 64 else { return }
    fieldLists.append(fields)
  }
}
