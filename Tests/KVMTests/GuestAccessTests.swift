import GmemCore
import GmemKVM
import GmemSimulator
import Testing

extension KVMIntegration {
    /// A real vCPU reads and writes guest memory backed by guest_memfd (in place) and by legacy backings.
    @Suite struct GuestAccess {
        static let lowGPA: UInt64 = 0x4_0000  // below 1 MiB, clear of the runner's scratch at 0x10000
        static let lowSize: UInt64 = 0x4_0000
        static let highGPA: UInt64 = 0x1_0000_0000  // 4 GiB
        static let highSize: UInt64 = 0x20_0000

        /// One in-place block (MMAP|INIT_SHARED) mapped twice, as x86 splits RAM: offset 0 below 1 MiB and the
        /// rest at 4 GiB. The host's bytes reach the guest and the guest's markers reach the host, both ways
        /// through the same pages.
        @Test(.enabled(if: KVMAvailability.guestMemfd, KVMAvailability.guestMemfdReason))
        func inPlaceSharedBlockIsOneMemoryForHostAndGuest() throws {
            let fixture = try KVMFixture()
            let blockSize = Self.lowSize + Self.highSize
            let gmem = try fixture.guestMemfd(size: blockSize, flags: GuestMemfdFlag.mmap | GuestMemfdFlag.initShared)
            let host = try fixture.mapShared(fd: gmem, length: blockSize)
            // Shadow paging (PVM): bind with the host mapping, not 0, or the guest triple-faults.
            try fixture.bindGuestMemfd(
                slot: 0, gpa: Self.lowGPA, size: Self.lowSize, gmem: gmem, offset: 0, userspaceAddr: host)
            try fixture.bindGuestMemfd(
                slot: 1, gpa: Self.highGPA, size: Self.highSize, gmem: gmem, offset: Self.lowSize,
                userspaceAddr: host + Self.lowSize)

            let cases: [(offset: UInt64, gpa: UInt64, hostByte: UInt8, marker: UInt8)] = [
                (0, Self.lowGPA, 0x11, 0xA1),
                (Self.lowSize - 1, Self.lowGPA + Self.lowSize - 1, 0x22, 0xA2),
                (Self.lowSize, Self.highGPA, 0x33, 0xA3),
                (Self.lowSize + 0x12_3456, Self.highGPA + 0x12_3456, 0x44, 0xA4),
            ]
            for item in cases { try fixture.kernel.write(address: host + item.offset, bytes: [item.hostByte]) }

            let runner = try fixture.makeRunner()
            let seen = try runner.probe(cases.map { (gpa: $0.gpa, writeMarker: $0.marker) })
            #expect(seen == cases.map(\.hostByte))
            for item in cases {
                #expect(try fixture.kernel.read(address: host + item.offset, count: 1) == [item.marker])
            }

            // A second run on the same vCPU sees the first run's markers, and an untouched byte reads zero.
            let again = try runner.probe([
                GuestProbeTarget(gpa: Self.highGPA), GuestProbeTarget(gpa: Self.highGPA + 0x1000),
            ])
            #expect(again == [0xA3, 0x00])
        }

        /// Legacy block on a default VM: guest_memfd with flags 0 bound with a memfd as shared backing. No
        /// gfn is private on this VM, so the guest is served from the memfd the host wrote.
        @Test(.enabled(if: KVMAvailability.guestMemfd, KVMAvailability.guestMemfdReason))
        func legacyBlockServesTheGuestFromItsSharedBacking() throws {
            let fixture = try KVMFixture()
            let gmem = try fixture.guestMemfd(size: Self.highSize, flags: 0)
            let backing = try fixture.memfd(size: Self.highSize)
            let host = try fixture.mapShared(fd: backing, length: Self.highSize)
            try fixture.bindGuestMemfd(
                slot: 0, gpa: Self.highGPA, size: Self.highSize, gmem: gmem, offset: 0, userspaceAddr: host)
            try fixture.kernel.write(address: host + 0x800, bytes: [0x5C])

            let runner = try fixture.makeRunner()
            let seen = try runner.probe([(gpa: Self.highGPA + 0x800, writeMarker: 0xC5)])
            #expect(seen == [0x5C])
            #expect(try fixture.kernel.read(address: host + 0x800, count: 1) == [0xC5])
        }

        @Test(.enabled(if: KVMAvailability.guestMemfd, KVMAvailability.guestMemfdReason))
        func punchedGuestMemfdPageReadsZeroInTheGuest() throws {
            let fixture = try KVMFixture()
            let gmem = try fixture.guestMemfd(
                size: Self.highSize, flags: GuestMemfdFlag.mmap | GuestMemfdFlag.initShared)
            let host = try fixture.mapShared(fd: gmem, length: Self.highSize)
            try fixture.bindGuestMemfd(
                slot: 0, gpa: Self.highGPA, size: Self.highSize, gmem: gmem, offset: 0, userspaceAddr: host)
            try fixture.kernel.write(address: host, bytes: [0x77])
            let runner = try fixture.makeRunner()
            #expect(try runner.probe([GuestProbeTarget(gpa: Self.highGPA)]) == [0x77])
            try fixture.kernel.fallocate(
                fd: gmem, mode: GuestMemfdFlag.fallocKeepSize | GuestMemfdFlag.fallocPunchHole,
                offset: 0, length: 0x1000)
            #expect(try runner.probe([GuestProbeTarget(gpa: Self.highGPA)]) == [0x00])
        }

        @Test func accessWithoutAMemslotIsATypedExitError() throws {
            let fixture = try KVMFixture()
            let runner = try fixture.makeRunner()
            do {
                _ = try runner.probe([GuestProbeTarget(gpa: 0x3_0000_0000)])
                Issue.record("a read of unbacked GPA 12 GiB returned")
            } catch {
                guard case .unexpectedExit(let reason, let name, let rip, _) = error else {
                    Issue.record("unexpected error \(error)")
                    return
                }
                #expect(reason == 6)
                #expect(name == "KVM_EXIT_MMIO")
                #expect(rip >= GuestRunner.defaultScratchGPA)
                #expect(error.description.contains("0x300000000"))
            }
        }

        /// docs/kernels.md (linux-6.18-pvm): on a shadow-paging host (PRE_FAULT cap 0, like this PVM host) a
        /// gmem-only slot bound with `userspace_addr = 0` (as the upstream selftest does) is not reachable
        /// through the host address KVM uses, and the guest's access stops with a named exit instead of reading
        /// the page.
        @Test(.enabled(if: KVMAvailability.guestMemfd, KVMAvailability.guestMemfdReason))
        func gmemOnlySlotWithoutHostAddressFailsOnShadowPaging() throws {
            let fixture = try KVMFixture()
            let shadowPaging = try fixture.kernel.checkExtension(236, vm: nil) == 0
            let gmem = try fixture.guestMemfd(
                size: Self.highSize, flags: GuestMemfdFlag.mmap | GuestMemfdFlag.initShared)
            try fixture.bindGuestMemfd(
                slot: 0, gpa: Self.highGPA, size: Self.highSize, gmem: gmem, offset: 0, userspaceAddr: 0)
            let runner = try fixture.makeRunner()
            do {
                let seen = try runner.probe([GuestProbeTarget(gpa: Self.highGPA)])
                #expect(!shadowPaging, "a shadow-paging host served a gmem-only slot bound at address 0")
                #expect(seen == [0], "the first touch of a shared gmem page reads zero")
            } catch {
                guard case .unexpectedExit(_, let name, _, _) = error else {
                    Issue.record("unexpected error \(error)")
                    return
                }
                #expect(shadowPaging, "a TDP host failed the access: \(error)")
                #expect(["KVM_EXIT_SHUTDOWN", "KVM_EXIT_MMIO"].contains(name), "exit \(name)")
            }
        }

        @Test func targetsInsideTheScratchAreRefused() throws {
            let fixture = try KVMFixture()
            let runner = try fixture.makeRunner()
            #expect(throws: GuestRunError.self) {
                try runner.probe([GuestProbeTarget(gpa: GuestRunner.defaultScratchGPA + 8)])
            }
        }

        /// Everything a block's life opens (VM, guest_memfd, memfd, vCPU, runner) is closed again.
        @Test(.enabled(if: KVMAvailability.guestMemfd, KVMAvailability.guestMemfdReason)) func noFileDescriptorLeaks()
            throws
        {
            let before = try openKVMRelatedFds()
            do {
                let fixture = try KVMFixture()
                let gmem = try fixture.guestMemfd(
                    size: Self.highSize, flags: GuestMemfdFlag.mmap | GuestMemfdFlag.initShared)
                let host = try fixture.mapShared(fd: gmem, length: Self.highSize)
                _ = try fixture.memfd(size: 0x1000)
                try fixture.bindGuestMemfd(
                    slot: 0, gpa: Self.highGPA, size: Self.highSize, gmem: gmem, offset: 0, userspaceAddr: host)
                let runner = try fixture.makeRunner()
                _ = try runner.probe([GuestProbeTarget(gpa: Self.highGPA, writeMarker: 1)])
                #expect(try openKVMRelatedFds() >= before + 5)  // /dev/kvm, VM, gmem, memfd, vCPU
            }
            #expect(try openKVMRelatedFds() == before)
        }
    }
}
