import GmemCore
import GmemKVM
import GmemSimulator
import Testing

extension KVMIntegration {
    /// KVM_SET_USER_MEMORY_REGION2 binding rules for guest_memfd slots.
    @Suite(.enabled(if: KVMAvailability.guestMemfd, KVMAvailability.guestMemfdReason)) struct Memslots {
        static let size: UInt64 = 0x20_0000

        @Test func overlappingGuestRangesAreEEXIST() throws {
            let fixture = try KVMFixture()
            let gmem = try fixture.guestMemfd(
                size: 2 * Self.size, flags: GuestMemfdFlag.mmap | GuestMemfdFlag.initShared)
            let host = try fixture.mapShared(fd: gmem, length: 2 * Self.size)
            try fixture.bindGuestMemfd(
                slot: 0, gpa: 0x1_0000_0000, size: Self.size, gmem: gmem, offset: 0, userspaceAddr: host)
            let result = errnoOf {
                try fixture.bindGuestMemfd(
                    slot: 1, gpa: 0x1_0010_0000, size: Self.size, gmem: gmem, offset: Self.size,
                    userspaceAddr: host + Self.size)
            }
            #expect(result == Errno.eexist)
        }

        @Test func bindingTheSameGuestMemfdRangeTwiceIsEINVAL() throws {
            let fixture = try KVMFixture()
            let gmem = try fixture.guestMemfd(size: Self.size, flags: GuestMemfdFlag.mmap | GuestMemfdFlag.initShared)
            let host = try fixture.mapShared(fd: gmem, length: Self.size)
            try fixture.bindGuestMemfd(
                slot: 0, gpa: 0x1_0000_0000, size: Self.size, gmem: gmem, offset: 0, userspaceAddr: host)
            let result = errnoOf {
                try fixture.bindGuestMemfd(
                    slot: 1, gpa: 0x2_0000_0000, size: Self.size, gmem: gmem, offset: 0, userspaceAddr: host)
            }
            #expect(result == Errno.einval)
        }

        @Test func deletedSlotFreesTheRangeForRebinding() throws {
            let fixture = try KVMFixture()
            let gmem = try fixture.guestMemfd(size: Self.size, flags: GuestMemfdFlag.mmap | GuestMemfdFlag.initShared)
            let host = try fixture.mapShared(fd: gmem, length: Self.size)
            try fixture.bindGuestMemfd(
                slot: 0, gpa: 0x1_0000_0000, size: Self.size, gmem: gmem, offset: 0, userspaceAddr: host)
            try fixture.kernel.setUserMemoryRegion2(
                vm: fixture.vm,
                MemoryRegion2(
                    slot: 0, flags: 0, guestPhysAddr: 0x1_0000_0000,
                    memorySize: 0, userspaceAddr: 0))
            try fixture.bindGuestMemfd(
                slot: 1, gpa: 0x2_0000_0000, size: Self.size, gmem: gmem, offset: 0, userspaceAddr: host)
        }

        @Test func errorsRenderTheRegionReadably() throws {
            let fixture = try KVMFixture()
            do {
                try fixture.bindGuestMemfd(slot: 3, gpa: 0x1000, size: 0x1000, gmem: 9_999, offset: 0, userspaceAddr: 0)
                Issue.record("binding a closed fd succeeded")
            } catch {
                #expect(error.errno == Errno.ebadf)
                #expect(error.arguments.contains("slot=3"))
                #expect(error.arguments.contains("flags=GUEST_MEMFD"))
                #expect(error.arguments.contains("gpa=0x1000"))
            }
        }
    }
}
