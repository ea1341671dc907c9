import Config
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// The host side of legacy backings: memfd, anonymous and hugetlb memory, madvise, mincore, munmap.
@Suite("SimulatedKernel host memory")
struct SimulatedKernelHostMemoryTests {
    let kernel = SimulatedKernel(capabilities: Profiles.linux618PVM)

    @Test("MADV_DONTNEED on private anonymous memory drops contents (zeros) and residency")
    func dontneedAnonymous() throws {
        let address = try kernel.mmap(fd: nil, length: 8 * simPage, offset: 0, shared: false, hugePageSize: nil)
        try kernel.write(address: address, bytes: [UInt8](repeating: 5, count: Int(3 * simPage)))
        #expect(try kernel.residentPages(address: address, length: 8 * simPage) == 3)
        try kernel.madvise(address: address + simPage, length: simPage, advice: KVMConstants.madvDontneed)
        #expect(try kernel.read(address: address + simPage, count: 2) == [0, 0])
        #expect(try kernel.read(address: address, count: 1) == [5])
        #expect(
            try kernel.residentPages(address: address, length: 8 * simPage) == 3, "the read faulted the page back in")
    }

    @Test("MADV_DONTNEED on a shared memfd mapping keeps the file's pages; MADV_REMOVE or a punch-hole frees them")
    func sharedMemfdDiscard() throws {
        let memfd = try kernel.createMemfd(name: "ram", size: 8 * simPage, hugePageSize: nil)
        let address = try kernel.mmap(fd: memfd, length: 8 * simPage, offset: 0, shared: true, hugePageSize: nil)
        try kernel.write(address: address, bytes: [UInt8](repeating: 7, count: Int(4 * simPage)))
        try kernel.madvise(address: address, length: 4 * simPage, advice: KVMConstants.madvDontneed)
        #expect(try kernel.read(address: address, count: 1) == [7])
        try kernel.madvise(address: address, length: simPage, advice: KVMConstants.madvRemove)
        #expect(try kernel.read(address: address, count: 1) == [0])
        try kernel.fallocate(
            fd: memfd, mode: KVMConstants.fallocKeepSize | KVMConstants.fallocPunchHole, offset: simPage + 10,
            length: simPage)
        #expect(
            try kernel.read(address: address + simPage + 9, count: 2) == [7, 0],
            "a partial page is zeroed from the offset")
        #expect(try kernel.read(address: address + 2 * simPage + 9, count: 2) == [0, 7])
    }

    @Test(
        "MADV_REMOVE needs a shared file mapping: EINVAL on private anonymous memory, EACCES on a private file mapping")
    func removeOnPrivateMappings() throws {
        let anonymous = try kernel.mmap(fd: nil, length: simPage, offset: 0, shared: false, hugePageSize: nil)
        #expect(
            simErrno { try kernel.madvise(address: anonymous, length: simPage, advice: KVMConstants.madvRemove) }
                == SimExpectedErrno.inval)
        let memfd = try kernel.createMemfd(name: "ram", size: simPage, hugePageSize: nil)
        let privateMapping = try kernel.mmap(fd: memfd, length: simPage, offset: 0, shared: false, hugePageSize: nil)
        #expect(
            simErrno { try kernel.madvise(address: privateMapping, length: simPage, advice: KVMConstants.madvRemove) }
                == SimExpectedErrno.acces)
    }

    @Test("MAP_PRIVATE of a memfd is copy-on-write; MADV_DONTNEED brings the file's bytes back")
    func copyOnWrite() throws {
        let memfd = try kernel.createMemfd(name: "ram", size: 2 * simPage, hugePageSize: nil)
        let shared = try kernel.mmap(fd: memfd, length: 2 * simPage, offset: 0, shared: true, hugePageSize: nil)
        let privateView = try kernel.mmap(fd: memfd, length: 2 * simPage, offset: 0, shared: false, hugePageSize: nil)
        try kernel.write(address: shared, bytes: [1, 1])
        try kernel.write(address: privateView + 1, bytes: [2])
        #expect(try kernel.read(address: privateView, count: 2) == [1, 2])
        #expect(try kernel.read(address: shared, count: 2) == [1, 1])
        try kernel.write(address: shared, bytes: [3])
        #expect(try kernel.read(address: privateView, count: 1) == [1], "the private copy no longer follows the file")
        try kernel.madvise(address: privateView, length: simPage, advice: KVMConstants.madvDontneed)
        #expect(try kernel.read(address: privateView, count: 2) == [3, 1])
    }

    @Test("MADV_POPULATE_WRITE faults pages in; on private gmem pages it is EFAULT after populating what it could")
    func populate() throws {
        let address = try kernel.mmap(fd: nil, length: 1 << 30, offset: 0, shared: false, hugePageSize: nil)
        try kernel.madvise(address: address, length: 1 << 30, advice: KVMConstants.madvPopulateWrite)
        #expect(try kernel.residentPages(address: address, length: 1 << 30) == (1 << 30) / simPage)

        let gmemKernel = SimSetup(Profiles.gmemAttributes2)
        let (_, gmem, gmemAddress) = try gmemKernel.mappedGmem(.swProtected, flags: upstreamMmapShared)
        try gmemKernel.kernel.setMemoryAttributes2(
            gmem: gmem, offset: 4 * simPage, size: simPage, attributes: KVMConstants.memoryAttributePrivate, flags: 0)
        #expect(
            simErrno {
                try gmemKernel.kernel.madvise(
                    address: gmemAddress, length: 16 * simPage, advice: KVMConstants.madvPopulateWrite)
            }
                == SimExpectedErrno.fault)
        #expect(try gmemKernel.kernel.allocatedRanges(fd: gmem) == [0..<4 * simPage])
    }

    @Test("madvise: unaligned start or unknown advice is EINVAL, a hole in the range ENOMEM, length 0 a no-op")
    func madviseInputRules() throws {
        let address = try kernel.mmap(fd: nil, length: 2 * simPage, offset: 0, shared: false, hugePageSize: nil)
        #expect(
            simErrno { try kernel.madvise(address: address + 1, length: simPage, advice: KVMConstants.madvDontneed) }
                == SimExpectedErrno.inval)
        #expect(simErrno { try kernel.madvise(address: address, length: simPage, advice: 7) } == SimExpectedErrno.inval)
        #expect(
            simErrno { try kernel.madvise(address: address, length: 4 * simPage, advice: KVMConstants.madvDontneed) }
                == SimExpectedErrno.nomem)
        #expect(
            simErrno {
                try kernel.madvise(address: address, length: 4 * simPage, advice: KVMConstants.madvPopulateWrite)
            } == SimExpectedErrno.nomem)
        #expect(simErrno { try kernel.madvise(address: 0x1000, length: 0, advice: KVMConstants.madvDontneed) } == nil)
    }

    @Test(
        "MADV_COLLAPSE on a guest_memfd mapping is EINVAL; DONTNEED then re-fault keeps gmem contents (selftest collapse)"
    )
    func gmemMadvise() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let (_, _, address) = try setup.mappedGmem(flags: upstreamMmapShared)
        try setup.kernel.write(address: address, bytes: [4])
        #expect(
            simErrno { try setup.kernel.madvise(address: address, length: 2 * simMiB, advice: 25) }
                == SimExpectedErrno.inval)
        try setup.kernel.madvise(address: address, length: 16 * simPage, advice: KVMConstants.madvDontneed)
        #expect(try setup.kernel.read(address: address, count: 1) == [4])
    }

    @Test("hugetlb: unknown page size ENODEV, unaligned size EINVAL, a touch makes the whole huge page resident")
    func hugetlb() throws {
        #expect(
            simErrno { try kernel.createMemfd(name: "huge", size: simGiB, hugePageSize: simGiB) }
                == SimExpectedErrno.nodev)
        #expect(
            simErrno { try kernel.createMemfd(name: "huge", size: simMiB, hugePageSize: 2 * simMiB) }
                == SimExpectedErrno.inval)
        let memfd = try kernel.createMemfd(name: "huge", size: 4 * simMiB, hugePageSize: 2 * simMiB)
        #expect(
            simErrno {
                try kernel.mmap(fd: memfd, length: 2 * simMiB, offset: simPage, shared: true, hugePageSize: nil)
            } == SimExpectedErrno.inval)
        let address = try kernel.mmap(fd: memfd, length: simMiB, offset: 0, shared: true, hugePageSize: nil)
        #expect(address % (2 * simMiB) == 0)
        try kernel.write(address: address + 5, bytes: [1])
        #expect(try kernel.residentPages(address: address, length: 2 * simMiB) == 512)
        #expect(
            simErrno { try kernel.munmap(address: address, length: simMiB) } == SimExpectedErrno.inval,
            "cannot split a huge page")
        #expect(
            simErrno { try kernel.mmap(fd: nil, length: simPage, offset: 0, shared: false, hugePageSize: simGiB) }
                == SimExpectedErrno.inval)
        let plainMemfd = try kernel.createMemfd(name: "plain", size: simPage, hugePageSize: nil)
        // `hugePageSize` means MAP_HUGETLB for anonymous memory only (the KernelInterface contract; KVMKernel
        // maps a file with its own page size and the real call succeeds), so it is ignored for a file.
        #expect(
            simErrno {
                try kernel.mmap(fd: plainMemfd, length: simPage, offset: 0, shared: true, hugePageSize: 2 * simMiB)
            } == nil)
    }

    @Test("touching a memfd mapping past the file's size raises SIGBUS")
    func memfdPastEOF() throws {
        let memfd = try kernel.createMemfd(name: "ram", size: simPage, hugePageSize: nil)
        let address = try kernel.mmap(fd: memfd, length: 2 * simPage, offset: 0, shared: true, hugePageSize: nil)
        #expect(simFailure { try kernel.read(address: address + simPage, count: 1) } == .sigbus)
        try kernel.fallocate(fd: memfd, mode: 0, offset: 0, length: 2 * simPage)
        #expect(
            try kernel.read(address: address + simPage, count: 1) == [0], "fallocate without KEEP_SIZE grew the file")
    }

    @Test("mappings are page-aligned and disjoint; munmap splits and unmapped addresses fault with EFAULT")
    func addressSpace() throws {
        let first = try kernel.mmap(fd: nil, length: 3 * simPage, offset: 0, shared: false, hugePageSize: nil)
        let second = try kernel.mmap(fd: nil, length: 1, offset: 0, shared: false, hugePageSize: nil)
        #expect(first % simPage == 0 && second % simPage == 0)
        #expect(!(first..<first + 3 * simPage).overlaps(second..<second + simPage))
        try kernel.write(address: first + 2 * simPage, bytes: [9])
        try kernel.munmap(address: first + simPage, length: simPage)
        #expect(simErrno { try kernel.read(address: first + simPage, count: 1) } == SimExpectedErrno.fault)
        #expect(try kernel.read(address: first + 2 * simPage, count: 1) == [9])
        #expect(simErrno { try kernel.munmap(address: first + 1, length: simPage) } == SimExpectedErrno.inval)
        #expect(simErrno { try kernel.munmap(address: first, length: 0) } == SimExpectedErrno.inval)
        #expect(simErrno { try kernel.read(address: 0x1000, count: 1) } == SimExpectedErrno.fault)
        // The freed hole is reused first-fit.
        let third = try kernel.mmap(fd: nil, length: simPage, offset: 0, shared: false, hugePageSize: nil)
        #expect(third == first + simPage)
    }

    @Test("mincore: unaligned start is EINVAL, an unmapped page in the range ENOMEM")
    func mincoreRules() throws {
        let address = try kernel.mmap(fd: nil, length: simPage, offset: 0, shared: false, hugePageSize: nil)
        #expect(simErrno { try kernel.residentPages(address: address + 1, length: simPage) } == SimExpectedErrno.inval)
        #expect(simErrno { try kernel.residentPages(address: address, length: 2 * simPage) } == SimExpectedErrno.nomem)
        #expect(try kernel.residentPages(address: address, length: 1) == 0)
    }
}
