import GmemCore
import GmemKVM
import GmemSimulator
import Testing

extension KVMIntegration {
    /// Capability values and VM types of this host (docs/kernels.md: Linux 6.18 PVM, profile linux-6.18-pvm).
    @Suite struct Capabilities {
        @Test(.enabled(if: KVMAvailability.guestMemfd, KVMAvailability.guestMemfdReason))
        func releasedCapabilitiesMatchThePVMHost() throws {
            let kernel = try KVMKernel()
            let expected: [(cap: UInt32, value: Int64)] = [
                (231, 1),  // USER_MEMORY2
                (232, 1),  // MEMORY_FAULT_INFO
                (233, 0),  // MEMORY_ATTRIBUTES: generic attributes not built
                (234, 1),  // GUEST_MEMFD
                (235, 1),  // VM_TYPES: only the default type
                (236, 0),  // PRE_FAULT_MEMORY: shadow paging
                (244, 3),  // GUEST_MEMFD_FLAGS: MMAP | INIT_SHARED
            ]
            for (cap, value) in expected {
                #expect(try kernel.checkExtension(cap, vm: nil) == value, "capability \(cap)")
            }
        }

        @Test(.enabled(if: KVMAvailability.guestMemfd, KVMAvailability.guestMemfdReason))
        func vmScopeReportsTheSameGuestMemfdFlags() throws {
            let fixture = try KVMFixture()
            #expect(try fixture.kernel.checkExtension(244, vm: fixture.vm) == 3)
            #expect(try fixture.kernel.checkExtension(234, vm: fixture.vm) == 1)
        }

        @Test func unknownCapabilityIsZeroNotAnError() throws {
            let kernel = try KVMKernel()
            #expect(try kernel.checkExtension(9_999, vm: nil) == 0)
        }

        @Test(arguments: [UInt64(1), 2, 3, 4, 5])
        func confidentialVMTypesAreRejected(type: UInt64) throws {
            let kernel = try KVMKernel()
            do {
                let vm = try kernel.createVM(type: type)
                try kernel.close(vm)
                Issue.record("VM type \(type) was accepted")
            } catch {
                #expect(error.errno == Errno.einval)
                #expect(error.call == "KVM_CREATE_VM")
            }
        }

        @Test func missingDeviceIsReportedWithPathAndErrno() {
            let path = "/dev/kvm-does-not-exist"
            #expect(KVMKernel.canOpen(devicePath: path).available == false)
            #expect(KVMKernel.canOpen(devicePath: path).reason.contains(path))
            do {
                _ = try KVMKernel(devicePath: path)
                Issue.record("opening \(path) succeeded")
            } catch {
                #expect(error.errno == .enoent)
                #expect(error.description.contains(path))
                #expect(error.description.contains("ENOENT"))
            }
        }
    }
}
