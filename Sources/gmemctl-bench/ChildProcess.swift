#if canImport(Glibc)
import Glibc
#endif

/// A finished child process: exit status, standard output, and its own peak resident set.
struct ChildResult {
    var status: Int32
    var output: String
    var peakResidentMiB: Double
    /// User + system CPU time of the child.
    var cpuSeconds: Double
}

/// Runs `argv` (path first) and waits for it with wait4, so the resource usage is this child's alone.
func runChild(_ argv: [String]) throws -> ChildResult {
    let outputPath = "/tmp/gmemctl-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
    defer { unlink(outputPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for pointer in cArguments { free(pointer) } }
    var pid: pid_t = 0
    let spawned = posix_spawnp(&pid, argv[0], &actions, nil, &cArguments, environ)
    guard spawned == 0 else {
        throw BenchError(description: "cannot run \(argv[0]): \(String(cString: strerror(spawned)))")
    }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 {
        guard errno == EINTR else { throw BenchError(description: "wait4 failed: \(String(cString: strerror(errno)))") }
    }
    let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return ChildResult(
        status: exitStatus, output: try readFile(outputPath), peakResidentMiB: Double(usage.ru_maxrss) / 1024,
        cpuSeconds: cpuSeconds(usage))
}

func readFile(_ path: String) throws -> String {
    guard let file = fopen(path, "r") else { throw BenchError(description: "cannot read \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        bytes.append(contentsOf: buffer[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}
