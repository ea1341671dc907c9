#if canImport(Glibc)
import Glibc
#endif

/// The C reference for the /dev/kvm rows of the scale benchmark: the syscalls `gmemctl apply --host kvm
/// --ephemeral` issues for an empty one-block in-place shared guest (create VM, guest_memfd, mmap, memslot),
/// the host-resident reading `get` takes (PAGEMAP_SCAN), and the teardown. Kept as a string and compiled at
/// run time with `cc -O2`, as the prefault reference is; it defines the uapi it needs itself.
///
/// `scale_reference SIZE_BYTES REPETITIONS` prints one line per repetition: the wall time in ns.
enum ScaleReference {
    static let source =
        CReferencePrelude.kvm + #"""
            struct page_region { uint64_t start, end, categories; };
            struct pm_scan_arg {
                uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
                uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
            };
            #define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
            #define PAGE_IS_PRESENT (1ull << 3)

            static uint64_t present_bytes(uint64_t start, uint64_t end) {
                struct page_region regions[256];
                uint64_t present = 0;
                int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
                if (fd < 0) die("open /proc/self/pagemap");
                while (start < end) {
                    struct pm_scan_arg arg = { .size = sizeof(arg), .start = start, .end = end,
                                               .vec = (uint64_t)(uintptr_t)regions, .vec_len = 256,
                                               .category_mask = PAGE_IS_PRESENT, .return_mask = PAGE_IS_PRESENT };
                    int found = ioctl(fd, PAGEMAP_SCAN, &arg);
                    if (found < 0) die("PAGEMAP_SCAN");
                    for (int i = 0; i < found; i++) present += regions[i].end - regions[i].start;
                    if (arg.walk_end <= start) break;
                    start = arg.walk_end;
                }
                close(fd);
                return present;
            }

            int main(int argc, char **argv) {
                uint64_t size;
                int repetitions;
                int kvm = start(argc, argv, "scale_reference", &size, &repetitions);
                for (int rep = 0; rep < repetitions; rep++) {
                    uint64_t t0 = now_ns();
                    struct guest g = build_guest(kvm, size);
                    if (present_bytes((uint64_t)(uintptr_t)g.host, (uint64_t)(uintptr_t)g.host + size) != 0) die("resident pages in an empty guest");
                    destroy_guest(&g, size);
                    printf("%llu\n", (unsigned long long)(now_ns() - t0));
                    fflush(stdout);
                }
                close(kvm);
                return 0;
            }
            """#

    /// Writes the source to a temporary directory and compiles it with `cc -O2`; returns the binary's path.
    static func build() throws -> String {
        var template = Array("/tmp/gmemctl-scale-XXXXXX".utf8CString)
        guard let directory = mkdtemp(&template) else { throw BenchError(description: "mkdtemp failed") }
        let sourcePath = String(cString: directory) + "/scale_reference.c"
        let binary = String(cString: directory) + "/scale_reference"
        guard let file = fopen(sourcePath, "w") else { throw BenchError(description: "cannot write \(sourcePath)") }
        fputs(source, file)
        fclose(file)
        let compile = try runChild(["cc", "-O2", "-o", binary, sourcePath])
        guard compile.status == 0 else {
            throw BenchError(description: "cc -O2 failed on \(sourcePath): \(compile.output)")
        }
        return binary
    }
}

extension ScaleReference {
    /// The best of `repetitions` back-to-back repetitions at `size` bytes, with the child's peak memory.
    static func runBest(binary: String, size: UInt64, repetitions: Int) throws -> (seconds: Double, peakMiB: Double) {
        let result = try runChild([binary, String(size), String(max(1, repetitions))])
        guard result.status == 0 else {
            throw BenchError(description: "scale_reference exited with \(result.status): \(result.output)")
        }
        let times = result.output.split(separator: "\n").compactMap { Double($0) }.map { $0 * 1e-9 }
        guard let best = times.min() else {
            throw BenchError(description: "cannot parse scale_reference output: \(result.output)")
        }
        return (best, result.peakResidentMiB)
    }
}
