import GmemCore
import GmemKVM
import GmemSimulator
import Testing

extension KVMIntegration {
    /// KVM_CREATE_GUEST_MEMFD and the guest_memfd file operations on Linux 6.18.
    @Suite(.enabled(if: KVMAvailability.guestMemfd, KVMAvailability.guestMemfdReason)) struct GuestMemfd {
        static let page: UInt64 = 4096

        @Test func flagsWithinTheCapabilityMaskAreAccepted() throws {
            let fixture = try KVMFixture()
            for flags in UInt64(0)...3 {
                let fd = try fixture.guestMemfd(size: Self.page, flags: flags)
                #expect(fd >= 0, "flags \(flags)")
            }
        }

        @Test func everyFlagBitFromTwoUpIsRejected() throws {
            let fixture = try KVMFixture()
            for bit in UInt64(2)..<64 {
                let result = errnoOf { _ = try fixture.guestMemfd(size: Self.page, flags: 1 << bit) }
                #expect(result == Errno.einval, "flag bit \(bit)")
            }
        }

        @Test(arguments: [UInt64(0), 4095])
        func sizesThatAreNotPositivePageMultiplesAreRejected(size: UInt64) throws {
            let fixture = try KVMFixture()
            #expect(errnoOf { _ = try fixture.guestMemfd(size: size, flags: 0) } == Errno.einval)
        }

        @Test func errorsNameTheCallAndFlags() throws {
            let fixture = try KVMFixture()
            do {
                _ = try fixture.guestMemfd(size: Self.page, flags: 0x7)
                Issue.record("flags 0x7 accepted")
            } catch {
                #expect(error.call == "KVM_CREATE_GUEST_MEMFD")
                #expect(error.arguments.contains("MMAP|INIT_SHARED|0x4"))
                #expect(error.description.contains("EINVAL"))
            }
        }

        @Test func mmapWithoutTheMmapFlagIsENODEV() throws {
            let fixture = try KVMFixture()
            let gmem = try fixture.guestMemfd(size: Self.page, flags: 0)
            #expect(errnoOf { _ = try fixture.mapShared(fd: gmem, length: Self.page) } == Errno.enodev)
        }

        @Test func fallocateWithoutKeepSizeIsEOPNOTSUPP() throws {
            let fixture = try KVMFixture()
            let gmem = try fixture.guestMemfd(size: 2 * Self.page, flags: 0)
            #expect(
                errnoOf { try fixture.kernel.fallocate(fd: gmem, mode: 0, offset: 0, length: Self.page) }
                    == Errno.eopnotsupp)
            #expect(
                errnoOf {
                    try fixture.kernel.fallocate(
                        fd: gmem, mode: GuestMemfdFlag.fallocPunchHole, offset: 0, length: Self.page)
                } == Errno.eopnotsupp)
            try fixture.kernel.fallocate(
                fd: gmem, mode: GuestMemfdFlag.fallocKeepSize, offset: 0, length: 2 * Self.page)
        }

        @Test func punchedHoleReadsBackZeros() throws {
            let fixture = try KVMFixture()
            let size = 2 * Self.page
            let gmem = try fixture.guestMemfd(size: size, flags: GuestMemfdFlag.mmap | GuestMemfdFlag.initShared)
            let host = try fixture.mapShared(fd: gmem, length: size)
            try fixture.kernel.write(address: host, bytes: [UInt8](repeating: 0xAA, count: Int(size)))
            try fixture.kernel.fallocate(
                fd: gmem, mode: GuestMemfdFlag.fallocKeepSize | GuestMemfdFlag.fallocPunchHole,
                offset: 0, length: Self.page)
            #expect(try fixture.kernel.read(address: host, count: Int(Self.page)).allSatisfy { $0 == 0 })
            #expect(try fixture.kernel.read(address: host + Self.page, count: Int(Self.page)).allSatisfy { $0 == 0xAA })
        }

        @Test func privateGuestMemfdRaisesSIGBUSOnHostAccess() throws {
            let fixture = try KVMFixture()
            let gmem = try fixture.guestMemfd(size: Self.page, flags: GuestMemfdFlag.mmap)
            let host = try fixture.mapShared(fd: gmem, length: Self.page)
            do {
                _ = try fixture.kernel.read(address: host + 16, count: 1)
                Issue.record("read of a private guest_memfd page succeeded")
            } catch {
                #expect(error.failure == .sigbus)
                #expect(error.call == "read")
            }
            do {
                try fixture.kernel.write(address: host, bytes: [1])
                Issue.record("write to a private guest_memfd page succeeded")
            } catch {
                #expect(error.failure == .sigbus)
            }
        }

        @Test func unmappedHostAddressIsEFAULT() throws {
            let fixture = try KVMFixture()
            let address = try fixture.kernel.mmap(
                fd: nil, length: Self.page, offset: 0, shared: false, hugePageSize: nil)
            try fixture.kernel.munmap(address: address, length: Self.page)
            #expect(errnoOf { _ = try fixture.kernel.read(address: address, count: 8) } == Errno.efault)
        }

        @Test func conversionIoctlsOnAGuestMemfdAreENOTTY() throws {
            let fixture = try KVMFixture()
            let gmem = try fixture.guestMemfd(size: Self.page, flags: GuestMemfdFlag.mmap | GuestMemfdFlag.initShared)
            #expect(
                errnoOf { try fixture.kernel.gmemConvert(gmem: gmem, offset: 0, size: Self.page, toPrivate: true) }
                    == Errno.enotty)
            #expect(
                errnoOf { try fixture.kernel.gmemConvert(gmem: gmem, offset: 0, size: Self.page, toPrivate: false) }
                    == Errno.enotty)
            #expect(
                errnoOf {
                    try fixture.kernel.setMemoryAttributes2(
                        gmem: gmem, offset: 0, size: Self.page, attributes: 8, flags: 0)
                } == Errno.enotty)
        }

        @Test func vmMemoryAttributesAreNotBuiltHere() throws {
            let fixture = try KVMFixture()
            #expect(
                errnoOf {
                    try fixture.kernel.setMemoryAttributes(
                        vm: fixture.vm, address: 0, size: Self.page, attributes: 8, flags: 0)
                } == Errno.enotty)
        }

        @Test func residentPagesRiseAfterTouching() throws {
            let fixture = try KVMFixture()
            let size = 8 * Self.page
            let gmem = try fixture.guestMemfd(size: size, flags: GuestMemfdFlag.mmap | GuestMemfdFlag.initShared)
            let host = try fixture.mapShared(fd: gmem, length: size)
            #expect(try fixture.kernel.residentPages(address: host, length: size) == 0)
            for page in [UInt64(0), 3, 5] {
                try fixture.kernel.write(address: host + page * Self.page, bytes: [0x5A])
            }
            #expect(try fixture.kernel.residentPages(address: host, length: size) == 3)
        }

        @Test func presentBytesOfAHugeMappingCountOnlyTouchedPages() throws {
            let fixture = try KVMFixture()
            let size: UInt64 = 1 << 40
            // A memfd: the figure is about the host mapping, whatever file backs it.
            let memfd = try fixture.memfd(size: size)
            let host = try fixture.mapShared(fd: memfd, length: size)
            #expect(
                try fixture.kernel.residentBytes(address: host, length: size)
                    == ResidentReading(bytes: 0, source: .pagemapScan))
            for offset in [UInt64(0), 1 << 30, size - Self.page] {
                try fixture.kernel.write(address: host + offset, bytes: [0x5A])
            }
            #expect(
                try fixture.kernel.residentBytes(address: host, length: size)
                    == ResidentReading(bytes: 3 * Self.page, source: .pagemapScan))
        }
    }
}
