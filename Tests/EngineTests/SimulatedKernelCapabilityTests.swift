import Config
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// Capabilities, VM creation and KVM_CREATE_GUEST_MEMFD per generation (docs/kernels.md, "Generations").
@Suite("SimulatedKernel capabilities and creation")
struct SimulatedKernelCapabilityTests {
    @Test("PVM host answers CHECK_EXTENSION as probed (docs/kernels.md, linux-6.18-pvm)")
    func pvmSystemCapabilities() throws {
        let kernel = SimulatedKernel(capabilities: Profiles.linux618PVM)
        let expected: [UInt32: Int64] = [
            231: 1, 232: 1, 233: 0, 234: 1, 235: 1, 236: 0, 244: 3, 10: 32764, 999: 0, 250: 0,
        ]
        for (cap, value) in expected {
            #expect(try kernel.checkExtension(cap, vm: nil) == value, "cap \(cap)")
            #expect(try kernel.checkExtension(cap, vm: kernel.deviceDescriptor) == value, "cap \(cap) on /dev/kvm fd")
        }
        let vm = try kernel.createVM(type: 0)
        #expect(try kernel.checkExtension(244, vm: vm) == 3)
        #expect(try kernel.checkExtension(233, vm: vm) == 0)
        #expect(try kernel.checkExtension(12345, vm: vm) == 0)
    }

    @Test("6.18: 233 and 244 depend on whether the VM has private memory")
    func linux618PerVMType() throws {
        let setup = SimSetup(Profiles.linux618)
        #expect(try setup.kernel.checkExtension(233, vm: nil) == 8)
        #expect(try setup.kernel.checkExtension(244, vm: nil) == 3)
        #expect(try setup.kernel.checkExtension(235, vm: nil) == 0b11_0011)
        let plain = try setup.vm(.default)
        #expect(try setup.kernel.checkExtension(233, vm: plain) == 0)
        #expect(try setup.kernel.checkExtension(244, vm: plain) == 3)
        #expect(try setup.kernel.checkExtension(234, vm: plain) == 1)
        for type in [VMType.swProtected, .sevSnp, .tdx] {
            let vm = try setup.vm(type)
            #expect(try setup.kernel.checkExtension(233, vm: vm) == 8, "\(type)")
            #expect(try setup.kernel.checkExtension(244, vm: vm) == 1, "\(type)")
        }
    }

    @Test("[6.8] CAP_GUEST_MEMFD is 0 on a default VM, 1 at system scope and on private VMs")
    func linux68GuestMemfdCap() throws {
        let setup = SimSetup(Profiles.linux68)
        #expect(try setup.kernel.checkExtension(234, vm: nil) == 1)
        #expect(try setup.kernel.checkExtension(234, vm: try setup.vm(.default)) == 0)
        #expect(try setup.kernel.checkExtension(234, vm: try setup.vm(.swProtected)) == 1)
        #expect(try setup.kernel.checkExtension(244, vm: try setup.vm(.swProtected)) == 0)
    }

    @Test("[v8] cap 250 is 8 only where the VM has private memory; 233 reports 0")
    func attributes2Caps() throws {
        let setup = SimSetup(Profiles.gmemAttributes2)
        #expect(try setup.kernel.checkExtension(250, vm: nil) == 8)
        #expect(try setup.kernel.checkExtension(250, vm: try setup.vm(.swProtected)) == 8)
        #expect(try setup.kernel.checkExtension(250, vm: try setup.vm(.default)) == 0)
        #expect(try setup.kernel.checkExtension(233, vm: try setup.vm(.swProtected)) == 0)
    }

    @Test("CHECK_EXTENSION on a guest_memfd is ENOTTY, on a closed fd EBADF")
    func checkExtensionOnWrongFds() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let (vm, gmem) = try setup.gmem(flags: 0)
        #expect(simErrno { try setup.kernel.checkExtension(231, vm: gmem) } == SimExpectedErrno.notty)
        try setup.kernel.close(vm)
        #expect(simErrno { try setup.kernel.checkExtension(231, vm: vm) } == SimExpectedErrno.badf)
    }

    @Test("CREATE_VM with a type outside the VM_TYPES mask is EINVAL", arguments: Profiles.all)
    func createVMTypes(profile: Capabilities) throws {
        let kernel = SimulatedKernel(capabilities: profile)
        let mask = try kernel.checkExtension(235, vm: nil)
        for type in UInt64(0)..<40 {
            let creatable = type < 32 && mask & (1 << Int64(type)) != 0
            let result = simErrno { try kernel.createVM(type: type) }
            #expect(result == (creatable ? nil : SimExpectedErrno.inval), "type \(type)")
        }
        #expect(simErrno { try kernel.createVM(type: UInt64.max) } == SimExpectedErrno.inval)
    }

    @Test(
        "CREATE_GUEST_MEMFD: a flag bit outside CAP 244 is EINVAL, inside it succeeds",
        arguments: [Profiles.linux618PVM, Profiles.linux618, Profiles.gmemAttributes2])
    func guestMemfdFlagBits(profile: Capabilities) throws {
        let setup = SimSetup(profile)
        for type in profile.vmTypes.map(\.vmType) {
            let vm = try setup.vm(type)
            let supported = UInt64(try setup.kernel.checkExtension(244, vm: vm))
            for bit in UInt64(0)..<64 {
                let flags: UInt64 = 1 << bit
                let result = simErrno { try setup.kernel.createGuestMemfd(vm: vm, size: simPage, flags: flags) }
                #expect(result == (supported & flags != 0 ? nil : SimExpectedErrno.inval), "\(type) bit \(bit)")
            }
        }
    }

    @Test("[6.8] any guest_memfd flag is EINVAL; flags 0 works even on a default VM")
    func linux68Flags() throws {
        let setup = SimSetup(Profiles.linux68)
        let vm = try setup.vm(.default)
        #expect(
            simErrno { try setup.kernel.createGuestMemfd(vm: vm, size: simPage, flags: 1) } == SimExpectedErrno.inval)
        #expect(simErrno { try setup.kernel.createGuestMemfd(vm: vm, size: simPage, flags: 0) } == nil)
    }

    @Test(
        "CREATE_GUEST_MEMFD sizes: 0, unaligned and negative are EINVAL",
        arguments: [UInt64(0), 1, 4095, 4097, simPage + 512, 1 << 63, UInt64.max - 4095])
    func guestMemfdInvalidSizes(size: UInt64) throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let vm = try setup.vm()
        #expect(simErrno { try setup.kernel.createGuestMemfd(vm: vm, size: size, flags: 0) } == SimExpectedErrno.inval)
    }

    @Test("CREATE_GUEST_MEMFD on /dev/kvm is EINVAL, on a gmem ENOTTY, on a closed fd EBADF")
    func guestMemfdOnWrongFds() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let (vm, gmem) = try setup.gmem(flags: 0)
        #expect(
            simErrno { try setup.kernel.createGuestMemfd(vm: setup.kernel.deviceDescriptor, size: simPage, flags: 0) }
                == SimExpectedErrno.inval)
        #expect(
            simErrno { try setup.kernel.createGuestMemfd(vm: gmem, size: simPage, flags: 0) } == SimExpectedErrno.notty)
        try setup.kernel.close(vm)
        #expect(
            simErrno { try setup.kernel.createGuestMemfd(vm: vm, size: simPage, flags: 0) } == SimExpectedErrno.badf)
    }

    @Test("Each guest_memfd gets a distinct fd; the VM outlives its fd while a gmem is open")
    func guestMemfdLifetime() throws {
        let setup = SimSetup(Profiles.linux618PVM)
        let (vm, first) = try setup.gmem(flags: 0)
        let second = try setup.kernel.createGuestMemfd(vm: vm, size: 2 * simPage, flags: 3)
        #expect(first != second && first >= 1000 && second >= 1000)
        try setup.kernel.close(vm)
        #expect(setup.kernel.footprint.vms == 1)
        try setup.kernel.close(first)
        #expect(setup.kernel.footprint.vms == 1)
        try setup.kernel.close(second)
        #expect(setup.kernel.footprint.vms == 0)
        #expect(simErrno { try setup.kernel.close(second) } == SimExpectedErrno.badf)
    }

    @Test("[poc25] INIT_PRIVATE needs SUPPORT_SHARED; HUGETLB takes an offered page size and aligned sizes")
    func pocFlags() throws {
        let setup = SimSetup(Profiles.gmemConvertPOC)
        let vm = try setup.vm(.swProtected)
        let create = { (size: UInt64, flags: UInt64) in
            simErrno { try setup.kernel.createGuestMemfd(vm: vm, size: size, flags: flags) }
        }
        #expect(create(simPage, KVMConstants.pocGmemFlagInitPrivate) == SimExpectedErrno.inval)
        #expect(create(simPage, pocSharedPrivate) == nil)
        let hugetlb2M = KVMConstants.pocGmemFlagHugetlb | (21 << 58)
        #expect(create(2 * simMiB, hugetlb2M) == nil)
        #expect(create(simPage, hugetlb2M) == SimExpectedErrno.inval)
        #expect(create(2 * simMiB, KVMConstants.pocGmemFlagHugetlb | (22 << 58)) == SimExpectedErrno.inval)
        #expect(create(2 * simMiB, 21 << 58) == SimExpectedErrno.inval)
    }
}
