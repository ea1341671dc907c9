#if canImport(Glibc)
import Glibc
#endif

/// The C reference for the prefault benchmark: the syscalls `gmemctl apply --host kvm --ephemeral --prefault`
/// issues for a one-block in-place shared guest, and nothing else. Kept as a string and compiled at run time
/// with `cc -O2` (a C file cannot live in a Swift target). It defines the 6.18 uapi it needs itself, since the
/// system <linux/kvm.h> is older.
///
/// `prefault_reference SIZE_BYTES REPETITIONS` prints, per repetition, one line:
/// `total_ns setup_ns fallocate_ns teardown_ns`, each measured with CLOCK_MONOTONIC inside the process.
enum PrefaultReference {
    static let source =
        CReferencePrelude.kvm + #"""

            int main(int argc, char **argv) {
                uint64_t size;
                int repetitions;
                int kvm = start(argc, argv, "prefault_reference", &size, &repetitions);
                for (int rep = 0; rep < repetitions; rep++) {
                    uint64_t t0 = now_ns();
                    struct guest g = build_guest(kvm, size);
                    uint64_t t1 = now_ns();
                    if (fallocate(g.gmem, FALLOC_FL_KEEP_SIZE, 0, (off_t)size) < 0) die("fallocate");
                    uint64_t t2 = now_ns();
                    destroy_guest(&g, size);
                    uint64_t t3 = now_ns();
                    printf("%llu %llu %llu %llu\n", (unsigned long long)(t3 - t0), (unsigned long long)(t1 - t0),
                           (unsigned long long)(t2 - t1), (unsigned long long)(t3 - t2));
                    fflush(stdout);
                }
                close(kvm);
                return 0;
            }
            """#

    /// One repetition of the reference, in seconds.
    struct Figures {
        var total: Double
        var setup: Double
        var fallocate: Double
        var teardown: Double
    }

    /// Writes the source to a temporary directory and compiles it with `cc -O2`; returns the binary's path.
    static func build() throws -> String {
        var template = Array("/tmp/gmemctl-prefault-XXXXXX".utf8CString)
        guard let directory = mkdtemp(&template) else { throw BenchError(description: "mkdtemp failed") }
        let sourcePath = String(cString: directory) + "/prefault_reference.c"
        let binary = String(cString: directory) + "/prefault_reference"
        guard let file = fopen(sourcePath, "w") else { throw BenchError(description: "cannot write \(sourcePath)") }
        fputs(source, file)
        fclose(file)
        let compile = try runChild(["cc", "-O2", "-o", binary, sourcePath])
        guard compile.status == 0 else {
            throw BenchError(description: "cc -O2 failed on \(sourcePath): \(compile.output)")
        }
        return binary
    }

    /// Runs `repetitions` back-to-back repetitions in one process at `size` bytes.
    static func run(binary: String, size: UInt64, repetitions: Int) throws -> [Figures] {
        let result = try runChild([binary, String(size), String(repetitions)])
        guard result.status == 0 else {
            throw BenchError(description: "prefault_reference exited with \(result.status): \(result.output)")
        }
        return try result.output.split(separator: "\n").map { line in
            let values = line.split(separator: " ").compactMap { Double($0) }.map { $0 * 1e-9 }
            guard values.count == 4 else {
                throw BenchError(description: "cannot parse prefault_reference output: \(line)")
            }
            return Figures(total: values[0], setup: values[1], fallocate: values[2], teardown: values[3])
        }
    }
}
