// swift-tools-version:6.0
import PackageDescription

/// Release builds optimise across module boundaries: the system layer and the frame codec are called from both
/// binaries on every job.
let crossModule: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]

let package = Package(
    name: "Prefork",
    products: [
        .executable(name: "prefork", targets: ["Supervisor"]),
        .executable(name: "prefork-worker", targets: ["Worker"]),
        .library(name: "IPC", targets: ["IPC"]),
        .library(name: "PreforkWorker", targets: ["PreforkWorker"]),
    ],
    targets: [
        .target(name: "CLinux", cSettings: [.define("_GNU_SOURCE")]),
        // libpq through dlopen at run time (never linked): only the PostgreSQL backend loads it.
        .target(name: "CPostgres", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "Postgres", dependencies: ["CPostgres", "System"]),
        .target(name: "System", dependencies: ["CLinux"], swiftSettings: crossModule),
        .target(name: "IPC", swiftSettings: crossModule),
        .executableTarget(
            name: "Supervisor", dependencies: ["IPC", "System", "Postgres"],
            plugins: ["EmbedBuildInfo", "EmbedAssets"]),
        .target(
            name: "PreforkWorker", dependencies: ["IPC", "System"], swiftSettings: crossModule,
            plugins: ["EmbedBuildInfo"]),
        .executableTarget(name: "Worker", dependencies: ["IPC", "System", "PreforkWorker"]),
        // Build time only: VERSION, the git commit and dashboard/ compiled into the binaries (Plugins/).
        .executableTarget(name: "EmbedBuildInfoTool"),
        .plugin(name: "EmbedBuildInfo", capability: .buildTool(), dependencies: ["EmbedBuildInfoTool"]),
        .plugin(name: "EmbedAssets", capability: .buildTool(), dependencies: ["EmbedBuildInfoTool"]),
        .testTarget(name: "EmbedBuildInfoToolTests", dependencies: ["EmbedBuildInfoTool"]),
        .testTarget(name: "IPCTests", dependencies: ["IPC"]),
        .testTarget(name: "PreforkWorkerTests", dependencies: ["PreforkWorker", "IPC", "System"]),
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "PreforkWorker", "IPC", "System"]),
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor", "IPC", "System"]),
        .testTarget(name: "IntegrationTests", dependencies: []),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "System"]),
    ],
    swiftLanguageModes: [.v6]
)
