import Config
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// The in-place series' own selftest, `tools/testing/selftests/kvm/x86/guest_memfd_conversions_test.c`
/// (read as intel-lab-lkp/linux @c1c5ada72c94, the v13 content), case by case on the simulator. As in
/// the selftest: a SW_PROTECTED VM, a MMAP guest_memfd of `pages` pages bound at 4 GiB (slot 1) and
/// mmap-ed by the host; "guest" accesses go where the simulated MMU takes the page.
/// Not modelled: the vCPU itself (guest loads and stores are `guestRead`/`guestWrite`), and
/// `forked_accesses` runs both "processes" as two host mappings of one simulated address space.
@Suite("SimulatedKernel: guest_memfd_conversions_test.c")
struct SimulatedKernelConversionsSelftestTests {
    static let profiles = [Profiles.linux74InPlace]
    static let gpa: UInt64 = 4 * simGiB

    /// One fixture: `gmem_conversions_do_setup`.
    final class Fixture {
        let kernel: SimulatedKernel
        let vm: Int32
        let gmem: Int32
        let mem: UInt64

        init(_ profile: Capabilities, pages: Int, initShared: Bool) throws {
            kernel = SimulatedKernel(capabilities: profile)
            vm = try kernel.createVM(type: VMType.swProtected.kvmValue)
            let size = UInt64(pages) * simPage
            let flags = KVMConstants.gmemFlagMmap | (initShared ? KVMConstants.gmemFlagInitShared : 0)
            gmem = try kernel.createGuestMemfd(vm: vm, size: size, flags: flags)
            mem = try kernel.mmap(fd: gmem, length: size, offset: 0, shared: true, hugePageSize: nil)
            try kernel.setUserMemoryRegion2(
                vm: vm,
                SimSetup.gmemRegion(
                    slot: 1, gpa: SimulatedKernelConversionsSelftestTests.gpa,
                    size: size, gmem: gmem, userspaceAddr: mem))
        }

        func hostRMW(
            _ page: UInt64, _ expected: UInt8, _ value: UInt8, at base: UInt64? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let address = (base ?? mem) + page * simPage
            #expect(
                try kernel.read(address: address, count: 1) == [expected], "host page \(page)",
                sourceLocation: sourceLocation)
            try kernel.write(address: address, bytes: [value])
        }

        func guestRMW(
            _ page: UInt64, _ expected: UInt8, _ value: UInt8, sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let address = SimulatedKernelConversionsSelftestTests.gpa + page * simPage
            #expect(
                try kernel.guestRead(vm: vm, gpa: address, count: 1) == [expected], "guest page \(page)",
                sourceLocation: sourceLocation)
            try kernel.guestWrite(vm: vm, gpa: address, bytes: [value])
        }

        func testPrivate(
            _ page: UInt64, _ start: UInt8, _ value: UInt8, sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            #expect(
                simFailure { try kernel.write(address: mem + page * simPage, bytes: [value]) } == .sigbus,
                sourceLocation: sourceLocation)
            try guestRMW(page, start, value, sourceLocation: sourceLocation)
            #expect(
                simFailure { try kernel.read(address: mem + page * simPage, count: 1) } == .sigbus,
                sourceLocation: sourceLocation)
        }

        func testShared(
            _ page: UInt64, _ start: UInt8, _ hostValue: UInt8, _ value: UInt8,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            try hostRMW(page, start, hostValue, sourceLocation: sourceLocation)
            try guestRMW(page, hostValue, value, sourceLocation: sourceLocation)
            #expect(try kernel.read(address: mem + page * simPage, count: 1) == [value], sourceLocation: sourceLocation)
        }

        func set(_ page: UInt64, pages: UInt64 = 1, _ state: MemoryState) throws {
            try kernel.setMemoryAttributes2(
                gmem: gmem, offset: page * simPage, size: pages * simPage,
                attributes: state == .private ? KVMConstants.memoryAttributePrivate : 0, flags: 0)
        }

        func convertToPrivate(_ page: UInt64, _ start: UInt8, _ value: UInt8) throws {
            try set(page, .private)
            try testPrivate(page, start, value)
        }

        func convertToShared(_ page: UInt64, _ start: UInt8, _ hostValue: UInt8, _ value: UInt8) throws {
            try set(page, .shared)
            try testShared(page, start, hostValue, value)
        }
    }

    static func c(_ char: Character) -> UInt8 { char.asciiValue ?? 0 }

    @Test("init_private", arguments: profiles)
    func init_private(profile: Capabilities) throws {
        let t = try Fixture(profile, pages: 1, initShared: false)
        try t.testPrivate(0, 0, Self.c("A"))
        try t.convertToShared(0, Self.c("A"), Self.c("B"), Self.c("C"))
        try t.convertToPrivate(0, Self.c("C"), Self.c("E"))
    }

    @Test("init_shared", arguments: profiles)
    func init_shared(profile: Capabilities) throws {
        let t = try Fixture(profile, pages: 1, initShared: true)
        try t.testShared(0, 0, Self.c("A"), Self.c("B"))
        try t.convertToPrivate(0, Self.c("B"), Self.c("C"))
        try t.convertToShared(0, Self.c("C"), Self.c("D"), Self.c("E"))
    }

    @Test("indexing", arguments: profiles)
    func indexing(profile: Capabilities) throws {
        let pages: UInt64 = 4
        func combine(_ x: UInt64, _ n: UInt64) -> UInt8 { UInt8((x << 4) + n) }
        for testPage in 0..<pages {
            let t = try Fixture(profile, pages: Int(pages), initShared: true)
            for i in (0..<pages).reversed() { try t.testShared(i, 0, combine(i, 0), combine(i, 2)) }
            try t.convertToPrivate(testPage, combine(testPage, 2), combine(testPage, 3))
            for i in 0..<pages {
                if i == testPage {
                    try t.testPrivate(i, combine(i, 3), combine(i, 4))
                } else {
                    try t.testShared(i, combine(i, 2), combine(i, 3), combine(i, 4))
                }
            }
            try t.convertToShared(testPage, combine(testPage, 4), combine(testPage, 5), combine(testPage, 6))
            for i in 0..<pages {
                try t.testShared(i, i == testPage ? combine(i, 6) : combine(i, 4), combine(i, 7), combine(i, 8))
            }
        }
    }

    @Test("before_allocation_shared", arguments: profiles)
    func before_allocation_shared(profile: Capabilities) throws {
        let t = try Fixture(profile, pages: 1, initShared: true)
        try t.convertToPrivate(0, 0, Self.c("A"))
    }

    @Test("before_allocation_private", arguments: profiles)
    func before_allocation_private(profile: Capabilities) throws {
        let t = try Fixture(profile, pages: 1, initShared: false)
        try t.convertToShared(0, 0, Self.c("A"), Self.c("B"))
    }

    @Test("unallocated_folios", arguments: profiles)
    func unallocated_folios(profile: Capabilities) throws {
        let pages: UInt64 = 8
        let secondPageToFault: UInt64 = 4
        for testPage in 0..<pages {
            let t = try Fixture(profile, pages: Int(pages), initShared: true)
            try t.hostRMW(testPage, 0, Self.c("A"))
            if testPage != secondPageToFault { try t.hostRMW(secondPageToFault, 0, Self.c("A")) }
            try t.set(0, pages: pages, .private)
            for i in 0..<pages {
                try t.testPrivate(i, i == testPage || i == secondPageToFault ? Self.c("A") : 0, Self.c("B"))
            }
            for i in 0..<pages { try t.convertToShared(i, Self.c("B"), Self.c("C"), Self.c("D")) }
        }
    }

    @Test("truncate", arguments: profiles)
    func truncate(profile: Capabilities) throws {
        let t = try Fixture(profile, pages: 1, initShared: true)
        let punch = KVMConstants.fallocKeepSize | KVMConstants.fallocPunchHole
        try t.hostRMW(0, 0, Self.c("A"))
        try t.kernel.fallocate(fd: t.gmem, mode: punch, offset: 0, length: simPage)
        try t.hostRMW(0, 0, Self.c("A"))
        try t.convertToPrivate(0, Self.c("A"), Self.c("B"))
        try t.kernel.fallocate(fd: t.gmem, mode: punch, offset: 0, length: simPage)
        // Punching a private page resets its contents and keeps it private.
        try t.testPrivate(0, 0, Self.c("A"))
    }

    @Test("forked_accesses", arguments: profiles)
    func forked_accesses(profile: Capabilities) throws {
        let t = try Fixture(profile, pages: 1, initShared: true)
        // The child's view: a second mapping of the same guest_memfd (attributes live in the inode).
        let child = try t.kernel.mmap(fd: t.gmem, length: simPage, offset: 0, shared: true, hugePageSize: nil)
        try t.testShared(0, 0, 0xA, 0xB)
        try t.hostRMW(0, 0xB, 0xC, at: child)
        try t.convertToPrivate(0, 0xC, 0xD)
        #expect(simFailure { try t.kernel.read(address: child, count: 1) } == .sigbus)
        #expect(simFailure { try t.kernel.write(address: child, bytes: [0xdd]) } == .sigbus)
    }

    @Test("elevated_refcount", arguments: profiles)
    func elevated_refcount(profile: Capabilities) throws {
        let pages: UInt64 = 4
        for testPage in 0..<pages {
            let t = try Fixture(profile, pages: Int(pages), initShared: true)
            try t.kernel.pin(gmem: t.gmem, offset: testPage * simPage)
            for i in 0..<pages { try t.testShared(i, 0, Self.c("A"), Self.c("B")) }
            let bulk = simError { try t.set(0, pages: pages, .private) }
            #expect(bulk?.errno == .eagain && bulk?.errorOffset == testPage * simPage)
            for i in 0..<pages {
                if i == testPage {
                    let single = simError { try t.set(i, .private) }
                    #expect(single?.errno == .eagain && single?.errorOffset == testPage * simPage)
                } else {
                    try t.convertToPrivate(i, Self.c("B"), Self.c("C"))
                }
            }
            try t.kernel.unpin(gmem: t.gmem, offset: testPage * simPage)
            try t.set(0, pages: pages, .private)
            for i in 0..<pages { try t.testPrivate(i, i == testPage ? Self.c("B") : Self.c("C"), Self.c("D")) }
        }
    }
}
