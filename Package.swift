// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
  name: "sluice",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "sluice", targets: ["sluice"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    // JWT signatures (HMAC, ECDSA, Ed25519; RSA PKCS#1/PSS via _CryptoExtras), verified on the loop.
    .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    // TLS listeners (termination, SNI certificates), upstream TLS, https JWKS fetches and webhooks.
    .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
  ],
  targets: [
    .target(name: "SluiceCore", swiftSettings: strict),
    .target(
      name: "SluiceFeatures",
      dependencies: [
        "SluiceCore", .product(name: "Atomics", package: "swift-atomics"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "_CryptoExtras", package: "swift-crypto"),
      ],
      swiftSettings: strict),
    .target(
      name: "SluiceConfig",
      dependencies: [
        "SluiceCore", "SluiceFeatures", .product(name: "Atomics", package: "swift-atomics"),
        // Certificates and keys load at validate time, so a bad one is an error at its line.
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ],
      swiftSettings: strict),
    .target(
      name: "SluiceProxy",
      dependencies: [
        "SluiceCore", "SluiceFeatures", "SluiceConfig",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "NIOTLS", package: "swift-nio"),
        .product(name: "Atomics", package: "swift-atomics"),
      ],
      swiftSettings: strict),
    .target(
      name: "SluiceAdapters",
      dependencies: [
        "SluiceCore", "SluiceFeatures", "SluiceConfig", "SluiceProxy",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Atomics", package: "swift-atomics"),
      ],
      swiftSettings: strict),
    .target(
      name: "SluiceApp",
      dependencies: [
        "SluiceCore", "SluiceFeatures", "SluiceConfig", "SluiceProxy", "SluiceAdapters",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Atomics", package: "swift-atomics"),
      ],
      swiftSettings: strict),
    .executableTarget(
      name: "sluice",
      dependencies: [
        "SluiceCore", "SluiceConfig", "SluiceFeatures", "SluiceApp",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: strict),
    // Micro benchmark: JWT verifications per second per core (bench/RESULTS.md).
    .executableTarget(
      name: "JWTVerifyBench",
      dependencies: [
        "SluiceCore", "SluiceFeatures", .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "_CryptoExtras", package: "swift-crypto"),
      ],
      path: "Benchmarks/JWTVerify"),
    // Fuzz entry points (Fuzz/run.sh builds them with libFuzzer; a plain build replays files).
    .executableTarget(name: "FuzzConfig", dependencies: ["SluiceConfig", "SluiceCore"], path: "Fuzz/FuzzConfig"),
    .executableTarget(
      name: "FuzzPath", dependencies: ["SluiceCore", "SluiceFeatures"], path: "Fuzz/FuzzPath"),
    .executableTarget(
      name: "FuzzJWT",
      dependencies: ["SluiceCore", "SluiceFeatures", .product(name: "Crypto", package: "swift-crypto")],
      path: "Fuzz/FuzzJWT"),
    .executableTarget(name: "FuzzRESP", dependencies: ["SluiceCore"], path: "Fuzz/FuzzRESP"),
    .executableTarget(
      name: "FuzzClientHello", dependencies: ["SluiceCore", "SluiceFeatures"], path: "Fuzz/FuzzClientHello"),
    .executableTarget(
      name: "FuzzHTTP1",
      dependencies: ["SluiceCore", "SluiceProxy", .product(name: "NIOCore", package: "swift-nio")],
      path: "Fuzz/FuzzHTTP1"),
    .testTarget(name: "SluiceCoreTests", dependencies: ["SluiceCore"]),
    .testTarget(
      name: "SluiceFeaturesTests",
      dependencies: [
        "SluiceFeatures", "SluiceCore", .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "_CryptoExtras", package: "swift-crypto"),
      ],
      // Captured ClientHellos, read by path in ClientHelloTests.
      exclude: ["TLS/hellos"]),
    .testTarget(name: "SluiceAdaptersTests", dependencies: ["SluiceAdapters", "SluiceFeatures"]),
    .testTarget(
      name: "SluiceConfigTests", dependencies: ["SluiceConfig", "SluiceCore", "SluiceFeatures"],
      resources: []),
    .testTarget(
      name: "SluiceProxyTests",
      dependencies: [
        "SluiceProxy", "SluiceConfig", "SluiceCore", "SluiceFeatures",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]),
  ],
  swiftLanguageModes: [.v6]
)
