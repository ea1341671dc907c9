import Config

/// Pure planning: (desired state, observed state, capabilities) -> ordered operations (conversion order:
/// listeners unmap before memory turns private; docs/kernels.md for what each generation offers). No I/O.
public enum Planner {
    public static func plan(
        desired: DesiredState, observed: LiveState, capabilities: Capabilities
    ) throws(PlanError) -> Plan {
        let vm = try vmCapabilities(desired: desired, observed: observed, capabilities: capabilities)
        var plan = Plan(guest: desired.name)
        plan.listeners = desired.listeners
        for block in desired.blocks { plan.resolutions[block.name] = block.resolution }
        plan.notes += splitNotes(desired: desired, capabilities: capabilities)
        var live = observed
        if !observed.exists {
            plan.operations.append(.createVM(type: desired.vmType))
        }
        tearDownChangedBlocks(desired: desired, observed: observed, live: &live, into: &plan)
        releaseLeavingListeners(desired: desired, observed: observed, live: live, into: &plan)
        for block in desired.blocks where live.block(named: block.name) == nil {
            build(block, desired: desired, vm: vm, live: &live, into: &plan)
        }
        let joining = desired.listeners.filter { !live.listeners.contains($0) }
        convertToDesiredLayouts(desired: desired, vm: vm, live: &live, into: &plan)
        announceToJoiningListeners(joining, desired: desired, live: live, into: &plan)
        if !plan.operations.isEmpty {
            plan.notes.append("host addresses and file descriptors are assigned at apply; plan names them by block")
        }
        return plan
    }

    /// The VM type's capabilities on this host; a live VM of another type cannot be reused.
    private static func vmCapabilities(
        desired: DesiredState, observed: LiveState,
        capabilities: Capabilities
    ) throws(PlanError) -> VMTypeCapabilities {
        guard let vm = capabilities.vmType(desired.vmType) else {
            throw PlanError("VM type \(desired.vmType.rawValue) is not offered by \(capabilities.name)")
        }
        if observed.exists, let liveType = observed.vmType, liveType != desired.vmType {
            throw PlanError(
                "the live VM of \(desired.name) is \(liveType.rawValue), the manifest asks for \(desired.vmType.rawValue)",
                hint: "a VM cannot change type: run `gmemctl destroy` first")
        }
        return vm
    }

    /// One note per manifest mapping that takes more than one memslot.
    private static func splitNotes(desired: DesiredState, capabilities: Capabilities) -> [String] {
        desired.manifestMappings.compactMap { mapping in
            let pieces = MemslotSplit.pieceCount(size: mapping.size, maxSize: capabilities.maxMemslotSize)
            guard pieces > 1 else { return nil }
            return
                "mapping of \(mapping.block) at \(hex(mapping.gpa)) (\(formatSize(mapping.size))) takes \(pieces) memslots: one memslot holds at most \(capabilities.maxMemslotDescription) (KVM_MEM_MAX_NR_PAGES), pieces of \(formatSize(MemslotSplit.pieceSize(maxSize: capabilities.maxMemslotSize)))"
        }
    }

    /// Blocks whose kernel objects or memslots differ from the manifest are rebuilt: guest_memfd memslots
    /// are immutable (the kernel refuses to modify them) and a guest_memfd cannot be resized.
    private static func tearDownChangedBlocks(
        desired: DesiredState, observed: LiveState, live: inout LiveState,
        into plan: inout Plan
    ) {
        let desiredNames = Set(desired.blocks.map(\.name))
        for liveBlock in observed.blocks {
            guard let replacement = BlockReplacement.needed(live: liveBlock, observed: observed, desired: desired)
            else { continue }
            plan.replacements.append(replacement)
            if desiredNames.contains(liveBlock.name) && !isComplete(liveBlock) {
                plan.notes.append(
                    "block \(liveBlock.name) is rebuilt (an earlier apply stopped before it was complete)")
            } else if desiredNames.contains(liveBlock.name) {
                plan.notes.append(
                    "block \(liveBlock.name) is rebuilt (its size, backend or mappings changed): its contents are lost")
            } else {
                plan.notes.append("block \(liveBlock.name) is not in the manifest and is removed")
            }
            teardown(block: liveBlock.name, live: &live, into: &plan)
        }
    }

    /// A listener that leaves must drop its mappings of shared memory now: it will not hear the `unmap`
    /// of a later conversion to private (blocks torn down before have already told it).
    private static func releaseLeavingListeners(
        desired: DesiredState, observed: LiveState, live: LiveState,
        into plan: inout Plan
    ) {
        let liveAddressMap = live.addressMap
        for listener in observed.listeners where !desired.listeners.contains(listener) {
            for block in live.blocks {
                plan.operations += sharedWindowNotifications(
                    listener, .unmap, block: block.name, layout: block.layout,
                    addressMap: liveAddressMap)
            }
        }
    }

    /// Converts every block from its live layout to the manifest's, telling the listeners that stay.
    private static func convertToDesiredLayouts(
        desired: DesiredState, vm: VMTypeCapabilities, live: inout LiveState,
        into plan: inout Plan
    ) {
        let staying = desired.listeners.filter { live.listeners.contains($0) }
        // Memslots are final from here on: one address map serves every block (it sorts all mappings).
        let liveAddressMap = live.addressMap
        for block in desired.blocks {
            guard let liveBlock = live.block(named: block.name), let target = desired.blockLayouts[block.name] else {
                continue
            }
            let steps = conversionSteps(
                block: liveBlock, from: liveBlock.layout, to: target, vm: vm,
                addressMap: liveAddressMap, listeners: staying)
            plan.operations += steps.operations
            plan.transitions += steps.transitions
            live.updateBlock(block.name) { $0.layout = target }
        }
    }

    /// A listener that joins learns the shared ranges as they will be once the plan has run.
    private static func announceToJoiningListeners(
        _ joining: [String], desired: DesiredState, live: LiveState,
        into plan: inout Plan
    ) {
        let liveAddressMap = live.addressMap
        for listener in joining {
            for block in desired.blocks {
                guard let layout = desired.blockLayouts[block.name] else { continue }
                plan.operations += sharedWindowNotifications(
                    listener, .map, block: block.name, layout: layout,
                    addressMap: liveAddressMap)
            }
        }
    }

    /// The plan that removes a guest entirely.
    public static func destroy(observed: LiveState) -> Plan {
        var plan = Plan(guest: observed.name)
        var live = observed
        for block in observed.blocks {
            teardown(block: block.name, live: &live, into: &plan)
        }
        if observed.exists { plan.operations.append(.destroyVM) }
        return plan
    }

    /// The steps that convert `range` (guest-physical) to `state` at run time, as a guest's request would
    /// (KVM_EXIT_MEMORY_FAULT, TDX MapGPA). Parts already in that state cost nothing.
    public static func convert(
        gpa range: Range<UInt64>, to state: MemoryState, observed: LiveState,
        capabilities: Capabilities
    ) throws(PlanError) -> Plan {
        guard let vmType = observed.vmType, observed.exists else {
            throw PlanError("guest \(observed.name) does not exist on this host", hint: "run `gmemctl apply` first")
        }
        guard let vm = capabilities.vmType(vmType) else {
            throw PlanError("VM type \(vmType.rawValue) is not offered by \(capabilities.name)")
        }
        let addressMap = observed.addressMap
        let holes = addressMap.unmappedParts(ofGPA: range)
        if let hole = holes.first {
            throw PlanError(
                "range \(hex(range.lowerBound))-\(hex(range.upperBound - 1)) is not all guest memory: \(hex(hole.lowerBound))-\(hex(hole.upperBound - 1)) has no memslot"
            )
        }
        var plan = Plan(guest: observed.name)
        var targets: [String: Layout] = [:]
        for slice in addressMap.blockRanges(forGPA: range) {
            guard let block = observed.block(named: slice.block) else { continue }
            var target = targets[slice.block] ?? block.layout
            target.assign(state, to: slice.offsets)
            targets[slice.block] = target
        }
        for block in observed.blocks {
            guard let target = targets[block.name] else { continue }
            let steps = conversionSteps(
                block: block, from: block.layout, to: target, vm: vm,
                addressMap: addressMap, listeners: observed.listeners)
            if steps.transitions.contains(where: { _ in true }), !canConvert(block: block, vm: vm) {
                throw PlanError(
                    "block \(block.name) cannot convert on \(capabilities.name) (\(vmType.rawValue) VM, conversion: \(vm.conversion.rawValue))",
                    hint: missingConversionHint(block: block, vm: vm))
            }
            plan.operations += steps.operations
            plan.transitions += steps.transitions
        }
        return plan
    }

    /// One notification per guest window of every shared run of a block: what a listener must map when it
    /// joins, or unmap when it leaves or the block goes away.
    private static func sharedWindowNotifications(
        _ listener: String, _ kind: ListenerEventKind, block: String,
        layout: Layout, addressMap: AddressMap
    ) -> [PlanOperation] {
        layout.runs.filter { $0.value == .shared }.flatMap { run in
            addressMap.gpaRanges(block: block, offsets: run.range).map {
                PlanOperation.notify(
                    listener: listener, kind: kind, gpa: $0.gpaRange.lowerBound, size: $0.gpaRange.byteCount)
            }
        }
    }

    // MARK: - Building and tearing down

    /// Whether a live block is the block the manifest asks for: same size, backend and guest_memfd flags, and
    /// complete (a run that failed half-way may leave a block without its guest_memfd or host mapping).
    /// Under per-gmem attributes (2026 series) INIT_SHARED only picks the starting state, which conversions
    /// change later, so it does not make a block different.
    static func sameObjects(live: LiveBlock, desired: DesiredBlock, conversion: ConversionABI) -> Bool {
        var ignored: UInt64 = 0
        if conversion == .gmemAttributes2 { ignored = KVMConstants.gmemFlagInitShared }
        return live.size == desired.size && live.backend == desired.backend && isComplete(live)
            && live.guestMemfdFlags & ~ignored == desired.guestMemfdFlags & ~ignored
    }

    /// A block with every object a successful build gives it (fds are only known once apply has run).
    static func isComplete(_ live: LiveBlock) -> Bool {
        live.guestMemfd != nil && live.hostAddress != nil
    }

    private static func build(
        _ block: DesiredBlock, desired: DesiredState, vm: VMTypeCapabilities,
        live: inout LiveState, into plan: inout Plan
    ) {
        let memory: HostMemory
        switch block.backend {
        case .legacy(let shared):
            plan.operations.append(.createSharedBacking(block: block.name, backing: shared, size: block.size))
            plan.operations.append(.mapHostMemory(block: block.name, memory: .sharedBacking, size: block.size))
            plan.operations.append(
                .createGuestMemfd(
                    block: block.name, size: block.size, flags: block.guestMemfdFlags, backend: block.backend))
            memory = .sharedBacking
        case .inPlace:
            plan.operations.append(
                .createGuestMemfd(
                    block: block.name, size: block.size, flags: block.guestMemfdFlags, backend: block.backend))
            plan.operations.append(.mapHostMemory(block: block.name, memory: .guestMemfd, size: block.size))
            memory = .guestMemfd
        }
        var layout = Layout()
        let mappings = desired.mappings.filter { $0.block == block.name }
        // The lowest free ids, found in one pass (asking `nextFreeSlot` per mapping is quadratic).
        var used = Set(live.memslots.map(\.slot))
        var slot: UInt32 = 0
        for mapping in mappings {
            while used.contains(slot) { slot += 1 }
            used.insert(slot)
            plan.operations.append(.bindMemslot(slot: slot, mapping: mapping, memory: memory))
            live.memslots.append(
                LiveMemslot(slot: slot, mapping: mapping, flags: KVMConstants.memGuestMemfd, userspaceAddress: 0))
            layout.assign(block.initialState, to: mapping.offsetRange)
        }
        // Legacy slots of a VM with per-VM attributes start shared in the kernel; mark them private as QEMU does
        // when it registers a guest_memfd slot. The listeners never saw these ranges shared, so no event.
        if case .legacy = block.backend, block.initialState == .private, vm.hasVMAttributes {
            for mapping in mappings {
                plan.operations.append(.setVMAttributes(gpa: mapping.gpa, size: mapping.size, to: .private))
            }
        }
        if case .legacy(let shared) = block.backend, shared.prealloc {
            plan.operations.append(.populate(block: block.name, memory: .sharedBacking, offset: 0, size: block.size))
        }
        // Memory that starts shared is announced to the listeners once it is bound.
        if block.initialState == .shared {
            for listener in desired.listeners where live.listeners.contains(listener) {
                for mapping in mappings {
                    plan.operations.append(
                        .notify(listener: listener, kind: .map, gpa: mapping.gpa, size: mapping.size))
                }
            }
        }
        var liveBlock = LiveBlock(
            name: block.name, size: block.size, backend: block.backend, guestMemfdFlags: block.guestMemfdFlags)
        liveBlock.layout = layout
        live.blocks.append(liveBlock)
    }

    private static func teardown(block name: String, live: inout LiveState, into plan: inout Plan) {
        // Devices must stop using shared memory before it goes away.
        if let block = live.block(named: name) {
            for listener in live.listeners {
                plan.operations += sharedWindowNotifications(
                    listener, .unmap, block: name, layout: block.layout,
                    addressMap: live.addressMap)
            }
        }
        for memslot in live.memslots where memslot.mapping.block == name {
            plan.operations.append(.deleteMemslot(slot: memslot.slot, mapping: memslot.mapping))
        }
        live.memslots.removeAll { $0.mapping.block == name }
        plan.operations.append(.destroyBlock(block: name))
        live.blocks.removeAll { $0.name == name }
    }

    // MARK: - Conversions

    /// How a block converts on this VM: in-place blocks through the guest_memfd ABI; legacy blocks only
    /// through per-VM attributes. Per-gmem attributes never convert a legacy block: in the in-place mode of
    /// Linux 7.4 its memslots are guest_memfd-only, so the guest never sees its shared backing.
    static func mechanism(block: LiveBlock, vm: VMTypeCapabilities) -> ConversionABI? {
        if block.backend.isInPlace {
            return vm.conversion.convertsInPlace ? vm.conversion : nil
        }
        return vm.hasVMAttributes ? .vmAttributes : nil
    }

    static func canConvert(block: LiveBlock, vm: VMTypeCapabilities) -> Bool { mechanism(block: block, vm: vm) != nil }

    static func missingConversionHint(block: LiveBlock, vm: VMTypeCapabilities) -> String {
        if !vm.vmType.hasPrivateMemory {
            return "a default VM never has private memory; use vm.type sw-protected, sev-snp or tdx"
        }
        if block.backend.isInPlace {
            return
                "in-place conversion needs KVM_CAP_GMEM_CONVERSION (2025 POC) or KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES (Linux 7.4, kvm.gmem_in_place_conversion=1)"
        }
        if vm.conversion == .gmemAttributes2 {
            return
                "kvm.gmem_in_place_conversion=1 makes every guest_memfd memslot guest_memfd-only: use backend: in-place"
        }
        return "needs KVM_CAP_MEMORY_ATTRIBUTES with PRIVATE (Linux 6.8+ on a VM type with private memory)"
    }

    struct Steps {
        var operations: [PlanOperation] = []
        var transitions: [BlockTransition] = []
    }

    /// The ordered operations for every maximal transition of one block. To private: listeners `unmap`
    /// first, then convert, then discard the shared copy (legacy, except hugetlb). To shared: convert, then
    /// listeners `map`, then discard the private copy (legacy). In-place blocks discard nothing.
    static func conversionSteps(
        block: LiveBlock, from: Layout, to: Layout, vm: VMTypeCapabilities,
        addressMap: AddressMap, listeners: [String]
    ) -> Steps {
        var steps = Steps()
        let mechanism = mechanism(block: block, vm: vm) ?? (block.backend.isInPlace ? vm.conversion : .vmAttributes)
        for transition in Layout.transitions(from: from, to: to) {
            guard let target = transition.to else { continue }
            let offsets = transition.range
            let windows = addressMap.gpaRanges(block: block.name, offsets: offsets).map(\.gpaRange)
            steps.transitions.append(
                BlockTransition(
                    block: block.name, offset: offsets.lowerBound, size: offsets.byteCount,
                    from: transition.from, to: target, gpaRanges: windows))
            let notifications: [PlanOperation] = listeners.flatMap { listener in
                windows.map {
                    PlanOperation.notify(
                        listener: listener, kind: target == .private ? .unmap : .map,
                        gpa: $0.lowerBound, size: $0.byteCount)
                }
            }
            let convert: [PlanOperation]
            if mechanism == .vmAttributes {
                convert = windows.map { .setVMAttributes(gpa: $0.lowerBound, size: $0.byteCount, to: target) }
            } else {
                convert = [
                    .convertGuestMemfd(
                        block: block.name, offset: offsets.lowerBound, size: offsets.byteCount,
                        to: target, abi: mechanism)
                ]
            }
            var discard: [PlanOperation] = []
            if case .legacy(let shared) = block.backend {
                if target == .shared {
                    discard = [
                        .discard(
                            block: block.name, memory: .guestMemfd, offset: offsets.lowerBound,
                            size: offsets.byteCount, method: .punchHole)
                    ]
                } else if shared.source != .hugetlb {
                    // hugetlb shared backings are preallocated and stay (their pool pages are kept, not given back).
                    discard = [
                        .discard(
                            block: block.name, memory: .sharedBacking, offset: offsets.lowerBound,
                            size: offsets.byteCount,
                            method: shared.source == .anonymous ? .madviseDontneed : .punchHole)
                    ]
                }
            }
            if target == .private {
                steps.operations += notifications + convert + discard
            } else {
                steps.operations += convert + notifications + discard
            }
        }
        return steps
    }
}
