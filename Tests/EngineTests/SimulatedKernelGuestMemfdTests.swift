import Config
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// guest_memfd file operations (docs/kernels.md, "Generations", and the 6.18 selftest it cites).
@Suite("SimulatedKernel guest_memfd file operations")
struct SimulatedKernelGuestMemfdTests {
    let keep = KVMConstants.fallocKeepSize
    let punch = KVMConstants.fallocKeepSize | KVMConstants.fallocPunchHole

    @Test(
        "fallocate without KEEP_SIZE or with other mode bits is EOPNOTSUPP",
        arguments: [0, 0x02, 0x10, 0x11, 0x13, 0x08, 0x20, 0x05, 0x09] as [Int32])
    func fallocateModes(mode: Int32) throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let (_, gmem) = try setup.gmem(flags: 0)
        #expect(
            simErrno { try setup.kernel.fallocate(fd: gmem, mode: mode, offset: 0, length: simPage) }
                == SimExpectedErrno.opnotsupp)
    }

    @Test("fallocate with unaligned offset or length is EINVAL (selftest invalid_punch_hole pairs)")
    func fallocateUnaligned() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let (_, gmem) = try setup.gmem(flags: 0)
        let pairs: [(UInt64, UInt64)] = [
            (0, 1), (0, simPage - 1), (0, simPage + 1), (1, 1), (1, simPage - 1), (1, simPage),
            (1, simPage + 1), (simPage - 1, 1), (simPage - 1, simPage), (simPage + 1, simPage),
        ]
        for (offset, length) in pairs {
            #expect(
                simErrno { try setup.kernel.fallocate(fd: gmem, mode: punch, offset: offset, length: length) }
                    == SimExpectedErrno.inval)
            #expect(
                simErrno { try setup.kernel.fallocate(fd: gmem, mode: keep, offset: offset, length: length) }
                    == SimExpectedErrno.inval)
        }
        #expect(
            simErrno { try setup.kernel.fallocate(fd: gmem, mode: punch, offset: 0, length: 0) }
                == SimExpectedErrno.inval)
    }

    @Test("fallocate allocate past EOF is EINVAL, punch at or past EOF a no-op (selftest fallocate)")
    func fallocateEndOfFile() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let size = 4 * simPage
        let (vm, gmem) = try setup.gmem(size: size, flags: 0)
        #expect(simErrno { try setup.kernel.fallocate(fd: gmem, mode: keep, offset: 0, length: size) } == nil)
        #expect(try setup.kernel.allocatedRanges(fd: gmem) == [0..<size])
        #expect(
            simErrno { try setup.kernel.fallocate(fd: gmem, mode: keep, offset: size, length: simPage) }
                == SimExpectedErrno.inval)
        #expect(
            simErrno { try setup.kernel.fallocate(fd: gmem, mode: keep, offset: size - simPage, length: 2 * simPage) }
                == SimExpectedErrno.inval)
        #expect(simErrno { try setup.kernel.fallocate(fd: gmem, mode: punch, offset: size, length: simPage) } == nil)
        #expect(
            simErrno { try setup.kernel.fallocate(fd: gmem, mode: punch, offset: size + simPage, length: simPage) }
                == nil)
        #expect(simErrno { try setup.kernel.fallocate(fd: gmem, mode: punch, offset: simPage, length: simPage) } == nil)
        #expect(try setup.kernel.allocatedRanges(fd: gmem) == [0..<simPage, 2 * simPage..<size])
        #expect(
            simErrno { try setup.kernel.fallocate(fd: vm, mode: keep, offset: 0, length: simPage) }
                == SimExpectedErrno.nodev)
    }

    @Test("punch-hole in range reads back zeros, the rest keeps its bytes (selftest mmap_supported)")
    func punchHoleZeroes() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let size = 4 * simPage
        let (_, gmem, address) = try setup.mappedGmem(size: size, flags: upstreamMmapShared)
        try setup.kernel.write(address: address, bytes: [UInt8](repeating: 0xaa, count: Int(size)))
        try setup.kernel.fallocate(fd: gmem, mode: punch, offset: 0, length: simPage)
        #expect(
            try setup.kernel.read(address: address, count: Int(simPage)) == [UInt8](repeating: 0, count: Int(simPage)))
        #expect(
            try setup.kernel.read(address: address + simPage, count: Int(size - simPage))
                == [UInt8](repeating: 0xaa, count: Int(size - simPage)))
        try setup.kernel.write(address: address, bytes: [1, 2, 3])
        #expect(try setup.kernel.read(address: address, count: 3) == [1, 2, 3])
    }

    @Test("mmap without MMAP is ENODEV (also for MAP_PRIVATE), MAP_PRIVATE with MMAP is EINVAL")
    func mmapRules() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let (vm, plain) = try setup.gmem(flags: 0)
        let mappable = try setup.kernel.createGuestMemfd(vm: vm, size: 4 * simPage, flags: KVMConstants.gmemFlagMmap)
        #expect(
            simErrno { try setup.kernel.mmap(fd: plain, length: simPage, offset: 0, shared: true, hugePageSize: nil) }
                == SimExpectedErrno.nodev)
        #expect(
            simErrno { try setup.kernel.mmap(fd: plain, length: simPage, offset: 0, shared: false, hugePageSize: nil) }
                == SimExpectedErrno.nodev)
        #expect(
            simErrno {
                try setup.kernel.mmap(fd: mappable, length: simPage, offset: 0, shared: false, hugePageSize: nil)
            } == SimExpectedErrno.inval)
        #expect(
            simErrno {
                try setup.kernel.mmap(fd: mappable, length: simPage, offset: 1, shared: true, hugePageSize: nil)
            } == SimExpectedErrno.inval)
        #expect(
            simErrno { try setup.kernel.mmap(fd: mappable, length: 0, offset: 0, shared: true, hugePageSize: nil) }
                == SimExpectedErrno.inval)
        #expect(
            simErrno { try setup.kernel.mmap(fd: vm, length: simPage, offset: 0, shared: true, hugePageSize: nil) }
                == SimExpectedErrno.nodev)
        #expect(
            simErrno { try setup.kernel.mmap(fd: 4242, length: simPage, offset: 0, shared: true, hugePageSize: nil) }
                == SimExpectedErrno.badf)
    }

    @Test("[6.8] guest_memfd cannot be mapped")
    func linux68NoMmap() throws {
        let setup = SimSetup(Profiles.linux68)
        let (_, gmem) = try setup.gmem(.swProtected, flags: 0)
        #expect(
            simErrno { try setup.kernel.mmap(fd: gmem, length: simPage, offset: 0, shared: true, hugePageSize: nil) }
                == SimExpectedErrno.nodev)
    }

    @Test("mmap beyond EOF is allowed; touching beyond EOF raises SIGBUS (selftest fault_overflow)")
    func faultOverflow() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let size = 4 * simPage
        let (_, gmem) = try setup.gmem(size: size, flags: upstreamMmapShared)
        let address = try setup.kernel.mmap(fd: gmem, length: 4 * size, offset: 0, shared: true, hugePageSize: nil)
        #expect(
            simFailure {
                try setup.kernel.write(address: address, bytes: [UInt8](repeating: 0xaa, count: Int(4 * size)))
            } == .sigbus)
        #expect(simFailure { try setup.kernel.read(address: address + size, count: 1) } == .sigbus)
        // Like memset, the write stopped at EOF: the in-range bytes were written.
        #expect(try setup.kernel.read(address: address, count: Int(size)) == [UInt8](repeating: 0xaa, count: Int(size)))
    }

    @Test("a gmem without INIT_SHARED is private: any host access raises SIGBUS (selftest fault_private)")
    func faultPrivate() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let (_, _, address) = try setup.mappedGmem(flags: KVMConstants.gmemFlagMmap)
        #expect(simFailure { try setup.kernel.read(address: address, count: 1) } == .sigbus)
        #expect(simFailure { try setup.kernel.write(address: address + simPage, bytes: [1]) } == .sigbus)
    }

    @Test("first touch of a shared page reads zeros and faults it in")
    func firstTouch() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let (_, gmem, address) = try setup.mappedGmem(flags: upstreamMmapShared)
        #expect(try setup.kernel.residentPages(address: address, length: 16 * simPage) == 0)
        #expect(try setup.kernel.read(address: address + 3 * simPage + 5, count: 8) == [UInt8](repeating: 0, count: 8))
        #expect(try setup.kernel.residentPages(address: address, length: 16 * simPage) == 1)
        #expect(try setup.kernel.allocatedRanges(fd: gmem) == [3 * simPage..<4 * simPage])
    }

    @Test("a write spanning pages lands in each page, and a mapping at an offset sees the file at that offset")
    func contentsThroughTwoMappings() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let (_, gmem, address) = try setup.mappedGmem(flags: upstreamMmapShared)
        let bytes = (0..<6000).map { UInt8(truncatingIfNeeded: $0) }
        try setup.kernel.write(address: address + simPage - 100, bytes: bytes)
        let second = try setup.kernel.mmap(
            fd: gmem, length: 2 * simPage, offset: simPage, shared: true, hugePageSize: nil)
        #expect(try setup.kernel.read(address: second, count: 5900) == Array(bytes[100...]))
    }

    @Test("closing the gmem fd keeps it alive while mapped; unmapping then releases it")
    func mappingKeepsFileAlive() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let (vm, gmem, address) = try setup.mappedGmem(flags: upstreamMmapShared)
        try setup.kernel.write(address: address, bytes: [7])
        try setup.kernel.close(gmem)
        try setup.kernel.close(vm)
        #expect(try setup.kernel.read(address: address, count: 1) == [7])
        try setup.kernel.munmap(address: address, length: 16 * simPage)
        #expect(setup.kernel.footprint.files == 0 && setup.kernel.footprint.vms == 0)
        #expect(simErrno { try setup.kernel.read(address: address, count: 1) } == SimExpectedErrno.fault)
    }
}
