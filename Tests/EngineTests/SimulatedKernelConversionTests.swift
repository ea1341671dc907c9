import Config
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// docs/kernels.md: KVM_SET_MEMORY_ATTRIBUTES (per VM), [poc25] KVM_GMEM_CONVERT_*, and
/// [v8] KVM_SET_MEMORY_ATTRIBUTES2.
@Suite("SimulatedKernel conversions")
struct SimulatedKernelConversionTests {
    let privateAttribute = KVMConstants.memoryAttributePrivate

    // MARK: - KVM_SET_MEMORY_ATTRIBUTES

    @Test(
        "KVM_SET_MEMORY_ATTRIBUTES is ENOTTY where no generic memory attributes exist",
        arguments: [Profiles.linux618PVM, Profiles.gmemAttributes2])
    func vmAttributesMissing(profile: Capabilities) throws {
        let setup = SimSetup(profile)
        let vm = try setup.vm()
        #expect(
            simErrno {
                try setup.kernel.setMemoryAttributes(vm: vm, address: 0, size: simPage, attributes: 0, flags: 0)
            }
                == SimExpectedErrno.notty)
    }

    @Test(
        "KVM_SET_MEMORY_ATTRIBUTES input rules on a SW_PROTECTED VM", arguments: [Profiles.linux68, Profiles.linux618])
    func vmAttributesRules(profile: Capabilities) throws {
        let setup = SimSetup(profile)
        let vm = try setup.vm(.swProtected)
        let set = { (address: UInt64, size: UInt64, attributes: UInt64, flags: UInt64) in
            simErrno {
                try setup.kernel.setMemoryAttributes(
                    vm: vm, address: address, size: size, attributes: attributes, flags: flags)
            }
        }
        #expect(set(0, simPage, privateAttribute, 1) == SimExpectedErrno.inval)
        #expect(set(0, simPage, 1 << 4, 0) == SimExpectedErrno.inval)
        #expect(set(0, 0, privateAttribute, 0) == SimExpectedErrno.inval)
        #expect(set(UInt64.max - simPage + 1, 2 * simPage, privateAttribute, 0) == SimExpectedErrno.inval)
        #expect(set(100, simPage, privateAttribute, 0) == SimExpectedErrno.inval)
        #expect(set(0, simPage + 1, privateAttribute, 0) == SimExpectedErrno.inval)
        #expect(try setup.kernel.privateGPARanges(vm: vm).isEmpty, "every gfn starts shared")
        #expect(set(0, 8 * simPage, privateAttribute, 0) == nil)
        #expect(set(0, 8 * simPage, privateAttribute, 0) == nil, "same attributes again")
        #expect(set(2 * simPage, simPage, 0, 0) == nil)
        #expect(try setup.kernel.privateGPARanges(vm: vm) == [0..<2 * simPage, 3 * simPage..<8 * simPage])
    }

    @Test("PRIVATE on a default VM is EINVAL; attributes 0 are accepted")
    func vmAttributesDefaultVM() throws {
        let setup = SimSetup(Profiles.linux618)
        let vm = try setup.vm(.default)
        #expect(
            simErrno {
                try setup.kernel.setMemoryAttributes(
                    vm: vm, address: 0, size: simPage, attributes: privateAttribute, flags: 0)
            }
                == SimExpectedErrno.inval)
        #expect(
            simErrno {
                try setup.kernel.setMemoryAttributes(vm: vm, address: 0, size: simPage, attributes: 0, flags: 0)
            } == nil)
        #expect(
            simErrno {
                try setup.kernel.setMemoryAttributes(
                    vm: setup.kernel.deviceDescriptor, address: 0, size: simPage, attributes: 0, flags: 0)
            }
                == SimExpectedErrno.inval)
    }

    // MARK: - [poc25] KVM_GMEM_CONVERT_*

    @Test(
        "KVM_GMEM_CONVERT is ENOTTY without the POC ABI",
        arguments: [Profiles.linux618, Profiles.linux618PVM, Profiles.gmemAttributes2])
    func pocMissing(profile: Capabilities) throws {
        let setup = SimSetup(profile)
        let (_, gmem) = try setup.gmem(flags: 0)
        #expect(
            simErrno { try setup.kernel.gmemConvert(gmem: gmem, offset: 0, size: simPage, toPrivate: false) }
                == SimExpectedErrno.notty)
    }

    @Test("[poc25] size 0 is a no-op; unaligned or out-of-range ranges are EINVAL")
    func pocInputRules() throws {
        let setup = SimSetup(Profiles.gmemConvertPOC)
        let (_, gmem) = try setup.gmem(.swProtected, flags: pocSharedPrivate)
        let convert = { (offset: UInt64, size: UInt64) in
            simErrno { try setup.kernel.gmemConvert(gmem: gmem, offset: offset, size: size, toPrivate: false) }
        }
        #expect(convert(UInt64.max, 0) == nil)
        #expect(convert(100, simPage) == SimExpectedErrno.inval)
        #expect(convert(0, simPage + 1) == SimExpectedErrno.inval)
        #expect(convert(12 * simPage, 8 * simPage) == SimExpectedErrno.inval)
        #expect(convert(UInt64.max - simPage + 1, 2 * simPage) == SimExpectedErrno.inval)
        #expect(try setup.kernel.guestMemfdState(gmem: gmem).isUniform(0..<16 * simPage, value: .private))
    }

    @Test(
        "[poc25] converting in place: shared pages are host-accessible, private ones SIGBUS; SW_PROTECTED keeps contents"
    )
    func pocRoundTrip() throws {
        let setup = SimSetup(Profiles.gmemConvertPOC)
        let (_, gmem, address) = try setup.mappedGmem(.swProtected, flags: pocSharedPrivate)
        #expect(simFailure { try setup.kernel.read(address: address, count: 1) } == .sigbus)
        try setup.kernel.gmemConvert(gmem: gmem, offset: 0, size: 2 * simPage, toPrivate: false)
        try setup.kernel.write(address: address + simPage, bytes: [0x41])
        try setup.kernel.gmemConvert(gmem: gmem, offset: simPage, size: simPage, toPrivate: true)
        #expect(simFailure { try setup.kernel.read(address: address + simPage, count: 1) } == .sigbus)
        #expect(try setup.kernel.read(address: address, count: 1) == [0])
        try setup.kernel.gmemConvert(gmem: gmem, offset: simPage, size: simPage, toPrivate: false)
        #expect(try setup.kernel.read(address: address + simPage, count: 1) == [0x41])
    }

    @Test("[poc25] to-private with a pinned page is EAGAIN at that page and converts nothing; unpinned it succeeds")
    func pocPinned() throws {
        let setup = SimSetup(Profiles.gmemConvertPOC)
        let (_, gmem) = try setup.gmem(.swProtected, flags: KVMConstants.pocGmemFlagSupportShared)
        try setup.kernel.pin(gmem: gmem, offset: 5 * simPage)
        let error = simError {
            try setup.kernel.gmemConvert(gmem: gmem, offset: 2 * simPage, size: 8 * simPage, toPrivate: true)
        }
        #expect(error?.errno == SimExpectedErrno.again)
        #expect(error?.errorOffset == 5 * simPage)
        #expect(try setup.kernel.guestMemfdState(gmem: gmem).isUniform(0..<16 * simPage, value: .shared))
        // To-shared does not check refcounts; a range that avoids the pin converts.
        try setup.kernel.gmemConvert(gmem: gmem, offset: 0, size: 4 * simPage, toPrivate: true)
        try setup.kernel.unpin(gmem: gmem, offset: 5 * simPage)
        try setup.kernel.gmemConvert(gmem: gmem, offset: 2 * simPage, size: 8 * simPage, toPrivate: true)
        #expect(
            try setup.kernel.guestMemfdState(gmem: gmem).runs.map(\.range) == [
                0..<10 * simPage, 10 * simPage..<16 * simPage,
            ])
    }

    @Test("[poc25] TDX memory does not keep contents across conversion")
    func pocTDXLosesContents() throws {
        let setup = SimSetup(Profiles.gmemConvertPOC)
        let (_, gmem, address) = try setup.mappedGmem(.tdx, flags: KVMConstants.pocGmemFlagSupportShared)
        try setup.kernel.write(address: address, bytes: [9, 9])
        try setup.kernel.gmemConvert(gmem: gmem, offset: 0, size: simPage, toPrivate: true)
        try setup.kernel.gmemConvert(gmem: gmem, offset: 0, size: simPage, toPrivate: false)
        #expect(try setup.kernel.read(address: address, count: 2) == [0, 0])
    }

    // MARK: - [v8] KVM_SET_MEMORY_ATTRIBUTES2

    @Test(
        "KVM_SET_MEMORY_ATTRIBUTES2 is ENOTTY without in-place conversion",
        arguments: [Profiles.linux618, Profiles.linux618PVM, Profiles.gmemConvertPOC])
    func attributes2Missing(profile: Capabilities) throws {
        let setup = SimSetup(profile)
        let type = profile.vmTypes.last?.vmType ?? .default
        let (_, gmem) = try setup.gmem(type, flags: 0)
        #expect(
            simErrno {
                try setup.kernel.setMemoryAttributes2(gmem: gmem, offset: 0, size: simPage, attributes: 0, flags: 0)
            }
                == SimExpectedErrno.notty)
    }

    @Test("[v8] input rules: default VM, flags, attributes, size 0, wrap, misalignment and beyond EOF are EINVAL")
    func attributes2Rules() throws {
        let setup = SimSetup(Profiles.gmemAttributes2)
        let (_, plainGmem) = try setup.gmem(.default, flags: upstreamMmapShared)
        #expect(
            simErrno {
                try setup.kernel.setMemoryAttributes2(
                    gmem: plainGmem, offset: 0, size: simPage, attributes: 0, flags: 0)
            }
                == SimExpectedErrno.inval)
        let (vm, gmem) = try setup.gmem(.swProtected, flags: upstreamMmapShared)
        let set = { (offset: UInt64, size: UInt64, attributes: UInt64, flags: UInt64) in
            simErrno {
                try setup.kernel.setMemoryAttributes2(
                    gmem: gmem, offset: offset, size: size, attributes: attributes, flags: flags)
            }
        }
        #expect(set(0, simPage, privateAttribute, 1) == SimExpectedErrno.inval)
        #expect(set(0, simPage, 1, 0) == SimExpectedErrno.inval)
        #expect(set(0, 0, privateAttribute, 0) == SimExpectedErrno.inval)
        #expect(set(UInt64.max - simPage + 1, 2 * simPage, privateAttribute, 0) == SimExpectedErrno.inval)
        #expect(set(1, simPage, privateAttribute, 0) == SimExpectedErrno.inval)
        #expect(set(16 * simPage, simPage, privateAttribute, 0) == SimExpectedErrno.inval)
        #expect(set(15 * simPage, 2 * simPage, privateAttribute, 0) == SimExpectedErrno.inval)
        #expect(set(0, simPage, 0, 0) == nil, "already shared")
        #expect(
            simErrno {
                try setup.kernel.setMemoryAttributes2(gmem: vm, offset: 0, size: simPage, attributes: 0, flags: 0)
            }
                == SimExpectedErrno.notty)
    }

    @Test("[v8] newly private pages SIGBUS; a pin gives EAGAIN at its offset; punch-hole keeps the state and zeroes")
    func attributes2Semantics() throws {
        let setup = SimSetup(Profiles.gmemAttributes2)
        let (_, gmem, address) = try setup.mappedGmem(.swProtected, flags: upstreamMmapShared)
        try setup.kernel.write(address: address + 3 * simPage, bytes: [0x42])
        try setup.kernel.pin(gmem: gmem, offset: 7 * simPage)
        let error = simError {
            try setup.kernel.setMemoryAttributes2(
                gmem: gmem, offset: 0, size: 8 * simPage, attributes: privateAttribute, flags: 0)
        }
        #expect(error?.errno == SimExpectedErrno.again && error?.errorOffset == 7 * simPage)
        #expect(try setup.kernel.read(address: address + 3 * simPage, count: 1) == [0x42], "nothing converted")
        try setup.kernel.setMemoryAttributes2(
            gmem: gmem, offset: 0, size: 4 * simPage, attributes: privateAttribute, flags: 0)
        #expect(simFailure { try setup.kernel.read(address: address + 3 * simPage, count: 1) } == .sigbus)
        try setup.kernel.fallocate(
            fd: gmem, mode: KVMConstants.fallocKeepSize | KVMConstants.fallocPunchHole, offset: 0, length: 16 * simPage)
        #expect(try setup.kernel.guestMemfdState(gmem: gmem).runs.map(\.value) == [.private, .shared])
        // Punching freed the pinned page, so its pin is gone and the range converts.
        try setup.kernel.setMemoryAttributes2(
            gmem: gmem, offset: 0, size: 8 * simPage, attributes: privateAttribute, flags: 0)
        try setup.kernel.setMemoryAttributes2(gmem: gmem, offset: 0, size: 16 * simPage, attributes: 0, flags: 0)
        #expect(try setup.kernel.read(address: address + 3 * simPage, count: 1) == [0], "punched page reads zeros")
    }

    @Test("pin refuses private pages and bad offsets")
    func pinHookErrors() throws {
        let setup = SimSetup(Profiles.gmemAttributes2)
        let (vm, gmem) = try setup.gmem(.swProtected, flags: KVMConstants.gmemFlagMmap)
        #expect(throws: SimulatedHookError.pagePrivate(0)) { try setup.kernel.pin(gmem: gmem, offset: 0) }
        #expect(throws: SimulatedHookError.unalignedOffset(5)) { try setup.kernel.pin(gmem: gmem, offset: 5) }
        #expect(throws: SimulatedHookError.beyondEndOfFile(offset: 16 * simPage, size: 16 * simPage)) {
            try setup.kernel.pin(gmem: gmem, offset: 16 * simPage)
        }
        #expect(throws: SimulatedHookError.notAGuestMemfd(vm)) { try setup.kernel.pin(gmem: vm, offset: 0) }
    }
}
