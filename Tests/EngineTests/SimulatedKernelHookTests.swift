import Config
import Foundation
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// Fault injection, the call log, persistence, and the cost of a huge guest.
@Suite("SimulatedKernel hooks and persistence")
struct SimulatedKernelHookTests {
    @Test("an injected fault fails exactly the Nth matching call, without effect, and is deterministic")
    func faultInjection() throws {
        for _ in 0..<2 {
            let setup = SimSetup(Profiles.linux618PVM)
            let vm = try setup.vm()
            setup.kernel.injectFault(
                SimulatedFault(call: .createGuestMemfd, occurrence: 2, errno: SimExpectedErrno.nomem))
            let first = try setup.kernel.createGuestMemfd(vm: vm, size: simPage, flags: 0)
            _ = try setup.kernel.checkExtension(231, vm: nil)  // another call does not count
            let error = simError { try setup.kernel.createGuestMemfd(vm: vm, size: simPage, flags: 0) }
            #expect(error?.errno == SimExpectedErrno.nomem && error?.call == "KVM_CREATE_GUEST_MEMFD")
            let third = try setup.kernel.createGuestMemfd(vm: vm, size: simPage, flags: 0)
            #expect(third == first + 1, "the failed call allocated no fd")
            #expect(setup.kernel.pendingFaults.isEmpty)
            #expect(setup.kernel.footprint.files == 2)
        }
    }

    @Test("a fault for any call, with an error offset; two faults due together fire on consecutive calls")
    func faultOrdering() throws {
        let setup = SimSetup(Profiles.gmemAttributes2)
        let (_, gmem) = try setup.gmem(.swProtected, flags: upstreamMmapShared)
        setup.kernel.injectFault(
            SimulatedFault(call: .setMemoryAttributes2, errno: SimExpectedErrno.again, errorOffset: 3 * simPage))
        setup.kernel.injectFault(SimulatedFault(errno: SimExpectedErrno.nomem))
        let first = simError {
            try setup.kernel.setMemoryAttributes2(gmem: gmem, offset: 0, size: simPage, attributes: 8, flags: 0)
        }
        #expect(first?.errno == SimExpectedErrno.again && first?.errorOffset == 3 * simPage)
        #expect(simErrno { try setup.kernel.close(gmem) } == SimExpectedErrno.nomem)
        #expect(simErrno { try setup.kernel.close(gmem) } == nil)
    }

    @Test("the call log names each call with its outcome")
    func callLog() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        _ = try setup.vm()
        _ = simErrno { try setup.kernel.createVM(type: 3) }
        let log = setup.kernel.callLog
        #expect(log.map(\.call) == [.createVM, .createVM])
        #expect(log.map(\.succeeded) == [true, false])
        #expect(log[1].failure == .errno(SimExpectedErrno.inval) && !log[1].injected)
        #expect(log[1].description.contains("EINVAL"))
    }

    @Test("save and load through JSON keeps objects, fds, addresses, contents, pins, faults and behaviour")
    func persistence() throws {
        let setup = SimSetup(Profiles.gmemAttributes2)
        let (vm, gmem, address) = try setup.mappedGmem(.swProtected, flags: upstreamMmapShared)
        try setup.kernel.setUserMemoryRegion2(vm: vm, SimSetup.gmemRegion(gmem: gmem, userspaceAddr: address))
        try setup.kernel.write(address: address + 5, bytes: [1, 2, 3])
        try setup.kernel.setMemoryAttributes2(
            gmem: gmem, offset: 8 * simPage, size: 4 * simPage, attributes: 8, flags: 0)
        try setup.kernel.pin(gmem: gmem, offset: 2 * simPage)
        setup.kernel.injectFault(SimulatedFault(call: .munmap, errno: SimExpectedErrno.nomem))

        let data = try JSONEncoder().encode(setup.kernel.snapshot())
        let restored = SimulatedKernel(state: try JSONDecoder().decode(SimulatedKernelState.self, from: data))
        #expect(restored.snapshot() == setup.kernel.snapshot())
        #expect(try restored.read(address: address + 5, count: 3) == [1, 2, 3])
        #expect(simFailure { try restored.read(address: address + 8 * simPage, count: 1) } == .sigbus)
        #expect(
            simError {
                try restored.setMemoryAttributes2(gmem: gmem, offset: 0, size: 4 * simPage, attributes: 8, flags: 0)
            }?.errorOffset
                == 2 * simPage)
        #expect(
            simErrno {
                try restored.setUserMemoryRegion2(vm: vm, SimSetup.gmemRegion(slot: 1, gpa: 1 << 32, gmem: gmem))
            }
                == SimExpectedErrno.exist, "the range is still bound (EEXIST on 7.4: kvm_gmem_commit_memory_region)")
        #expect(simErrno { try restored.munmap(address: address, length: simPage) } == SimExpectedErrno.nomem)
        let nextFd = try restored.createVM(type: 0)
        #expect(nextFd > gmem)
        #expect(try restored.memslots(vm: vm) == setup.kernel.memslots(vm: vm))
    }

    @Test("a 1 TiB in-place guest with scattered conversions, punches and writes stays cheap")
    func hugeGuestIsCheap() throws {
        let setup = SimSetup(Profiles.gmemAttributes2)
        let (vm, gmem, address) = try setup.mappedGmem(.swProtected, size: simTiB, flags: upstreamMmapShared)
        try setup.kernel.setUserMemoryRegion2(
            vm: vm, SimSetup.gmemRegion(size: simTiB, gmem: gmem, userspaceAddr: address))
        let punch = KVMConstants.fallocKeepSize | KVMConstants.fallocPunchHole
        try setup.kernel.fallocate(fd: gmem, mode: KVMConstants.fallocKeepSize, offset: 0, length: simTiB)
        let stride = simTiB / 1000 / (2 * simMiB) * (2 * simMiB)
        for index in UInt64(0)..<1000 {
            let offset = index * stride
            try setup.kernel.setMemoryAttributes2(
                gmem: gmem, offset: offset, size: 512 * simPage, attributes: 8, flags: 0)
            try setup.kernel.fallocate(fd: gmem, mode: punch, offset: offset + simGiB, length: simMiB)
            try setup.kernel.write(address: address + offset + 600 * simPage, bytes: [UInt8(truncatingIfNeeded: index)])
        }
        let footprint = setup.kernel.footprint
        #expect(footprint.storedPages == 1000)
        #expect(footprint.intervalRuns < 5000)
        #expect(try setup.kernel.guestMemfdState(gmem: gmem).runCount == 2000)
        #expect(
            try setup.kernel.read(address: address + 999 * stride + 600 * simPage, count: 1) == [
                UInt8(truncatingIfNeeded: 999)
            ])
        // mincore counts up-to-date pages only: the 1000 written ones, not the fallocated rest (the real kernel
        // reports 0 resident pages after a KEEP_SIZE fallocate; see the KVM differential tests).
        #expect(try setup.kernel.residentPages(address: address, length: simTiB) == 1000)
        #expect(try JSONEncoder().encode(setup.kernel.snapshot()).count < 16 << 20)
    }
}
