// swift-tools-version:6.0
import PackageDescription

// A worker of your own, in Swift: this package depends on Prefork by path and builds `primes-worker`, which the
// supervisor runs with `handler: "program"`.
let package = Package(
    name: "PrimesWorker",
    dependencies: [.package(name: "Prefork", path: "../..")],
    targets: [
        .executableTarget(
            name: "primes-worker",
            dependencies: [.product(name: "PreforkWorker", package: "Prefork")],
            path: "Sources/PrimesWorker")
    ],
    swiftLanguageModes: [.v6]
)
