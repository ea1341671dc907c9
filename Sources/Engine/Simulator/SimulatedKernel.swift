import GmemCore

/// A faithful model of the kernel's guest_memfd rules for one `Capabilities` value (a profile or a probed
/// kernel): the same calls as `KVMKernel`, the same successes and errnos (docs/kernels.md), with
/// state kept in interval maps so a 1 TiB guest costs nothing until touched. On top of the protocol it
/// offers test hooks (pins, deterministic fault injection, a call log) and persistence (`snapshot()` /
/// `init(state:)`). Not thread-safe: like a process's fd table, one owner drives it.
public final class SimulatedKernel: KernelInterface {
    private var state: SimulatedKernelState
    /// The calls answered since creation (or `clearCallLog()`), in order: the latest `callLogLimit` at least,
    /// so a long-lived simulator (an agent's) does not grow without bound. Not part of the saved state.
    public private(set) var callLog: [SimulatedCallRecord] = []
    public var callLogLimit = 10_000

    public init(capabilities: Capabilities) {
        state = SimulatedKernelState(capabilities: capabilities)
    }

    /// Resumes a saved kernel: same objects, fds, mapping addresses and pending faults.
    public init(state: SimulatedKernelState) {
        self.state = state
    }

    public func snapshot() -> SimulatedKernelState { state }

    public var capabilities: Capabilities { state.capabilities }
    public var pageSize: UInt64 { state.pageSize }
    /// The simulated `/dev/kvm` fd: system-scope `checkExtension` answers on it; VM ioctls on it give EINVAL.
    public var deviceDescriptor: Int32 { state.deviceDescriptor }

    // MARK: - Hooks

    /// Arms a fault; see `SimulatedFault` for the counting rule.
    public func injectFault(_ fault: SimulatedFault) {
        state.faults.append(PendingFault(fault: fault, remaining: fault.occurrence))
    }

    public var pendingFaults: [SimulatedFault] { state.faults.map(\.fault) }

    public func clearFaults() { state.faults.removeAll() }

    public func clearCallLog() { callLog.removeAll() }

    /// Appends, dropping the oldest records in batches (amortized constant time) past twice the limit.
    private func logCall(_ record: SimulatedCallRecord) {
        callLog.append(record)
        if callLog.count > 2 * callLogLimit { callLog.removeFirst(callLog.count - callLogLimit) }
    }

    /// Elevates the refcount of the (shared) guest_memfd page at `offset`, as a long-term host pin does:
    /// converting it to private fails with EAGAIN and `error_offset` = `offset` until `unpin`.
    public func pin(gmem fd: Int32, offset: UInt64) throws(SimulatedHookError) {
        try state.pin(gmem: fd, offset: offset)
    }

    public func unpin(gmem fd: Int32, offset: UInt64) throws(SimulatedHookError) {
        try state.unpin(gmem: fd, offset: offset)
    }

    /// Makes the next `count` KVM_SET_MEMORY_ATTRIBUTES2 calls that change state fail their preallocation
    /// (kernel memory for the attribute tree): ENOMEM with `error_offset` = the requested offset.
    public func failAttributePreallocation(count: Int = 1) {
        state.attributePreallocationFailures = count
    }

    /// A guest load of `count` bytes (within one page) at `gpa`, from where the MMU takes that page.
    public func guestRead(vm fd: Int32, gpa: UInt64, count: Int) throws(KernelError) -> [UInt8] {
        let source = (try? guestFaultSource(vm: fd, gpa: gpa)) ?? GuestFaultSource.none
        return try state.guestAccess(vm: fd, gpa: gpa, write: nil, count: count, source: source)
    }

    /// A guest store at `gpa` (within one page).
    public func guestWrite(vm fd: Int32, gpa: UInt64, bytes: [UInt8]) throws(KernelError) {
        let source = (try? guestFaultSource(vm: fd, gpa: gpa)) ?? GuestFaultSource.none
        _ = try state.guestAccess(vm: fd, gpa: gpa, write: bytes, count: bytes.count, source: source)
    }

    // MARK: - Running one call

    /// Fires a due injected fault instead of the call, or runs it; logs the outcome either way. Errors
    /// raised by the rules get the call's name and arguments here.
    private func perform<Result>(
        _ call: SimulatedCall, _ arguments: @autoclosure () -> String,
        _ body: (inout SimulatedKernelState) throws(KernelError) -> Result
    ) throws(KernelError) -> Result {
        if let fault = takeDueFault(for: call) {
            let error = KernelError(
                call: call.rawValue, arguments: arguments(), failure: fault.failure, errorOffset: fault.errorOffset)
            logCall(SimulatedCallRecord(call: call, arguments: error.arguments, failure: error.failure, injected: true))
            throw error
        }
        do throws(KernelError) {
            let result = try body(&state)
            logCall(SimulatedCallRecord(call: call, arguments: arguments(), failure: nil, injected: false))
            return result
        } catch {
            var named = error
            named.call = call.rawValue
            named.arguments = arguments()
            logCall(
                SimulatedCallRecord(call: call, arguments: named.arguments, failure: named.failure, injected: false))
            throw named
        }
    }

    /// Counts `call` against every matching fault; returns (and disarms) the earliest one that is due.
    private func takeDueFault(for call: SimulatedCall) -> SimulatedFault? {
        var due: Int?
        for index in state.faults.indices where state.faults[index].fault.matches(call) {
            if state.faults[index].remaining > 1 {
                state.faults[index].remaining -= 1
            } else if due == nil {
                due = index
            }
        }
        guard let due else { return nil }
        return state.faults.remove(at: due).fault
    }

    private typealias Format = KVMArgumentFormat

    // MARK: - KernelInterface

    public func checkExtension(_ capability: UInt32, vm: Int32?) throws(KernelError) -> Int64 {
        try perform(.checkExtension, "\(vm.map { "vm fd \($0)" } ?? "/dev/kvm"), \(Format.capability(capability))") {
            (state: inout SimulatedKernelState) throws(KernelError) in try state.checkExtension(capability, vm: vm)
        }
    }

    public func createVM(type: UInt64) throws(KernelError) -> Int32 {
        try perform(.createVM, Format.vmType(type)) { (state: inout SimulatedKernelState) throws(KernelError) in
            try state.createVM(type: type)
        }
    }

    public func createGuestMemfd(vm: Int32, size: UInt64, flags: UInt64) throws(KernelError) -> Int32 {
        try perform(.createGuestMemfd, "vm fd \(vm), size=\(Format.hex(size)), flags=\(Format.hex(flags))") {
            (state: inout SimulatedKernelState) throws(KernelError) in
            try state.createGuestMemfd(vm: vm, size: size, flags: flags)
        }
    }

    public func createMemfd(name: String, size: UInt64, hugePageSize: UInt64?) throws(KernelError) -> Int32 {
        try perform(
            .createMemfd,
            "\"\(name)\", size=\(Format.hex(size))\(hugePageSize.map { ", MFD_HUGETLB(\(Format.hex($0)))" } ?? "")"
        ) {
            (state: inout SimulatedKernelState) throws(KernelError) in
            try state.createMemfd(name: name, size: size, hugePageSize: hugePageSize)
        }
    }

    public func mmap(
        fd: Int32?, length: UInt64, offset: UInt64, shared: Bool, hugePageSize: UInt64?
    ) throws(KernelError) -> UInt64 {
        let flags =
            (shared ? "MAP_SHARED" : "MAP_PRIVATE") + (fd == nil ? "|MAP_ANONYMOUS" : "")
            + (hugePageSize.map { "|MAP_HUGETLB(\(Format.hex($0)))" } ?? "")
        return try perform(.mmap, "NULL, \(Format.hex(length)), \(flags), fd \(fd ?? -1), \(Format.hex(offset))") {
            (state: inout SimulatedKernelState) throws(KernelError) in
            try state.mmap(fd: fd, length: length, offset: offset, shared: shared, hugePageSize: hugePageSize)
        }
    }

    public func munmap(address: UInt64, length: UInt64) throws(KernelError) {
        try perform(.munmap, "\(Format.hex(address)), \(Format.hex(length))") {
            (state: inout SimulatedKernelState) throws(KernelError) in
            try state.munmap(address: address, length: length)
        }
    }

    public func setUserMemoryRegion2(vm: Int32, _ region: MemoryRegion2) throws(KernelError) {
        try perform(.setUserMemoryRegion2, "vm fd \(vm), \(Format.region(region))") {
            (state: inout SimulatedKernelState) throws(KernelError) in
            try state.setUserMemoryRegion2(vm: vm, region)
        }
    }

    public func setMemoryAttributes(
        vm: Int32, address: UInt64, size: UInt64, attributes: UInt64, flags: UInt64
    ) throws(KernelError) {
        let arguments =
            "vm fd \(vm), address=\(Format.hex(address)), size=\(Format.hex(size)), attributes=\(Format.memoryAttributes(attributes)), flags=\(Format.hex(flags))"
        try perform(.setMemoryAttributes, arguments) { (state: inout SimulatedKernelState) throws(KernelError) in
            try state.setMemoryAttributes(vm: vm, address: address, size: size, attributes: attributes, flags: flags)
        }
    }

    public func gmemConvert(gmem: Int32, offset: UInt64, size: UInt64, toPrivate: Bool) throws(KernelError) {
        try gmemConvert(gmem: gmem, offset: offset, size: size, toPrivate: toPrivate, errorOffset: 0)
    }

    /// The POC's `struct kvm_gmem_convert` with `error_offset` as the caller filled it: the POC refuses a
    /// nonzero value on input (EINVAL); the 7.4 ioctl does not read it.
    public func gmemConvert(
        gmem: Int32, offset: UInt64, size: UInt64, toPrivate: Bool, errorOffset: UInt64
    ) throws(KernelError) {
        try perform(
            toPrivate ? .gmemConvertPrivate : .gmemConvertShared,
            "gmem fd \(gmem), offset=\(Format.hex(offset)), size=\(Format.hex(size))"
        ) {
            (state: inout SimulatedKernelState) throws(KernelError) in
            try state.gmemConvert(
                gmem: gmem, offset: offset, size: size, toPrivate: toPrivate, errorOffset: errorOffset)
        }
    }

    public func setMemoryAttributes2(
        gmem: Int32, offset: UInt64, size: UInt64, attributes: UInt64, flags: UInt64
    ) throws(KernelError) {
        try setMemoryAttributes2(
            gmem: gmem, offset: offset, size: size, attributes: attributes, flags: flags,
            reserved: [UInt64](repeating: 0, count: SimulatedKernelState.attributes2ReservedWords))
    }

    /// KVM_SET_MEMORY_ATTRIBUTES2 with the struct's `reserved[]` words as the caller filled them.
    public func setMemoryAttributes2(
        gmem: Int32, offset: UInt64, size: UInt64, attributes: UInt64, flags: UInt64,
        reserved: [UInt64]
    ) throws(KernelError) {
        let arguments =
            "gmem fd \(gmem), offset=\(Format.hex(offset)), size=\(Format.hex(size)), attributes=\(Format.memoryAttributes(attributes)), flags=\(Format.hex(flags))"
        try perform(.setMemoryAttributes2, arguments) { (state: inout SimulatedKernelState) throws(KernelError) in
            try state.setMemoryAttributes2(
                gmem: gmem, offset: offset, size: size, attributes: attributes, flags: flags,
                reserved: reserved)
        }
    }

    public func fallocate(fd: Int32, mode: Int32, offset: UInt64, length: UInt64) throws(KernelError) {
        try perform(
            .fallocate,
            "fd \(fd), \(Format.fallocateMode(mode)), offset=\(Format.hex(offset)), length=\(Format.hex(length))"
        ) {
            (state: inout SimulatedKernelState) throws(KernelError) in
            try state.fallocate(fd: fd, mode: mode, offset: offset, length: length)
        }
    }

    public func madvise(address: UInt64, length: UInt64, advice: Int32) throws(KernelError) {
        try perform(.madvise, "\(Format.hex(address)), \(Format.hex(length)), \(Format.madviseAdvice(advice))") {
            (state: inout SimulatedKernelState) throws(KernelError) in
            try state.madvise(address: address, length: length, advice: advice)
        }
    }

    public func read(address: UInt64, count: Int) throws(KernelError) -> [UInt8] {
        try perform(.read, "\(Format.hex(address)), \(count) bytes") {
            (state: inout SimulatedKernelState) throws(KernelError) in
            try state.read(address: address, count: count)
        }
    }

    public func write(address: UInt64, bytes: [UInt8]) throws(KernelError) {
        try perform(.write, "\(Format.hex(address)), \(bytes.count) bytes") {
            (state: inout SimulatedKernelState) throws(KernelError) in
            try state.write(address: address, bytes: bytes)
        }
    }

    public func residentPages(address: UInt64, length: UInt64) throws(KernelError) -> UInt64 {
        try perform(.residentPages, "\(Format.hex(address)), \(Format.hex(length))") {
            (state: inout SimulatedKernelState) throws(KernelError) in
            try state.residentPages(address: address, length: length)
        }
    }

    public func close(_ fd: Int32) throws(KernelError) {
        try perform(.close, "fd \(fd)") { (state: inout SimulatedKernelState) throws(KernelError) in try state.close(fd)
        }
    }
}
