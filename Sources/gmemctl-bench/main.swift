// gmemctl-bench: benchmark programs that print figures. Usage: gmemctl-bench <benchmark|all> [options]
// Each benchmark lives in its own file and is listed in `benchmarks` below.
#if canImport(Glibc)
import Glibc
#endif

let benchmarks: [Benchmark] = [
    layoutBenchmark,
    agentBenchmark,
    prefaultBenchmark,
    planBenchmark,
    scaleBenchmark,
    soakBenchmark,
]

let arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first, !name.hasPrefix("-") else {
    print("usage: gmemctl-bench <\((benchmarks.map(\.name) + ["all"]).joined(separator: "|"))> [options]")
    for benchmark in benchmarks { print("  \(benchmark.name): \(benchmark.summary)") }
    exit(64)
}
let selected = name == "all" ? benchmarks : benchmarks.filter { $0.name == name }
if selected.isEmpty {
    print("gmemctl-bench: unknown benchmark '\(name)'")
    exit(64)
}
do {
    let options = try BenchOptions(Array(arguments.dropFirst()))
    for benchmark in selected { try benchmark.run(options) }
} catch {
    print("gmemctl-bench: \(error)")
    exit(1)
}
