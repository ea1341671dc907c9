import Foundation
import GmemCore
import GmemKVM
import GmemSimulator
import Testing

/// Whether these tests can reach a real kernel; the reason is shown when they are skipped.
enum KVMAvailability {
    static let probe = KVMKernel.canOpen()
    static var available: Bool { probe.available }
    static var skipReason: Comment { Comment(rawValue: "needs /dev/kvm — \(probe.reason)") }

    /// Whether the kernel has guest_memfd at all (KVM_CAP_GUEST_MEMFD at system scope; without it
    /// KVM_CREATE_GUEST_MEMFD is ENOTTY). Some kernels of the development machines are built without it.
    static let guestMemfd: Bool = {
        guard available, let kernel = try? KVMKernel() else { return false }
        return (try? kernel.checkExtension(KVMConstants.capGuestMemfd, vm: nil)) == 1
    }()
    static var guestMemfdReason: Comment { "needs guest_memfd in the kernel (KVM_CAP_GUEST_MEMFD is 0 on this host)" }
}

/// One VM on the real kernel plus everything a test opens on it; releases all of it on deinit (runner first,
/// then mappings, then fds, the VM last), so tests cannot leak fds or mappings into each other.
final class KVMFixture {
    let kernel: KVMKernel
    let vm: Int32
    private var fds: [Int32] = []
    private var mappings: [(address: UInt64, length: UInt64)] = []
    private var runner: GuestRunner?

    init(vmType: UInt64 = 0) throws(KernelError) {
        kernel = try KVMKernel()
        vm = try kernel.createVM(type: vmType)
    }

    deinit {
        runner = nil
        for mapping in mappings { try? kernel.munmap(address: mapping.address, length: mapping.length) }
        for fd in fds.reversed() { try? kernel.close(fd) }
        try? kernel.close(vm)
    }

    func guestMemfd(size: UInt64, flags: UInt64) throws(KernelError) -> Int32 {
        let fd = try kernel.createGuestMemfd(vm: vm, size: size, flags: flags)
        fds.append(fd)
        return fd
    }

    func memfd(size: UInt64) throws(KernelError) -> Int32 {
        let fd = try kernel.createMemfd(name: "gmemctl-kvmtests", size: size, hugePageSize: nil)
        fds.append(fd)
        return fd
    }

    func mapShared(fd: Int32, length: UInt64) throws(KernelError) -> UInt64 {
        let address = try kernel.mmap(fd: fd, length: length, offset: 0, shared: true, hugePageSize: nil)
        mappings.append((address, length))
        return address
    }

    /// Binds `[offset, offset+size)` of a guest_memfd at `gpa`, with `userspaceAddr` as the host view.
    func bindGuestMemfd(
        slot: UInt32, gpa: UInt64, size: UInt64, gmem: Int32, offset: UInt64, userspaceAddr: UInt64
    ) throws(KernelError) {
        try kernel.setUserMemoryRegion2(
            vm: vm,
            MemoryRegion2(
                slot: slot, flags: GuestMemfdFlag.memslotGuestMemfd, guestPhysAddr: gpa, memorySize: size,
                userspaceAddr: userspaceAddr, guestMemfdOffset: offset, guestMemfd: UInt32(gmem)))
    }

    func makeRunner() throws(GuestRunError) -> GuestRunner {
        let made = try GuestRunner(kernel: kernel, vm: vm)
        runner = made
        return made
    }
}

/// Flag values spelled as the kernel headers do (kept here so tests read like the uapi).
enum GuestMemfdFlag {
    static let mmap: UInt64 = 1 << 0
    static let initShared: UInt64 = 1 << 1
    static let memslotGuestMemfd: UInt32 = 1 << 2
    static let fallocKeepSize: Int32 = 0x01
    static let fallocPunchHole: Int32 = 0x02
}

/// The errno a throwing kernel call failed with (nil if it succeeded or failed otherwise).
func errnoOf(_ body: () throws -> Void) -> Errno? {
    do {
        try body()
        return nil
    } catch {
        return (error as? KernelError)?.errno
    }
}

/// Open fds of this process that are KVM or this suite's memfds (other suites may open unrelated fds).
func openKVMRelatedFds() throws -> Int {
    let entries = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
    return entries.filter { entry in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)") else {
            return false
        }
        return target.contains("kvm") || target.contains("gmemctl-kvmtests")
    }.count
}
