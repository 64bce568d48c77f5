/// `split:` — choose one of several backends by weight. Built once per config; a pick is one
/// random roll and a short scan (splits have a handful of entries).
public struct WeightedChoice: Sendable, Hashable {
  public let weights: [Int]
  public let total: Int
  let cumulative: [Int]

  /// `weights` must be non-negative with a positive sum (the validator guarantees it).
  public init(weights: [Int]) {
    self.weights = weights
    var sum = 0
    var cumulative: [Int] = []
    for w in weights {
      sum += max(0, w)
      cumulative.append(sum)
    }
    self.total = sum
    self.cumulative = cumulative
  }

  /// The index chosen for a uniformly random `roll`.
  @inline(__always) public func pick(roll: UInt64) -> Int {
    guard total > 0 else { return 0 }
    let point = Int(roll % UInt64(total))
    for (index, bound) in cumulative.enumerated() where point < bound { return index }
    return cumulative.count - 1
  }
}
