import Config
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// KVM_SET_USER_MEMORY_REGION2 in the kernel's check order (docs/kernels.md, "Limits of every generation").
@Suite("SimulatedKernel memslots")
struct SimulatedKernelMemslotTests {
    let gmemFlag = KVMConstants.memGuestMemfd

    /// A PVM kernel with a default VM and a 16-page MMAP|INIT_SHARED gmem.
    func pvmWithGmem() throws -> (SimSetup, vm: Int32, gmem: Int32) {
        let setup = SimSetup(Profiles.linux618PVM)
        let (vm, gmem) = try setup.gmem(flags: upstreamMmapShared)
        return (setup, vm, gmem)
    }

    @Test("GUEST_MEMFD with LOG_DIRTY_PAGES or READONLY is EINVAL; READONLY alone is fine")
    func flagCombinations() throws {
        let (setup, vm, gmem) = try pvmWithGmem()
        for extra in [KVMConstants.memLogDirtyPages, KVMConstants.memReadonly, 1 << 3] {
            let region = SimSetup.gmemRegion(gmem: gmem, flags: gmemFlag | extra)
            #expect(
                simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, region) } == SimExpectedErrno.inval,
                "flags \(extra)")
        }
        let readonly = MemoryRegion2(
            slot: 1, flags: KVMConstants.memReadonly, guestPhysAddr: 1 << 32, memorySize: simPage,
            userspaceAddr: 0x10_0000)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, readonly) } == nil)
    }

    @Test("READONLY is refused on VMs with protected state (SNP, TDX)")
    func readonlyOnProtectedVMs() throws {
        let setup = SimSetup(Profiles.linux618)
        for (type, expected) in [
            (VMType.swProtected, Errno?.none), (.sevSnp, SimExpectedErrno.inval), (.tdx, SimExpectedErrno.inval),
        ] {
            let vm = try setup.vm(type)
            let region = MemoryRegion2(
                slot: 0, flags: KVMConstants.memReadonly, guestPhysAddr: 0, memorySize: simPage,
                userspaceAddr: 0x10_0000)
            #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, region) } == expected, "\(type)")
        }
    }

    @Test("[6.8] GUEST_MEMFD on a default VM is EINVAL; on a SW_PROTECTED VM it binds")
    func linux68DefaultVM() throws {
        let setup = SimSetup(Profiles.linux68)
        let (plainVM, plainGmem) = try setup.gmem(.default, flags: 0)
        #expect(
            simErrno { try setup.kernel.setUserMemoryRegion2(vm: plainVM, SimSetup.gmemRegion(gmem: plainGmem)) }
                == SimExpectedErrno.inval)
        let (vm, gmem) = try setup.gmem(.swProtected, flags: 0)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, SimSetup.gmemRegion(gmem: gmem)) } == nil)
    }

    @Test("unaligned size, GPA, userspace address or gmem offset is EINVAL; userspace address 0 is fine")
    func alignment() throws {
        let (setup, vm, gmem) = try pvmWithGmem()
        let bad = [
            SimSetup.gmemRegion(size: simPage + 1, gmem: gmem),
            SimSetup.gmemRegion(gpa: 512, gmem: gmem),
            SimSetup.gmemRegion(gmem: gmem, userspaceAddr: 0x1000_0100),
            SimSetup.gmemRegion(size: simPage, gmem: gmem, offset: 100),
            SimSetup.gmemRegion(gmem: gmem, userspaceAddr: SimMath.taskSizeMax),
        ]
        for region in bad {
            #expect(
                simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, region) } == SimExpectedErrno.inval,
                "\(region)")
        }
        #expect(
            simErrno {
                try setup.kernel.setUserMemoryRegion2(vm: vm, SimSetup.gmemRegion(gmem: gmem, userspaceAddr: 0))
            } == nil)
    }

    @Test(
        "slot id >= 32764 or address space >= 1 is EINVAL",
        arguments: [(UInt32(32764), true), (32763, false), (1 << 16, true), (0xffff, true)])
    func slotLimits(slot: UInt32, fails: Bool) throws {
        let (setup, vm, gmem) = try pvmWithGmem()
        let result = simErrno {
            try setup.kernel.setUserMemoryRegion2(vm: vm, SimSetup.gmemRegion(slot: slot, gmem: gmem))
        }
        #expect(result == (fails ? SimExpectedErrno.inval : nil))
    }

    @Test("deleting a missing slot is EINVAL; re-issuing a gmem slot, even unchanged, is EINVAL")
    func deleteAndImmutability() throws {
        let (setup, vm, gmem) = try pvmWithGmem()
        let region = SimSetup.gmemRegion(size: 4 * simPage, gmem: gmem)
        var deletion = region
        deletion.memorySize = 0
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, deletion) } == SimExpectedErrno.inval)
        try setup.kernel.setUserMemoryRegion2(vm: vm, region)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, region) } == SimExpectedErrno.inval)
        var moved = region
        moved.guestPhysAddr = 1 << 32
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, moved) } == SimExpectedErrno.inval)
        try setup.kernel.setUserMemoryRegion2(vm: vm, deletion)
        #expect(try setup.kernel.memslots(vm: vm).isEmpty)
    }

    @Test("a new slot overlapping another GPA range is EEXIST, checked before the binding (EBADF)")
    func overlap() throws {
        let (setup, vm, gmem) = try pvmWithGmem()
        try setup.kernel.setUserMemoryRegion2(
            vm: vm, SimSetup.gmemRegion(slot: 0, gpa: 0, size: 4 * simPage, gmem: gmem))
        let overlapping = SimSetup.gmemRegion(
            slot: 1, gpa: 3 * simPage, size: 4 * simPage, gmem: gmem, offset: 4 * simPage)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, overlapping) } == SimExpectedErrno.exist)
        var badFd = overlapping
        badFd.guestMemfd = 4242
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, badFd) } == SimExpectedErrno.exist)
        // Slot-id checks come before the overlap check.
        var badSlot = overlapping
        badSlot.slot = 40000
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, badSlot) } == SimExpectedErrno.inval)
        let adjacent = SimSetup.gmemRegion(
            slot: 1, gpa: 4 * simPage, size: 4 * simPage, gmem: gmem, offset: 4 * simPage)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, adjacent) } == nil)
    }

    @Test("binding: no such fd is EBADF; a memfd, a VM fd or another VM's gmem is EINVAL")
    func bindingTargets() throws {
        let (setup, vm, _) = try pvmWithGmem()
        let (_, foreignGmem) = try setup.gmem(flags: 0)
        let memfd = try setup.kernel.createMemfd(name: "shared", size: 16 * simPage, hugePageSize: nil)
        #expect(
            simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, SimSetup.gmemRegion(gmem: 4242)) }
                == SimExpectedErrno.badf)
        for target in [memfd, vm, foreignGmem, setup.kernel.deviceDescriptor] {
            #expect(
                simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, SimSetup.gmemRegion(gmem: target)) }
                    == SimExpectedErrno.inval)
        }
    }

    @Test("offset + size beyond the gmem is EINVAL; a bound range cannot be bound again until its slot is deleted")
    func bindingRanges() throws {
        let (setup, vm, gmem) = try pvmWithGmem()
        let tooFar = SimSetup.gmemRegion(size: 4 * simPage, gmem: gmem, offset: 13 * simPage)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, tooFar) } == SimExpectedErrno.inval)
        let first = SimSetup.gmemRegion(slot: 0, gpa: 0, size: 8 * simPage, gmem: gmem, offset: 0)
        try setup.kernel.setUserMemoryRegion2(vm: vm, first)
        let second = SimSetup.gmemRegion(slot: 1, gpa: 1 << 32, size: 4 * simPage, gmem: gmem, offset: 6 * simPage)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, second) } == SimExpectedErrno.inval)
        var deletion = first
        deletion.memorySize = 0
        try setup.kernel.setUserMemoryRegion2(vm: vm, deletion)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, second) } == nil)
    }

    @Test("pads and a gmem fd without the GUEST_MEMFD flag are ignored")
    func ignoredFields() throws {
        let (setup, vm, _) = try pvmWithGmem()
        let plain = MemoryRegion2(
            slot: 0, flags: 0, guestPhysAddr: 0, memorySize: simPage, userspaceAddr: 0x10_0000,
            guestMemfdOffset: 3, guestMemfd: 4242)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, plain) } == nil)
    }

    @Test("closing the gmem keeps the slot (unbound); after deleting it the slot id and range are free")
    func closeKeepsSlot() throws {
        let (setup, vm, gmem) = try pvmWithGmem()
        let region = SimSetup.gmemRegion(gmem: gmem)
        try setup.kernel.setUserMemoryRegion2(vm: vm, region)
        #expect(try setup.kernel.isBound(vm: vm, slot: 0))
        try setup.kernel.close(gmem)
        #expect(try setup.kernel.memslots(vm: vm).count == 1)
        #expect(try !setup.kernel.isBound(vm: vm, slot: 0))
        var deletion = region
        deletion.memorySize = 0
        try setup.kernel.setUserMemoryRegion2(vm: vm, deletion)
        let fresh = try setup.kernel.createGuestMemfd(vm: vm, size: 16 * simPage, flags: 0)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, SimSetup.gmemRegion(gmem: fresh)) } == nil)
    }

    @Test("non-gmem slots: identical re-issue is 0, a move checks overlap, size or address changes are EINVAL")
    func legacySlotModification() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let vm = try setup.vm()
        let base = MemoryRegion2(slot: 0, flags: 0, guestPhysAddr: 0, memorySize: 4 * simPage, userspaceAddr: 0x10_0000)
        let other = MemoryRegion2(
            slot: 1, flags: 0, guestPhysAddr: 1 << 32, memorySize: 4 * simPage, userspaceAddr: 0x20_0000)
        try setup.kernel.setUserMemoryRegion2(vm: vm, base)
        try setup.kernel.setUserMemoryRegion2(vm: vm, other)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, base) } == nil)
        var onto = base
        onto.guestPhysAddr = (1 << 32) + simPage
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, onto) } == SimExpectedErrno.exist)
        var resized = base
        resized.memorySize = 8 * simPage
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, resized) } == SimExpectedErrno.inval)
        var moved = base
        moved.guestPhysAddr = 1 << 33
        moved.flags = KVMConstants.memLogDirtyPages
        try setup.kernel.setUserMemoryRegion2(vm: vm, moved)
        #expect(try setup.kernel.memslots(vm: vm).first == moved)
    }
}
