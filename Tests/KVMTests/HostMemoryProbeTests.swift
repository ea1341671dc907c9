import CKVM
import Foundation
import GmemCore
import GmemKVM
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The fault-safe host memory probe on plain memfd and anonymous memory (no guest_memfd needed): a page past a
/// memfd's EOF raises SIGBUS on touch, exactly as a private guest_memfd page does, and the probe must report it
/// without installing any signal handler.
@Suite struct HostMemoryProbeTests {
    static let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// A memfd one page long mapped over `pages` pages: the pages after the first are past EOF.
    final class MemfdMapping {
        let fd: Int32
        let base: UInt64
        let length: Int

        init(pages: Int) throws {
            fd = ckvm_memfd_create("gmemctl-probe-test", 1 /* MFD_CLOEXEC */, 0)
            try #require(fd >= 0, "memfd_create: \(String(cString: strerror(-fd)))")
            try #require(ftruncate(fd, off_t(HostMemoryProbeTests.page)) == 0)
            length = pages * HostMemoryProbeTests.page
            let address = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            try #require(address != MAP_FAILED, "mmap: \(String(cString: strerror(errno)))")
            base = UInt64(UInt(bitPattern: address))
        }

        deinit {
            munmap(UnsafeMutableRawPointer(bitPattern: UInt(base)), length)
            close(fd)
        }
    }

    /// The installed action for a signal, as bytes (handler union and flags) to compare before and after: SIG_DFL,
    /// or the Swift runtime's backtracer where it is on, but never a handler of the probe.
    static func action(_ signal: Int32) -> [UInt8] {
        var action = sigaction()
        sigaction(signal, nil, &action)
        return withUnsafeBytes(of: action.__sigaction_handler) { Array($0) }
            + withUnsafeBytes(of: action.sa_flags) { Array($0) }
    }

    static func read(_ address: UInt64, _ count: Int) -> (result: Int32, bytes: [UInt8]) {
        var bytes = [UInt8](repeating: 0, count: count)
        let result = bytes.withUnsafeMutableBytes { ckvm_probe_read(address, $0.baseAddress, $0.count) }
        return (result, bytes)
    }

    static func write(_ address: UInt64, _ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBytes { ckvm_probe_write(address, $0.baseAddress, $0.count) }
    }

    static let sigbus = Int32(CKVM_PROBE_SIGBUS.rawValue)
    static let sigsegv = Int32(CKVM_PROBE_SIGSEGV.rawValue)

    @Test func readingPastAMemfdsEOFReportsSIGBUSWithoutASignalHandler() throws {
        let before = (bus: Self.action(SIGBUS), segv: Self.action(SIGSEGV))
        let mapping = try MemfdMapping(pages: 3)
        let page = UInt64(Self.page)
        #expect(Self.write(mapping.base + 8, [1, 2, 3]) == 0)
        let inside = Self.read(mapping.base + 8, 3)
        #expect(inside.result == 0 && inside.bytes == [1, 2, 3])

        // From inside the file across its EOF: SIGBUS, at the first page past EOF; nothing is copied.
        let across = Self.read(mapping.base + 8, Self.page)
        #expect(across.result == Self.sigbus)
        #expect(ckvm_probe_last_fault_address() == mapping.base + page)
        #expect(across.bytes.allSatisfy { $0 == 0 }, "a failed probe copies nothing")
        // Starting mid-page past EOF: the fault address is the first byte asked for.
        #expect(Self.read(mapping.base + 2 * page + 100, 16).result == Self.sigbus)
        #expect(ckvm_probe_last_fault_address() == mapping.base + 2 * page + 100)
        #expect(Self.write(mapping.base + page, [0xFF]) == Self.sigbus)
        // The file did not grow: MADV_POPULATE_WRITE does not extend it.
        var status = stat()
        #expect(fstat(mapping.fd, &status) == 0 && status.st_size == off_t(Self.page))

        // Through KVMKernel (what the engine uses): the SIGBUS failure naming the faulting page.
        if KVMAvailability.available {
            let kernel = try KVMKernel()
            #expect(throws: KernelError.self) { _ = try kernel.read(address: mapping.base, count: Self.page + 1) }
            do {
                _ = try kernel.read(address: mapping.base + page, count: 1)
            } catch {
                #expect(error.failure == .sigbus)
                #expect(error.call == "read")
            }
        }

        #expect(Self.action(SIGBUS) == before.bus, "the probe left a SIGBUS handler installed")
        #expect(Self.action(SIGSEGV) == before.segv, "the probe left a SIGSEGV handler installed")
    }

    @Test func unmappedAndInaccessibleMemoryIsTheSIGSEGVCase() throws {
        let length = 3 * Self.page
        let raw = try #require(mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        try #require(raw != MAP_FAILED)
        defer { munmap(raw, length) }
        let base = UInt64(UInt(bitPattern: raw))
        let page = UInt64(Self.page)
        #expect(Self.write(base, [7]) == 0 && Self.read(base, 1).bytes == [7])

        munmap(raw + 2 * Self.page, Self.page)
        #expect(Self.read(base + page, Self.page + 1).result == Self.sigsegv, "the third page is unmapped")
        #expect(ckvm_probe_last_fault_address() == base + 2 * page)
        mprotect(raw + Self.page, Self.page, PROT_NONE)
        #expect(Self.read(base + page + 1, 1).result == Self.sigsegv, "PROT_NONE")
        #expect(ckvm_probe_last_fault_address() == base + page + 1)
        mprotect(raw, Self.page, PROT_READ)
        #expect(Self.write(base, [1]) == Self.sigsegv, "a write to a read-only page")
        #expect(Self.read(base, 1).bytes == [7], "reading it still works")
        #expect(Self.read(UInt64.max - 4, 8).result == Self.sigsegv, "a range wrapping past 2^64")
    }
}
