import Config

/// A failed step: which operation, what the kernel said, and what that means for the user.
public struct ExecutionError: Error, Sendable, Codable, CustomStringConvertible {
    public var operation: PlanOperation
    public var kernelError: KernelError?
    public var message: String

    public init(operation: PlanOperation, kernelError: KernelError? = nil, message: String) {
        self.operation = operation
        self.kernelError = kernelError
        self.message = message
    }

    public var description: String {
        guard let kernelError else { return message }
        return "\(message): \(kernelError)"
    }
}

/// Decides whether a listener accepts an event; a listener that rejects an `unmap` stops the conversion
/// before the kernel is asked.
public typealias ListenerDelivery = @Sendable (ListenerEvent) -> String?

/// Carries out operations for one guest on a kernel and keeps the tracked live state true after every
/// step, so that whatever happens, `state` says what exists.
public final class GuestRuntime {
    public let kernel: KernelInterface
    public let capabilities: Capabilities
    public private(set) var state: LiveState
    /// Every event this runtime delivered, in order (the state keeps only the most recent ones).
    public private(set) var emittedEvents: [ListenerEvent] = []
    /// Called as memory is populated (`--prefault`, `prealloc`): block, bytes done, bytes in all.
    public var populateProgress: (@Sendable (_ block: String, _ done: UInt64, _ total: UInt64) -> Void)?
    /// Populate works in steps of this size.
    static let populateStep: UInt64 = 256 << 20
    /// Called for each listener event; returns a rejection reason, or nil to accept.
    public var delivery: ListenerDelivery?

    public init(kernel: KernelInterface, capabilities: Capabilities, state: LiveState) {
        self.kernel = kernel
        self.capabilities = capabilities
        self.state = state
    }

    public func setListeners(_ listeners: [String]) { state.listeners = listeners }
    /// Continues event numbers from `sequence` when the state knows fewer (a guest re-created by an agent
    /// that numbered the previous one's events).
    public func continueEventSequence(after sequence: UInt64) {
        if sequence >= state.nextEventSequence { state.lastEventSequence = sequence }
    }
    public func recordFailure(_ text: String?) { state.lastFailure = text }

    /// Performs one operation; on failure nothing of the state changes except what the kernel really did.
    public func perform(_ operation: PlanOperation) throws(ExecutionError) {
        do {
            try execute(operation)
        } catch let error as ExecutionError {
            throw error
        } catch let error as KernelError {
            throw ExecutionError(
                operation: operation, kernelError: error, message: KernelErrorExplainer.explain(operation, error))
        } catch {
            throw ExecutionError(operation: operation, message: "\(operation.call) failed: \(error)")
        }
    }

    private func vmFD(for operation: PlanOperation) throws -> Int32 {
        guard let fd = state.vmFD else {
            throw ExecutionError(operation: operation, message: "no VM exists for guest \(state.name)")
        }
        return fd
    }

    private func liveBlock(_ name: String, for operation: PlanOperation) throws -> LiveBlock {
        guard let block = state.block(named: name) else {
            throw ExecutionError(operation: operation, message: "block \(name) does not exist on the host")
        }
        return block
    }

    /// Carries out one operation: each kind is a step of its own below.
    private func execute(_ operation: PlanOperation) throws {
        switch operation {
        case .createVM(let type): try createVM(type)
        case .createSharedBacking(let name, let backing, let size):
            try createSharedBacking(name, backing: backing, size: size)
        case .createGuestMemfd(let name, let size, let flags, let backend):
            try createGuestMemfd(name, size: size, flags: flags, backend: backend, for: operation)
        case .mapHostMemory(let name, let memory, let size):
            try mapHostMemory(name, memory: memory, size: size, for: operation)
        case .bindMemslot(let slot, let mapping, let memory):
            try bindMemslot(slot, mapping: mapping, memory: memory, for: operation)
        case .deleteMemslot(let slot, let mapping): try deleteMemslot(slot, mapping: mapping, for: operation)
        case .setVMAttributes(let gpa, let size, let to): try setVMAttributes(gpa, size: size, to: to, for: operation)
        case .convertGuestMemfd(let name, let offset, let size, let to, let abi):
            try convertGuestMemfd(name, offset: offset, size: size, to: to, abi: abi, for: operation)
        case .discard(let name, let memory, let offset, let size, let method):
            try discard(name, memory: memory, offset: offset, size: size, method: method, for: operation)
        case .populate(let name, let memory, let offset, let size):
            try populate(name, memory: memory, offset: offset, size: size, for: operation)
        case .notify(let listener, let kind, let gpa, let size):
            try notify(listener, kind: kind, gpa: gpa, size: size, for: operation)
        case .destroyBlock(let name): try destroyBlock(name)
        case .destroyVM: try destroyVM()
        }
    }

    private func createVM(_ type: VMType) throws {
        let fd = try kernel.createVM(type: type.kvmValue)
        state.vmFD = fd
        state.vmType = type
    }

    private func createSharedBacking(_ name: String, backing: SharedBacking, size: UInt64) throws {
        var block = LiveBlock(name: name, size: size, backend: .legacy(backing), guestMemfdFlags: 0)
        if backing.source != .anonymous {
            let hugePage = backing.source == .hugetlb ? backing.pageSize : nil
            block.sharedFD = try kernel.createMemfd(
                name: "gmemctl:\(state.name):\(name)", size: size, hugePageSize: hugePage)
        }
        state.blocks.append(block)
    }

    private func createGuestMemfd(
        _ name: String, size: UInt64, flags: UInt64, backend: ResolvedBackend,
        for operation: PlanOperation
    ) throws {
        let fd = try kernel.createGuestMemfd(vm: try vmFD(for: operation), size: size, flags: flags)
        if state.block(named: name) == nil {
            state.blocks.append(LiveBlock(name: name, size: size, backend: backend, guestMemfdFlags: flags))
        }
        state.updateBlock(name) {
            $0.guestMemfd = fd
            $0.guestMemfdFlags = flags
        }
    }

    private func mapHostMemory(_ name: String, memory: HostMemory, size: UInt64, for operation: PlanOperation) throws {
        let block = try liveBlock(name, for: operation)
        switch memory {
        case .guestMemfd:
            guard let fd = block.guestMemfd else {
                throw ExecutionError(operation: operation, message: "block \(name) has no guest_memfd")
            }
            let address = try kernel.mmap(fd: fd, length: size, offset: 0, shared: true, hugePageSize: nil)
            state.updateBlock(name) { $0.guestMemfdAddress = address }
        case .sharedBacking:
            // Anonymous backings are private anonymous memory, as QEMU's default RAM.
            let address = try kernel.mmap(
                fd: block.sharedFD, length: size, offset: 0, shared: block.sharedFD != nil, hugePageSize: nil)
            state.updateBlock(name) { $0.sharedAddress = address }
        }
    }

    private func bindMemslot(
        _ slot: UInt32, mapping: Mapping, memory: HostMemory,
        for operation: PlanOperation
    ) throws {
        let block = try liveBlock(mapping.block, for: operation)
        guard let gmem = block.guestMemfd else {
            throw ExecutionError(operation: operation, message: "block \(mapping.block) has no guest_memfd")
        }
        let base = memory == .guestMemfd ? block.guestMemfdAddress : block.sharedAddress
        guard let base else {
            throw ExecutionError(operation: operation, message: "block \(mapping.block) has no host mapping")
        }
        let region = MemoryRegion2(
            slot: slot, flags: KVMConstants.memGuestMemfd, guestPhysAddr: mapping.gpa,
            memorySize: mapping.size, userspaceAddr: base + mapping.offset,
            guestMemfdOffset: mapping.offset, guestMemfd: UInt32(bitPattern: gmem))
        try kernel.setUserMemoryRegion2(vm: try vmFD(for: operation), region)
        state.memslots.append(
            LiveMemslot(slot: slot, mapping: mapping, flags: region.flags, userspaceAddress: region.userspaceAddr))
        // What a fresh slot holds: the guest_memfd's own state for in-place blocks; for legacy blocks the
        // kernel's per-VM default (shared) until attributes say otherwise. Per-gmem attributes (2026) start
        // private unless INIT_SHARED.
        let initial = initialState(of: block)
        state.updateBlock(mapping.block) { $0.layout.assign(initial, to: mapping.offsetRange) }
    }

    private func deleteMemslot(_ slot: UInt32, mapping: Mapping, for operation: PlanOperation) throws {
        let region = MemoryRegion2(
            slot: slot, flags: KVMConstants.memGuestMemfd, guestPhysAddr: mapping.gpa,
            memorySize: 0, userspaceAddr: 0)
        try kernel.setUserMemoryRegion2(vm: try vmFD(for: operation), region)
        state.memslots.removeAll { $0.slot == slot }
        let stillVisible = state.memslots.contains {
            $0.mapping.block == mapping.block && $0.mapping.offsetRange.overlaps(mapping.offsetRange)
        }
        if !stillVisible { state.updateBlock(mapping.block) { $0.layout.remove(mapping.offsetRange) } }
    }

    private func setVMAttributes(_ gpa: UInt64, size: UInt64, to: MemoryState, for operation: PlanOperation) throws {
        try kernel.setMemoryAttributes(
            vm: try vmFD(for: operation), address: gpa, size: size,
            attributes: to == .private ? KVMConstants.memoryAttributePrivate : 0, flags: 0)
        for slice in state.addressMap.blockRanges(forGPA: gpa..<(gpa + size)) {
            state.updateBlock(slice.block) { $0.layout.assign(to, to: slice.offsets) }
        }
    }

    private func convertGuestMemfd(
        _ name: String, offset: UInt64, size: UInt64, to: MemoryState, abi: ConversionABI,
        for operation: PlanOperation
    ) throws {
        let block = try liveBlock(name, for: operation)
        guard let gmem = block.guestMemfd else {
            throw ExecutionError(operation: operation, message: "block \(name) has no guest_memfd")
        }
        switch abi {
        case .gmemConvertPOC:
            try kernel.gmemConvert(gmem: gmem, offset: offset, size: size, toPrivate: to == .private)
        default:
            try kernel.setMemoryAttributes2(
                gmem: gmem, offset: offset, size: size,
                attributes: to == .private ? KVMConstants.memoryAttributePrivate : 0, flags: 0)
        }
        state.updateBlock(name) { live in
            for run in live.layout.runs(in: offset..<(offset + size)) { live.layout.assign(to, to: run.range) }
        }
    }

    private func discard(
        _ name: String, memory: HostMemory, offset: UInt64, size: UInt64, method: DiscardMethod,
        for operation: PlanOperation
    ) throws {
        let block = try liveBlock(name, for: operation)
        switch (memory, method) {
        case (.guestMemfd, _):
            guard let fd = block.guestMemfd else { return }
            try kernel.fallocate(
                fd: fd, mode: KVMConstants.fallocPunchHole | KVMConstants.fallocKeepSize, offset: offset, length: size)
        case (.sharedBacking, .punchHole):
            guard let fd = block.sharedFD else { return }
            try kernel.fallocate(
                fd: fd, mode: KVMConstants.fallocPunchHole | KVMConstants.fallocKeepSize, offset: offset, length: size)
        case (.sharedBacking, .madviseDontneed):
            guard let address = block.sharedAddress else { return }
            try kernel.madvise(address: address + offset, length: size, advice: KVMConstants.madvDontneed)
        }
    }

    private func populate(
        _ name: String, memory: HostMemory, offset: UInt64, size: UInt64,
        for operation: PlanOperation
    ) throws {
        let block = try liveBlock(name, for: operation)
        // In steps, so that a large populate can show progress; the kernel does the same work either way.
        var done: UInt64 = 0
        while done < size {
            let step = min(Self.populateStep, size - done)
            switch memory {
            case .guestMemfd:
                guard let fd = block.guestMemfd else { return }
                try kernel.fallocate(fd: fd, mode: KVMConstants.fallocKeepSize, offset: offset + done, length: step)
            case .sharedBacking:
                guard let address = block.sharedAddress else { return }
                try kernel.madvise(
                    address: address + offset + done, length: step, advice: KVMConstants.madvPopulateWrite)
            }
            done += step
            populateProgress?(name, done, size)
        }
    }

    private func notify(
        _ listener: String, kind: ListenerEventKind, gpa: UInt64, size: UInt64,
        for operation: PlanOperation
    ) throws {
        // The number is taken before asking, so a rejected event's number is never handed out again.
        let event = ListenerEvent(
            sequence: state.nextEventSequence, listener: listener, kind: kind, gpa: gpa, size: size)
        state.lastEventSequence = event.sequence
        if let rejection = delivery?(event) {
            throw ExecutionError(
                operation: operation,
                message: "listener \(listener) rejected \(kind.rawValue) of \(hex(gpa))+\(hex(size)): \(rejection)")
        }
        state.events.append(event)
        if state.events.count > LiveState.recentEventLimit {
            state.events.removeFirst(state.events.count - LiveState.recentEventLimit)
        }
        emittedEvents.append(event)
    }

    private func destroyBlock(_ name: String) throws {
        guard let block = state.block(named: name) else { return }
        // Release everything even if one step fails, then report the first failure.
        var firstError: Error?
        func attempt(_ body: () throws -> Void) {
            do { try body() } catch { if firstError == nil { firstError = error } }
        }
        if let address = block.guestMemfdAddress { attempt { try kernel.munmap(address: address, length: block.size) } }
        if let address = block.sharedAddress { attempt { try kernel.munmap(address: address, length: block.size) } }
        if let fd = block.guestMemfd { attempt { try kernel.close(fd) } }
        if let fd = block.sharedFD { attempt { try kernel.close(fd) } }
        state.blocks.removeAll { $0.name == name }
        if let firstError { throw firstError }
    }

    private func destroyVM() throws {
        guard let fd = state.vmFD else { return }
        state.vmFD = nil
        state.vmType = nil
        try kernel.close(fd)
    }

    /// The state a freshly bound slot of `block` is in.
    private func initialState(of block: LiveBlock) -> MemoryState {
        switch block.backend {
        case .inPlace:
            let shared: UInt64 =
                capabilities.guestMemfdFlagSet == .poc2025
                ? (block.guestMemfdFlags & KVMConstants.pocGmemFlagInitPrivate == 0 ? 1 : 0)
                : block.guestMemfdFlags & KVMConstants.gmemFlagInitShared
            return shared != 0 ? .shared : .private
        case .legacy:
            // Per-VM attributes start shared when a slot is bound; the plan marks private ranges afterwards.
            // Legacy blocks never follow per-gmem attributes (docs/kernels.md, Linux 7.4 in-place mode).
            return .shared
        }
    }
}
