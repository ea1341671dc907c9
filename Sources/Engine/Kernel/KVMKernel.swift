import CKVM
import GmemCore

/// The real kernel: `KernelInterface` over `/dev/kvm` through CKVM. Every failure carries the errno the
/// kernel returned, with the arguments of the call rendered readably. Owns the `/dev/kvm` fd (closed on
/// deinit); every other fd it hands out belongs to the caller, who closes it with `close(_:)`.
public final class KVMKernel: KernelInterface {
    /// Every call is a syscall on its own objects, and the kernel keeps no state of its own here.
    public var allowsConcurrentCalls: Bool { true }
    public static let defaultDevicePath = "/dev/kvm"

    /// The open `/dev/kvm` fd (system scope for capabilities, VM creation, vCPU mmap size, CPUID).
    public let systemFd: Int32
    public let devicePath: String
    public let pageSize: UInt64

    public init(devicePath: String = KVMKernel.defaultDevicePath) throws(KernelError) {
        let fd = ckvm_open_kvm(devicePath)
        guard fd >= 0 else {
            throw KernelError(
                call: "open", arguments: "\(devicePath), O_RDWR|O_CLOEXEC", errno: Errno(negatedReturn: fd))
        }
        self.systemFd = fd
        self.devicePath = devicePath
        let size = ckvm_page_size()
        self.pageSize = size > 0 ? UInt64(size) : 4096
    }

    deinit { _ = ckvm_close(systemFd) }

    /// Whether `/dev/kvm` can be opened here, and why not (for test gating and `--host auto`).
    public static func canOpen(devicePath: String = KVMKernel.defaultDevicePath) -> (available: Bool, reason: String) {
        let fd = ckvm_open_kvm(devicePath)
        guard fd >= 0 else {
            return (
                false,
                "cannot open \(devicePath): \(Errno(negatedReturn: fd).name) (\(Errno(negatedReturn: fd).message))"
            )
        }
        _ = ckvm_close(fd)
        return (true, "\(devicePath) is available")
    }

    /// Turns a CKVM `-errno` result into a thrown `KernelError`, passing non-negative results through.
    @discardableResult
    private func check<Value: SignedInteger>(
        _ result: Value, _ call: String, _ arguments: @autoclosure () -> String,
        errorOffset: UInt64? = nil
    ) throws(KernelError) -> Value {
        guard result < 0 else { return result }
        throw KernelError(
            call: call, arguments: arguments(), errno: Errno(negatedReturn: result), errorOffset: errorOffset)
    }

    private typealias Format = KVMArgumentFormat

    public func checkExtension(_ capability: UInt32, vm: Int32?) throws(KernelError) -> Int64 {
        let fd = vm ?? systemFd
        let result = ckvm_check_extension(fd, UInt(capability))
        return Int64(
            try check(
                result, "KVM_CHECK_EXTENSION",
                "\(vm.map { "vm fd \($0)" } ?? devicePath), \(Format.capability(capability))"))
    }

    public func createVM(type: UInt64) throws(KernelError) -> Int32 {
        try check(ckvm_create_vm(systemFd, UInt(type)), "KVM_CREATE_VM", Format.vmType(type))
    }

    public func createGuestMemfd(vm: Int32, size: UInt64, flags: UInt64) throws(KernelError) -> Int32 {
        try check(
            ckvm_create_guest_memfd(vm, size, flags), "KVM_CREATE_GUEST_MEMFD",
            "vm fd \(vm), size=\(Format.hex(size)), flags=\(Format.guestMemfdFlags(flags))")
    }

    public func createMemfd(name: String, size: UInt64, hugePageSize: UInt64?) throws(KernelError) -> Int32 {
        let mfdCloexec: UInt32 = 0x0001
        let describe = "\"\(name)\", MFD_CLOEXEC\(hugePageSize.map { "|MFD_HUGETLB(\(Format.hex($0)))" } ?? "")"
        let fd = try check(ckvm_memfd_create(name, mfdCloexec, hugePageSize ?? 0), "memfd_create", describe)
        do {
            try check(ckvm_ftruncate(fd, size), "ftruncate", "memfd \(fd) \"\(name)\", \(Format.hex(size))")
        } catch {
            _ = ckvm_close(fd)
            throw error
        }
        return fd
    }

    public func mmap(
        fd: Int32?, length: UInt64, offset: UInt64, shared: Bool, hugePageSize: UInt64?
    ) throws(KernelError) -> UInt64 {
        let protReadWrite: Int32 = 0x1 | 0x2
        var flags: Int32 = shared ? 0x01 : 0x02  // MAP_SHARED : MAP_PRIVATE
        var describedFlags = shared ? "MAP_SHARED" : "MAP_PRIVATE"
        if fd == nil {
            flags |= 0x20  // MAP_ANONYMOUS
            describedFlags += "|MAP_ANONYMOUS"
            if let hugePageSize, hugePageSize > 0 {
                // MAP_HUGETLB with the size code log2(size) << MAP_HUGE_SHIFT (26).
                flags |= 0x40000 | (Int32(hugePageSize.trailingZeroBitCount) << 26)
                describedFlags += "|MAP_HUGETLB(\(Format.hex(hugePageSize)))"
            }
        }
        let result = ckvm_mmap(0, length, protReadWrite, flags, fd ?? -1, offset)
        let arguments =
            "NULL, \(Format.hex(length)), PROT_READ|PROT_WRITE, \(describedFlags), fd \(fd ?? -1), \(Format.hex(offset))"
        return UInt64(try check(result, "mmap", arguments))
    }

    public func munmap(address: UInt64, length: UInt64) throws(KernelError) {
        try check(ckvm_munmap(address, length), "munmap", "\(Format.hex(address)), \(Format.hex(length))")
    }

    public func setUserMemoryRegion2(vm: Int32, _ region: MemoryRegion2) throws(KernelError) {
        let result = ckvm_set_region2(
            vm, region.slot, region.flags, region.guestPhysAddr, region.memorySize,
            region.userspaceAddr, region.guestMemfdOffset, region.guestMemfd)
        try check(result, "KVM_SET_USER_MEMORY_REGION2", "vm fd \(vm), \(Format.region(region))")
    }

    public func setMemoryAttributes(
        vm: Int32, address: UInt64, size: UInt64, attributes: UInt64, flags: UInt64
    ) throws(KernelError) {
        try check(
            ckvm_set_memory_attributes(vm, address, size, attributes, flags), "KVM_SET_MEMORY_ATTRIBUTES",
            "vm fd \(vm), address=\(Format.hex(address)), size=\(Format.hex(size)), attributes=\(Format.memoryAttributes(attributes)), flags=\(Format.hex(flags))"
        )
    }

    public func gmemConvert(gmem: Int32, offset: UInt64, size: UInt64, toPrivate: Bool) throws(KernelError) {
        var errorOffset: UInt64 = 0
        let result = ckvm_gmem_convert(gmem, offset, size, toPrivate ? 1 : 0, &errorOffset)
        try check(
            result, toPrivate ? "KVM_GMEM_CONVERT_PRIVATE" : "KVM_GMEM_CONVERT_SHARED",
            "gmem fd \(gmem), offset=\(Format.hex(offset)), size=\(Format.hex(size))", errorOffset: errorOffset)
    }

    public func setMemoryAttributes2(
        gmem: Int32, offset: UInt64, size: UInt64, attributes: UInt64, flags: UInt64
    ) throws(KernelError) {
        var errorOffset: UInt64 = 0
        let result = ckvm_set_memory_attributes2(gmem, offset, size, attributes, flags, &errorOffset)
        try check(
            result, "KVM_SET_MEMORY_ATTRIBUTES2",
            "gmem fd \(gmem), offset=\(Format.hex(offset)), size=\(Format.hex(size)), attributes=\(Format.memoryAttributes(attributes)), flags=\(Format.hex(flags))",
            errorOffset: errorOffset)
    }

    public func fallocate(fd: Int32, mode: Int32, offset: UInt64, length: UInt64) throws(KernelError) {
        try check(
            ckvm_fallocate(fd, mode, offset, length), "fallocate",
            "fd \(fd), \(Format.fallocateMode(mode)), offset=\(Format.hex(offset)), length=\(Format.hex(length))")
    }

    public func madvise(address: UInt64, length: UInt64, advice: Int32) throws(KernelError) {
        try check(
            ckvm_madvise(address, length, advice), "madvise",
            "\(Format.hex(address)), \(Format.hex(length)), \(Format.madviseAdvice(advice))")
    }

    public func read(address: UInt64, count: Int) throws(KernelError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let result = bytes.withUnsafeMutableBytes { ckvm_probe_read(address, $0.baseAddress, $0.count) }
        try checkProbe(result, "read", address: address, count: count)
        return bytes
    }

    public func write(address: UInt64, bytes: [UInt8]) throws(KernelError) {
        let result = bytes.withUnsafeBytes { ckvm_probe_write(address, $0.baseAddress, $0.count) }
        try checkProbe(result, "write", address: address, count: bytes.count)
    }

    /// SIGBUS becomes `.sigbus`, SIGSEGV becomes EFAULT (nothing accessible mapped), both naming the first failing page.
    private func checkProbe(_ result: Int32, _ call: String, address: UInt64, count: Int) throws(KernelError) {
        let arguments = "\(Format.hex(address)), \(count) bytes"
        switch result {
        case Int32(CKVM_PROBE_OK.rawValue):
            return
        case Int32(CKVM_PROBE_SIGBUS.rawValue):
            throw KernelError(
                call: call, arguments: arguments + ", fault at \(Format.hex(ckvm_probe_last_fault_address()))",
                failure: .sigbus)
        case Int32(CKVM_PROBE_SIGSEGV.rawValue):
            throw KernelError(
                call: call, arguments: arguments + ", fault at \(Format.hex(ckvm_probe_last_fault_address()))",
                errno: .efault)
        default:
            // -EOPNOTSUPP: the kernel has no MADV_POPULATE_READ/WRITE (before Linux 5.14).
            let advice = call == "read" ? "MADV_POPULATE_READ" : "MADV_POPULATE_WRITE"
            throw KernelError(
                call: "madvise", arguments: "\(advice) before the \(call) of " + arguments + " (needs Linux 5.14+)",
                errno: Errno(negatedReturn: result))
        }
    }

    public func residentPages(address: UInt64, length: UInt64) throws(KernelError) -> UInt64 {
        UInt64(
            try check(ckvm_mincore_count(address, length), "mincore", "\(Format.hex(address)), \(Format.hex(length))"))
    }

    /// `PAGEMAP_SCAN` (Linux 6.7+): the kernel skips unpopulated page tables, where `mincore` looks up every
    /// page (65,536 calls and 17 s for an empty 1 TiB mapping). Without it, no figure rather than a walk.
    public func residentBytes(address: UInt64, length: UInt64) throws(KernelError) -> ResidentReading {
        let result = ckvm_present_bytes(address, length)
        // ENOTTY/EINVAL: no PAGEMAP_SCAN (before 6.7); ENOENT: no /proc.
        if [25, 22, 2].contains(-result) {
            return ResidentReading(bytes: 0, source: .unavailable)
        }
        return ResidentReading(
            bytes: UInt64(try check(result, "ioctl(PAGEMAP_SCAN)", "\(Format.hex(address)), \(Format.hex(length))")),
            source: .pagemapScan)
    }

    public func close(_ fd: Int32) throws(KernelError) {
        try check(ckvm_close(fd), "close", "fd \(fd)")
    }
}
