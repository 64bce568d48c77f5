import Crypto

/// Static API keys. Keys are held as SHA-256 digests and a presented key is compared against
/// every one of them in constant time (no early exit, no length leak), so timing tells an
/// attacker nothing about how close a guess was. The matching key's name is the caller.
public final class APIKeyProvider: Sendable {
  public let name: String
  public let source: TokenSource
  let keys: [(name: String, digest: [UInt8])]
  public let forwardKey: Bool

  public init(name: String, source: TokenSource, keys: [(name: String, key: String)], forwardKey: Bool) {
    self.name = name
    self.source = source
    self.keys = keys.map { ($0.name, Array(SHA256.hash(data: Array($0.key.utf8)))) }
    self.forwardKey = forwardKey
  }

  /// The name of the key that matches `presented`, if one does.
  public func identify(_ presented: String) -> String? {
    let digest = Array(SHA256.hash(data: Array(presented.utf8)))
    var found: String?
    for (name, stored) in keys {
      var diff: UInt8 = 0
      for i in 0..<32 { diff |= stored[i] ^ digest[i] }
      if diff == 0 && found == nil { found = name }
    }
    return found
  }
}
