import Config

/// What a block is built as once `auto` is resolved against a host.
public enum ResolvedBackend: Sendable, Hashable, Codable {
    /// guest_memfd for private memory plus a separate shared backing.
    case legacy(SharedBacking)
    /// One mmap-able guest_memfd serving both states.
    case inPlace

    public var isInPlace: Bool { self == .inPlace }
    public var name: String { isInPlace ? "in-place" : "legacy" }
}

/// A block as it should exist on a particular host.
public struct DesiredBlock: Sendable, Hashable, Codable {
    public var name: String
    public var size: UInt64
    public var backend: ResolvedBackend
    /// `kvm_create_guest_memfd.flags` for this block on this host.
    public var guestMemfdFlags: UInt64
    /// The state the guest_memfd (and the VM's attributes) start in right after the block is built.
    public var initialState: MemoryState
    /// Why the backend is what it is (shown by `plan` for `auto`).
    public var resolution: String

    public init(
        name: String, size: UInt64, backend: ResolvedBackend, guestMemfdFlags: UInt64, initialState: MemoryState,
        resolution: String
    ) {
        self.name = name
        self.size = size
        self.backend = backend
        self.guestMemfdFlags = guestMemfdFlags
        self.initialState = initialState
        self.resolution = resolution
    }
}

/// A manifest made concrete for one host: backends resolved, memslots numbered, and the layout translated
/// into each block's offset space (the state lives with the block, as QEMU's RamBlockAttributes does).
public struct DesiredState: Sendable, Hashable {
    public var name: String
    public var vmType: VMType
    public var blocks: [DesiredBlock]
    /// One entry per memslot: manifest mappings larger than a memslot can hold are split (MemslotSplit).
    public var mappings: [Mapping]
    /// The mappings as the manifest wrote them.
    public var manifestMappings: [Mapping]
    /// Desired private/shared state per block, over the block offsets that some mapping makes visible.
    public var blockLayouts: [String: Layout]
    public var listeners: [String]
    /// The conversion mechanism of this VM type on this host.
    public var conversion: ConversionABI
    public var addressMap: AddressMap

    public func block(named name: String) -> DesiredBlock? { blocks.first { $0.name == name } }
}

public struct DesiredStateError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

extension DesiredState {
    /// Builds the desired state of `manifest` on a host with `capabilities`. Throws the capability
    /// diagnostics (every one) when the host cannot provide what the manifest needs.
    public init(manifest: Manifest, capabilities: Capabilities) throws(DesiredStateError) {
        let addressMap = AddressMap(mappings: manifest.spec.mappings)
        let layouts: [String: Layout]
        do {
            layouts = try DesiredState.blockLayouts(manifest: manifest, addressMap: addressMap)
        } catch {
            throw DesiredStateError(diagnostics: [
                manifest.diagnostic(
                    at: "spec.layout", summary: "the layout gives one block offset two states",
                    detail:
                        "\(error); a block mapped at two guest addresses has one state per offset, so both windows must agree"
                )
            ])
        }
        let requested = layouts.mapValues { Set($0.runs.lazy.map(\.value)) }
        let problems = CapabilityCheck.check(manifest, against: capabilities, requestedStates: requested)
            .filter { $0.severity == .error }
        guard problems.isEmpty, let vmCapabilities = capabilities.vmType(manifest.spec.vm.type) else {
            throw DesiredStateError(diagnostics: problems)
        }
        self.name = manifest.metadata.name
        self.vmType = manifest.spec.vm.type
        self.blocks = manifest.spec.blocks.map {
            BackendResolver.resolve(
                $0, vm: vmCapabilities, inPlaceMode: capabilities.inPlaceMode, layout: layouts[$0.name])
        }
        self.mappings = MemslotSplit.split(manifest.spec.mappings, maxSize: capabilities.maxMemslotSize)
        self.manifestMappings = manifest.spec.mappings
        self.blockLayouts = layouts
        self.listeners = manifest.spec.listeners.map(\.name)
        self.conversion = vmCapabilities.conversion
        self.addressMap = addressMap
    }

    /// The manifest's GPA layout (default over all mapped memory, then shared and private ranges) in each
    /// block's offset space, limited to the offsets some mapping makes visible.
    static func blockLayouts(manifest: Manifest, addressMap: AddressMap) throws -> [String: Layout] {
        // Built at once (one sort, one sweep) rather than range by range: a manifest may hold 100,000 ranges.
        let layout = manifest.spec.layout
        var builder = Layout.Builder(
            capacity: manifest.spec.mappings.count + layout.shared.count + layout.private.count)
        for mapping in manifest.spec.mappings {
            builder.assign(layout.defaultState, to: mapping.gpaRange)
        }
        // Parts of ranges outside mapped memory (a validation error anyway) vanish in the conversion below,
        // which reads the GPA layout only through the mappings.
        for range in layout.shared { builder.assign(.shared, to: range.range) }
        for range in layout.private { builder.assign(.private, to: range.range) }
        let gpaLayout = builder.build()
        var layouts = try addressMap.blockLayouts(fromGPALayout: gpaLayout)
        for block in manifest.spec.blocks where layouts[block.name] == nil {
            layouts[block.name] = Layout()
        }
        return layouts
    }
}

/// Resolves a block's backend (`auto` included) and picks its guest_memfd creation flags for a host.
public enum BackendResolver {
    /// `inPlaceMode` is `kvm.gmem_in_place_conversion=1`: it binds every guest_memfd memslot guest_memfd-only,
    /// on every VM type, so `auto` must never give a legacy block there.
    public static func resolve(
        _ block: Block, vm: VMTypeCapabilities, inPlaceMode: Bool, layout: Layout?
    ) -> DesiredBlock {
        let backend: ResolvedBackend
        let reason: String
        switch block.backend.type {
        case .legacy:
            backend = .legacy(block.backend.shared)
            reason = "legacy as declared"
        case .inPlace:
            backend = .inPlace
            reason = "in-place as declared"
        case .auto:
            if inPlaceMode || vm.conversion == .gmemAttributes2 {
                backend = .inPlace
                reason =
                    "auto: in-place, since kvm.gmem_in_place_conversion=1 makes every guest_memfd memslot guest_memfd-only (a legacy shared backing would be invisible to the guest)"
            } else if vm.conversion.convertsInPlace {
                backend = .inPlace
                reason = "auto: in-place, since the host converts in place (\(vm.conversion.rawValue))"
            } else {
                backend = .legacy(block.backend.shared)
                reason = "auto: legacy, since the host cannot convert in place (conversion: \(vm.conversion.rawValue))"
            }
        }
        let (flags, initial) = creation(backend: backend, vm: vm, layout: layout)
        return DesiredBlock(
            name: block.name, size: block.size, backend: backend, guestMemfdFlags: flags,
            initialState: initial, resolution: reason)
    }

    /// guest_memfd flags and the state the block starts in, per ABI (docs/kernels.md).
    static func creation(backend: ResolvedBackend, vm: VMTypeCapabilities, layout: Layout?) -> (UInt64, MemoryState) {
        switch backend {
        case .legacy:
            // gmem flags 0. A VM with per-VM attributes marks every slot private right after binding (QEMU's
            // kvm_set_phys_mem); without them the slot stays shared, served from the shared backing.
            let startsPrivate = vm.vmType.hasPrivateMemory && vm.hasVMAttributes
            return (0, startsPrivate ? .private : .shared)
        case .inPlace:
            switch vm.conversion {
            case .gmemConvertPOC:
                return (KVMConstants.pocGmemFlagSupportShared | KVMConstants.pocGmemFlagInitPrivate, .private)
            case .gmemAttributes2:
                // Start in the state most of the block wants, to save a conversion of everything.
                let allShared = layout.map { !$0.isEmpty && $0.runs.allSatisfy { $0.value == .shared } } ?? false
                if allShared && vm.guestMemfdFlags & KVMConstants.gmemFlagInitShared != 0 {
                    return (KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared, .shared)
                }
                return (KVMConstants.gmemFlagMmap, .private)
            case .sharedOnly, .vmAttributes, .none:
                // Only a shared, mmap-able guest_memfd can serve in place without conversion (6.18).
                return (KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared, .shared)
            }
        }
    }
}
