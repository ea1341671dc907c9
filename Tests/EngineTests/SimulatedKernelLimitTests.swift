import Config
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// Kernel limits and the rules of the in-place series the simulator models (docs/kernels.md).
@Suite("SimulatedKernel: limits and in-place mode")
struct SimulatedKernelLimitTests {
    @Test(
        "a slot ending at the maximum GFN binds; one page beyond is EINVAL and leaves the gmem range unbound",
        arguments: [Profiles.linux618PVM, Profiles.linux618, Profiles.linux74InPlace])
    func maximumGFN(profile: Capabilities) throws {
        let setup = SimSetup(profile)
        let (vm, gmem) = try setup.gmem(
            size: 2 * simGiB, flags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared)
        let limit = profile.gpaLimit
        let beyond = SimSetup.gmemRegion(slot: 0, gpa: limit - simGiB + simPage, size: simGiB, gmem: gmem)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, beyond) } == .einval)
        // The failed bind was undone: the same gmem range binds elsewhere.
        try setup.kernel.setUserMemoryRegion2(
            vm: vm, SimSetup.gmemRegion(slot: 0, gpa: limit - simGiB, size: simGiB, gmem: gmem))
        try setup.kernel.setUserMemoryRegion2(
            vm: vm,
            SimSetup.gmemRegion(
                slot: 1, gpa: 1 << 48, size: simGiB, gmem: gmem,
                offset: simGiB))
        #expect(try setup.kernel.memslots(vm: vm).count == 2)
    }

    @Test(
        "a 1 GiB slot at 2^52 is EINVAL on every profile (the limit this host's kernel showed)", arguments: Profiles.all
    )
    func slotAt2To52(profile: Capabilities) throws {
        #expect(profile.gpaLimit <= 1 << 52)
        guard let type = profile.vmTypes.first(where: \.guestMemfd) else { return }
        let setup = SimSetup(profile)
        let vm = try setup.vm(type.vmType)
        let gmem = try setup.kernel.createGuestMemfd(vm: vm, size: simGiB, flags: 0)
        #expect(
            simErrno {
                try setup.kernel.setUserMemoryRegion2(
                    vm: vm, SimSetup.gmemRegion(gpa: 1 << 52, size: simGiB, gmem: gmem))
            } == .einval)
    }

    @Test("KVM_SET_MEMORY_ATTRIBUTES2: any nonzero reserved word is EINVAL, before the VM-type check")
    func reservedWords() throws {
        let setup = SimSetup(Profiles.linux74InPlace)
        let (_, gmem) = try setup.gmem(.swProtected, flags: KVMConstants.gmemFlagMmap)
        for index in 0..<SimulatedKernelState.attributes2ReservedWords {
            var reserved = [UInt64](repeating: 0, count: SimulatedKernelState.attributes2ReservedWords)
            reserved[index] = 1
            #expect(
                simErrno {
                    try setup.kernel.setMemoryAttributes2(
                        gmem: gmem, offset: 0, size: simPage, attributes: 0,
                        flags: 0, reserved: reserved)
                } == .einval, "reserved[\(index)]")
        }
        // All words zero: the same call succeeds, so the EINVALs above came from reserved[].
        #expect(
            simErrno {
                try setup.kernel.setMemoryAttributes2(gmem: gmem, offset: 0, size: simPage, attributes: 0, flags: 0)
            } == nil)
    }

    @Test("KVM_SET_MEMORY_ATTRIBUTES2: a failed preallocation is ENOMEM with error_offset = offset and changes nothing")
    func preallocationFailure() throws {
        let setup = SimSetup(Profiles.linux74InPlace)
        let (_, gmem) = try setup.gmem(.swProtected, flags: KVMConstants.gmemFlagMmap)
        setup.kernel.failAttributePreallocation()
        // Already in the target state: returns before any allocation.
        #expect(
            simErrno {
                try setup.kernel.setMemoryAttributes2(
                    gmem: gmem, offset: 0, size: simPage,
                    attributes: KVMConstants.memoryAttributePrivate, flags: 0)
            } == nil)
        let error = simError {
            try setup.kernel.setMemoryAttributes2(
                gmem: gmem, offset: 3 * simPage, size: simPage, attributes: 0, flags: 0)
        }
        #expect(error?.errno == .enomem && error?.errorOffset == 3 * simPage)
        #expect(try setup.kernel.guestMemfdState(gmem: gmem).isUniform(0..<16 * simPage, value: .private))
        try setup.kernel.setMemoryAttributes2(gmem: gmem, offset: 3 * simPage, size: simPage, attributes: 0, flags: 0)
    }

    @Test("KVM_SET_MEMORY_ATTRIBUTES2 is ENOTTY on linux-7.4 (mode off) and EINVAL on a default VM in mode on")
    func modes() throws {
        let off = SimSetup(Profiles.linux74)
        let (_, offGmem) = try off.gmem(.swProtected, flags: KVMConstants.gmemFlagMmap)
        #expect(
            simErrno {
                try off.kernel.setMemoryAttributes2(gmem: offGmem, offset: 0, size: simPage, attributes: 0, flags: 0)
            } == .enotty)
        let on = SimSetup(Profiles.linux74InPlace)
        let (_, defaultGmem) = try on.gmem(.default, flags: KVMConstants.gmemFlagMmap)
        #expect(
            simErrno {
                try on.kernel.setMemoryAttributes2(gmem: defaultGmem, offset: 0, size: simPage, attributes: 0, flags: 0)
            } == .einval)
        // INIT_SHARED is accepted for a CoCo VM in mode on, refused on 7.4 mode off.
        #expect(
            simErrno { try on.gmem(.swProtected, flags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared) }
                == nil)
        #expect(
            simErrno { try off.gmem(.swProtected, flags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared) }
                == .einval)
        #expect(on.kernel.capabilities.systemExtension(KVMConstants.capMemoryAttributes) == 0)
        #expect(on.kernel.capabilities.systemExtension(KVMConstants.capGuestMemfdMemoryAttributes) == 8)
    }

    /// A legacy slot (guest_memfd flags 0 plus a separate shared backing): in mode on, the guest reads the
    /// guest_memfd even where the host wrote the shared backing, on a default VM as on a private one
    /// (`kvm_gmem_prepare_memory_region` looks at the parameter only); otherwise it reads the backing.
    @Test(
        "in-place mode: a legacy slot's shared backing is invisible to the guest, whatever the VM type",
        arguments: [VMType.swProtected, .default])
    func guestMemfdOnlySlots(type: VMType) throws {
        for (profile, seesBacking) in [
            (Profiles.linux74InPlace, false), (Profiles.linux74, true), (Profiles.linux618, true),
        ] {
            let setup = SimSetup(profile)
            let (vm, gmem) = try setup.gmem(type, flags: 0)
            let backing = try setup.kernel.mmap(
                fd: nil, length: 16 * simPage, offset: 0, shared: true, hugePageSize: nil)
            try setup.kernel.setUserMemoryRegion2(vm: vm, SimSetup.gmemRegion(gmem: gmem, userspaceAddr: backing))
            try setup.kernel.write(address: backing, bytes: [0x5a])
            let source = try setup.kernel.guestFaultSource(vm: vm, gpa: 0)
            #expect(
                source == (seesBacking ? .userspace(address: backing) : .guestMemfd(offset: 0)),
                "\(profile.name) \(type)")
            #expect(
                try setup.kernel.guestRead(vm: vm, gpa: 0, count: 1) == [seesBacking ? 0x5a : 0],
                "\(profile.name) \(type)")
        }
    }
}

/// Linux 7.4 splits binding a guest_memfd range into prepare and commit (`kvm_gmem_commit_memory_region`):
/// a range already bound to another slot is EEXIST there, EINVAL before 7.4 (`kvm_gmem_bind`).
@Suite("SimulatedKernel: guest_memfd binding across generations")
struct SimulatedKernelBindingTests {
    @Test(
        "binding a guest_memfd range twice: EINVAL up to 7.3, EEXIST on 7.4 in either mode",
        arguments: [
            (Profiles.linux618, Errno.einval), (Profiles.linux611, Errno.einval), (Profiles.linux74, Errno.eexist),
            (Profiles.linux74InPlace, Errno.eexist),
        ] as [(Capabilities, Errno)])
    func doubleBind(profile: Capabilities, errno: Errno) throws {
        let setup = SimSetup(profile)
        let (vm, gmem) = try setup.gmem(.swProtected, size: 16 * simPage, flags: 0)
        try setup.kernel.setUserMemoryRegion2(
            vm: vm, SimSetup.gmemRegion(slot: 0, gpa: 0, size: 8 * simPage, gmem: gmem))
        let again = SimSetup.gmemRegion(slot: 1, gpa: 1 << 32, size: 8 * simPage, gmem: gmem, offset: 4 * simPage)
        #expect(simErrno { try setup.kernel.setUserMemoryRegion2(vm: vm, again) } == errno)
    }
}

@Suite("SimulatedKernel: error_offset on input")
struct SimulatedKernelErrorOffsetInputTests {
    @Test("the 2025 POC refuses a nonzero error_offset on input; 7.4's ATTRIBUTES2 does not read it")
    func errorOffsetOnInput() throws {
        let poc = SimSetup(Profiles.gmemConvertPOC)
        let (_, pocGmem) = try poc.gmem(.swProtected, flags: pocSharedPrivate)
        #expect(
            simErrno {
                try poc.kernel.gmemConvert(gmem: pocGmem, offset: 0, size: simPage, toPrivate: false, errorOffset: 8)
            } == .einval)
        #expect(
            simErrno {
                try poc.kernel.gmemConvert(gmem: pocGmem, offset: 0, size: simPage, toPrivate: false, errorOffset: 0)
            } == nil)
        // KVM_SET_MEMORY_ATTRIBUTES2 has no input error_offset in its interface: whatever the caller left
        // there is overwritten on failure only, so a conversion after a failed one succeeds as usual.
        let inPlace = SimSetup(Profiles.linux74InPlace)
        let (_, gmem) = try inPlace.gmem(.swProtected, flags: KVMConstants.gmemFlagMmap)
        inPlace.kernel.failAttributePreallocation()
        #expect(
            simError {
                try inPlace.kernel.setMemoryAttributes2(
                    gmem: gmem, offset: simPage, size: simPage, attributes: 0, flags: 0)
            }?
            .errorOffset == simPage)
        #expect(
            simErrno {
                try inPlace.kernel.setMemoryAttributes2(
                    gmem: gmem, offset: simPage, size: simPage, attributes: 0, flags: 0)
            } == nil)
    }
}
