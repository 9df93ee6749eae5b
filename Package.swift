// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Prefork",
    products: [
        .executable(name: "prefork", targets: ["Supervisor"]),
        .executable(name: "prefork-worker", targets: ["Worker"]),
        .library(name: "IPC", targets: ["IPC"]),
    ],
    targets: [
        .target(
            name: "CLinux",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(name: "IPC", swiftSettings: [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]),
        .executableTarget(
            name: "Supervisor",
            dependencies: ["IPC", "CLinux"]
        ),
        .executableTarget(
            name: "Worker",
            dependencies: ["IPC", "CLinux"]
        ),
        .testTarget(name: "IPCTests", dependencies: ["IPC"]),
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor", "IPC"]),
        .testTarget(name: "IntegrationTests", dependencies: []),
    ],
    swiftLanguageModes: [.v6]
)
