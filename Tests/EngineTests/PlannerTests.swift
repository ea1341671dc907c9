import Config
import Foundation
import ProcessSupport
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// The planner against docs/architecture.md ("Key decisions"): exact operation sequences.
@Suite("Planner sequences")
struct PlannerTests {
    static let size = 64 * engMiB
    static let mapping = Mapping(block: "ram", offset: 0, size: size, gpa: 0)
    static let sharedGPA: UInt64 = 0x100000
    static let sharedSize: UInt64 = engMiB

    static func singleBlock(
        _ backend: String, vm: String = "sw-protected", defaultState: String = "private",
        shared: [String] = [engRange(gpa: sharedGPA, size: sharedSize)], listeners: [String] = ["vfio0"]
    ) -> String {
        manifestYAML(
            vm: vm, blocks: [engBlock(backend: backend)], mappings: [engMapping(size: size, gpa: 0)],
            defaultState: defaultState, shared: shared, listeners: listeners)
    }

    // MARK: - Legacy

    @Test("legacy memfd on linux-6.18: build, private over the slot, then shared range with gmem punch hole")
    func legacyMemfdFresh() throws {
        let (desired, plan) = try engFreshPlan(Self.singleBlock(engLegacyMemfd), on: Profiles.linux618)
        let backing = SharedBacking(source: .memfd)
        #expect(desired.blocks.map(\.backend) == [.legacy(backing)])
        let expected: [PlanOperation] = [
            .createVM(type: .swProtected),
            .createSharedBacking(block: "ram", backing: backing, size: Self.size),
            .mapHostMemory(block: "ram", memory: .sharedBacking, size: Self.size),
            .createGuestMemfd(block: "ram", size: Self.size, flags: 0, backend: .legacy(backing)),
            .bindMemslot(slot: 0, mapping: Self.mapping, memory: .sharedBacking),
            .setVMAttributes(gpa: 0, size: Self.size, to: .private),
            // to shared: convert, (listeners map), then discard the private copy in the guest_memfd.
            .setVMAttributes(gpa: Self.sharedGPA, size: Self.sharedSize, to: .shared),
            .discard(
                block: "ram", memory: .guestMemfd, offset: Self.sharedGPA, size: Self.sharedSize, method: .punchHole),
            // a listener that joins learns the shared ranges after they are shared.
            .notify(listener: "vfio0", kind: .map, gpa: Self.sharedGPA, size: Self.sharedSize),
        ]
        #expect(plan.operations == expected)
        #expect(
            plan.transitions == [
                BlockTransition(
                    block: "ram", offset: Self.sharedGPA, size: Self.sharedSize, from: .private,
                    to: .shared, gpaRanges: [Self.sharedGPA..<(Self.sharedGPA + Self.sharedSize)])
            ])
        #expect(plan.resolutions["ram"]?.contains("legacy") == true)
        #expect(plan.listeners == ["vfio0"])
    }

    /// Converting the shared range back at run time, per shared source (hugetlb keeps its backing:
    /// docs/architecture.md).
    @Test(
        "legacy to private at run time: unmap, attributes, discard of the shared backing (none for hugetlb)",
        arguments: [("memfd", Optional(DiscardMethod.punchHole)), ("anonymous", .madviseDontneed), ("hugetlb", nil)])
    func legacyToPrivateAtRuntime(source: String, method: DiscardMethod?) throws {
        let backend = ["memfd": engLegacyMemfd, "anonymous": engLegacyAnonymous, "hugetlb": engLegacyHugetlb][source]!
        // 2 MiB-aligned so that the hugetlb backing accepts it too.
        let gpa: UInt64 = 2 * engMiB
        let size: UInt64 = 2 * engMiB
        let applied = try EngApplied(
            Self.singleBlock(backend, shared: [engRange(gpa: gpa, size: size)]), on: Profiles.linux618)
        #expect(try engPrivateGPAs(applied.host, applied.state) == [0..<gpa, (gpa + size)..<Self.size])

        let plan = try Planner.convert(
            gpa: gpa..<(gpa + size), to: .private, observed: applied.state, capabilities: Profiles.linux618)
        var expected: [PlanOperation] = [
            .notify(listener: "vfio0", kind: .unmap, gpa: gpa, size: size),
            .setVMAttributes(gpa: gpa, size: size, to: .private),
        ]
        if let method {
            expected.append(.discard(block: "ram", memory: .sharedBacking, offset: gpa, size: size, method: method))
        }
        #expect(plan.operations == expected)

        // And back to shared: convert, map, punch the guest_memfd.
        let toShared = try Planner.convert(
            gpa: gpa..<(gpa + size), to: .shared, observed: applied.state, capabilities: Profiles.linux618)
        #expect(toShared.operations.isEmpty, "already shared: nothing to do")
        let other: UInt64 = 8 * engMiB
        let back = try Planner.convert(
            gpa: other..<(other + size), to: .shared, observed: applied.state, capabilities: Profiles.linux618)
        #expect(
            back.operations == [
                .setVMAttributes(gpa: other, size: size, to: .shared),
                .notify(listener: "vfio0", kind: .map, gpa: other, size: size),
                .discard(block: "ram", memory: .guestMemfd, offset: other, size: size, method: .punchHole),
            ])
    }

    // MARK: - In place

    @Test("in-place under gmem-convert-poc: SUPPORT_SHARED|INIT_PRIVATE, POC convert ops, no attributes, no discards")
    func inPlacePOC() throws {
        let profile = Profiles.gmemConvertPOC
        let (_, plan) = try engFreshPlan(Self.singleBlock(engInPlace), on: profile)
        let flags = KVMConstants.pocGmemFlagSupportShared | KVMConstants.pocGmemFlagInitPrivate
        #expect(flags == 3)
        #expect(
            plan.operations == [
                .createVM(type: .swProtected),
                .createGuestMemfd(block: "ram", size: Self.size, flags: flags, backend: .inPlace),
                .mapHostMemory(block: "ram", memory: .guestMemfd, size: Self.size),
                .bindMemslot(slot: 0, mapping: Self.mapping, memory: .guestMemfd),
                .convertGuestMemfd(
                    block: "ram", offset: Self.sharedGPA, size: Self.sharedSize, to: .shared, abi: .gmemConvertPOC),
                .notify(listener: "vfio0", kind: .map, gpa: Self.sharedGPA, size: Self.sharedSize),
            ])
        #expect(plan.operations.map(\.call).contains("KVM_GMEM_CONVERT_SHARED"))

        let applied = try EngApplied(Self.singleBlock(engInPlace), on: profile)
        let range = Self.sharedGPA..<(Self.sharedGPA + Self.sharedSize)
        let toPrivate = try Planner.convert(gpa: range, to: .private, observed: applied.state, capabilities: profile)
        #expect(
            toPrivate.operations == [
                .notify(listener: "vfio0", kind: .unmap, gpa: Self.sharedGPA, size: Self.sharedSize),
                .convertGuestMemfd(
                    block: "ram", offset: Self.sharedGPA, size: Self.sharedSize, to: .private, abi: .gmemConvertPOC),
            ])
        #expect(toPrivate.operations.last?.call == "KVM_GMEM_CONVERT_PRIVATE")
        let other: UInt64 = 16 * engMiB
        let toShared = try Planner.convert(
            gpa: other..<(other + engMiB), to: .shared, observed: applied.state, capabilities: profile)
        #expect(
            toShared.operations == [
                .convertGuestMemfd(block: "ram", offset: other, size: engMiB, to: .shared, abi: .gmemConvertPOC),
                .notify(listener: "vfio0", kind: .map, gpa: other, size: engMiB),
            ])
    }

    @Test("in-place under gmem-attributes2: MMAP (no INIT_SHARED) for a mixed layout, ATTRIBUTES2 both ways")
    func inPlaceAttributes2Mixed() throws {
        let profile = Profiles.gmemAttributes2
        let (_, plan) = try engFreshPlan(Self.singleBlock(engInPlace), on: profile)
        #expect(
            plan.operations == [
                .createVM(type: .swProtected),
                .createGuestMemfd(block: "ram", size: Self.size, flags: KVMConstants.gmemFlagMmap, backend: .inPlace),
                .mapHostMemory(block: "ram", memory: .guestMemfd, size: Self.size),
                .bindMemslot(slot: 0, mapping: Self.mapping, memory: .guestMemfd),
                .convertGuestMemfd(
                    block: "ram", offset: Self.sharedGPA, size: Self.sharedSize, to: .shared, abi: .gmemAttributes2),
                .notify(listener: "vfio0", kind: .map, gpa: Self.sharedGPA, size: Self.sharedSize),
            ])
        let applied = try EngApplied(Self.singleBlock(engInPlace), on: profile)
        #expect(
            engSameRuns(
                try engGmemRuns(applied.host, applied.state),
                [
                    (0..<Self.sharedGPA, .private), (Self.sharedGPA..<(2 * engMiB), .shared),
                    ((2 * engMiB)..<Self.size, .private),
                ]))
        let range = Self.sharedGPA..<(Self.sharedGPA + Self.sharedSize)
        let toPrivate = try Planner.convert(gpa: range, to: .private, observed: applied.state, capabilities: profile)
        #expect(
            toPrivate.operations == [
                .notify(listener: "vfio0", kind: .unmap, gpa: Self.sharedGPA, size: Self.sharedSize),
                .convertGuestMemfd(
                    block: "ram", offset: Self.sharedGPA, size: Self.sharedSize, to: .private, abi: .gmemAttributes2),
            ])
        #expect(toPrivate.operations.last?.call == "KVM_SET_MEMORY_ATTRIBUTES2")
    }

    @Test("in-place under gmem-attributes2 with an all-shared layout: MMAP|INIT_SHARED and no conversion")
    func inPlaceAttributes2AllShared() throws {
        let profile = Profiles.gmemAttributes2
        let yaml = Self.singleBlock(engInPlace, defaultState: "shared", shared: [])
        let (desired, plan) = try engFreshPlan(yaml, on: profile)
        #expect(desired.blocks.first?.initialState == .shared)
        #expect(
            plan.operations == [
                .createVM(type: .swProtected),
                .createGuestMemfd(
                    block: "ram", size: Self.size, flags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared,
                    backend: .inPlace),
                .mapHostMemory(block: "ram", memory: .guestMemfd, size: Self.size),
                .bindMemslot(slot: 0, mapping: Self.mapping, memory: .guestMemfd),
                .notify(listener: "vfio0", kind: .map, gpa: 0, size: Self.size),
            ])
        // Then a run-time conversion of a range to private: unmap first, one ATTRIBUTES2 call.
        let applied = try EngApplied(yaml, on: profile)
        let plan2 = try Planner.convert(gpa: 0..<engMiB, to: .private, observed: applied.state, capabilities: profile)
        #expect(
            plan2.operations == [
                .notify(listener: "vfio0", kind: .unmap, gpa: 0, size: engMiB),
                .convertGuestMemfd(block: "ram", offset: 0, size: engMiB, to: .private, abi: .gmemAttributes2),
            ])
    }

    @Test(
        "an in-place block never issues per-VM attributes or discards",
        arguments: ["gmem-convert-poc", "gmem-attributes2"])
    func inPlaceNeverDiscards(profileName: String) throws {
        let profile = try #require(Profiles.named(profileName))
        let yaml = manifestYAML(
            vm: "tdx", blocks: [engBlock(backend: engInPlace)], mappings: [engMapping(size: Self.size, gpa: 0)],
            shared: [engRange(gpa: 0, size: engMiB), engRange(gpa: 8 * engMiB, size: 4 * engMiB)],
            listeners: ["a", "b"])
        let applied = try EngApplied(yaml, on: profile)
        var all = applied.plan.operations
        for (range, state) in [(0..<(16 * engMiB), MemoryState.private), ((4 * engMiB)..<(32 * engMiB), .shared)] {
            all += try Planner.convert(gpa: range, to: state, observed: applied.state, capabilities: profile).operations
        }
        for operation in all {
            if case .setVMAttributes = operation { Issue.record("per-VM attributes in an in-place plan: \(operation)") }
            if case .discard = operation { Issue.record("discard in an in-place plan: \(operation)") }
            if case .createSharedBacking = operation {
                Issue.record("shared backing in an in-place plan: \(operation)")
            }
        }
    }

    // MARK: - Listener ordering

    /// Every listener's `unmap` precedes the conversion it belongs to, every `map` follows it.
    @Test(
        "listener ordering in every conversion, legacy and in place",
        arguments: [
            ("linux-6.18", engLegacyMemfd), ("linux-6.18", engLegacyHugetlb), ("gmem-convert-poc", engInPlace),
            ("gmem-attributes2", engInPlace), ("linux-6.8", engLegacyAnonymous),
        ])
    func listenerOrdering(profileName: String, backend: String) throws {
        let profile = try #require(Profiles.named(profileName))
        let yaml = manifestYAML(
            blocks: [engBlock(size: "16MiB", backend: backend)],
            mappings: [
                engMapping(size: 8 * engMiB, gpa: 0), engMapping(offset: 8 * engMiB, size: 8 * engMiB, gpa: 4 * engGiB),
            ],
            shared: [engRange(gpa: 6 * engMiB, size: 2 * engMiB), engRange(gpa: 4 * engGiB, size: 2 * engMiB)],
            listeners: ["vfio0", "vhost0"])
        let applied = try EngApplied(yaml, on: profile)
        // The shared run is offsets 6..10 MiB, seen in two windows.
        let cases: [(Range<UInt64>, MemoryState)] = [
            (0..<(8 * engMiB), .private), ((4 * engGiB)..<(4 * engGiB + 2 * engMiB), .private),
            (0..<(4 * engMiB), .shared), ((4 * engGiB + 4 * engMiB)..<(4 * engGiB + 8 * engMiB), .shared),
        ]
        for (range, state) in cases {
            let plan = try Planner.convert(gpa: range, to: state, observed: applied.state, capabilities: profile)
            let ops = plan.operations
            let conversions = ops.indices.filter { ops[$0].isConversion }
            try #require(!conversions.isEmpty, "\(range) -> \(state)")
            for listener in ["vfio0", "vhost0"] {
                let events = ops.indices.filter {
                    if case .notify(listener, _, _, _) = ops[$0] { return true }
                    return false
                }
                #expect(!events.isEmpty, "\(listener) hears of \(range) -> \(state)")
                for index in events {
                    guard case .notify(_, let kind, _, _) = ops[index] else { continue }
                    if state == .private {
                        #expect(kind == .unmap)
                        #expect(index < conversions.first!, "unmap before the conversion: \(ops)")
                    } else {
                        #expect(kind == .map)
                        #expect(index > conversions.last!, "map after the conversion: \(ops)")
                    }
                }
            }
        }
    }

    // MARK: - Coalescing and windows

    static func splitYAML(_ backend: String) -> String {
        manifestYAML(
            blocks: [engBlock(size: "8MiB", backend: backend)],
            mappings: [
                engMapping(size: 4 * engMiB, gpa: 0), engMapping(offset: 4 * engMiB, size: 4 * engMiB, gpa: 4 * engGiB),
            ],
            // Two adjacent ranges below 4 GiB, plus the first MiB above: offsets 2..5 MiB, one run.
            shared: [
                engRange(gpa: 2 * engMiB, size: engMiB), engRange(gpa: 3 * engMiB, size: engMiB),
                engRange(gpa: 4 * engGiB, size: engMiB),
            ],
            listeners: ["vfio0"])
    }

    static let low = Mapping(block: "ram", offset: 0, size: 4 * engMiB, gpa: 0)
    static let high = Mapping(block: "ram", offset: 4 * engMiB, size: 4 * engMiB, gpa: 4 * engGiB)

    @Test("x86 split, legacy: adjacent ranges coalesce; one discard, per-window attributes and notifications")
    func splitLegacy() throws {
        let (_, plan) = try engFreshPlan(Self.splitYAML(engLegacyMemfd), on: Profiles.linux618)
        let backing = SharedBacking(source: .memfd)
        #expect(
            plan.operations == [
                .createVM(type: .swProtected),
                .createSharedBacking(block: "ram", backing: backing, size: 8 * engMiB),
                .mapHostMemory(block: "ram", memory: .sharedBacking, size: 8 * engMiB),
                .createGuestMemfd(block: "ram", size: 8 * engMiB, flags: 0, backend: .legacy(backing)),
                .bindMemslot(slot: 0, mapping: Self.low, memory: .sharedBacking),
                .bindMemslot(slot: 1, mapping: Self.high, memory: .sharedBacking),
                .setVMAttributes(gpa: 0, size: 4 * engMiB, to: .private),
                .setVMAttributes(gpa: 4 * engGiB, size: 4 * engMiB, to: .private),
                .setVMAttributes(gpa: 2 * engMiB, size: 2 * engMiB, to: .shared),
                .setVMAttributes(gpa: 4 * engGiB, size: engMiB, to: .shared),
                .discard(block: "ram", memory: .guestMemfd, offset: 2 * engMiB, size: 3 * engMiB, method: .punchHole),
                .notify(listener: "vfio0", kind: .map, gpa: 2 * engMiB, size: 2 * engMiB),
                .notify(listener: "vfio0", kind: .map, gpa: 4 * engGiB, size: engMiB),
            ])
        #expect(
            plan.transitions == [
                BlockTransition(
                    block: "ram", offset: 2 * engMiB, size: 3 * engMiB, from: .private, to: .shared,
                    gpaRanges: [(2 * engMiB)..<(4 * engMiB), (4 * engGiB)..<(4 * engGiB + engMiB)])
            ])
    }

    @Test("x86 split, in place: one guest_memfd conversion for a run seen in two windows")
    func splitInPlace() throws {
        for (profile, abi, flags) in [
            (Profiles.gmemConvertPOC, ConversionABI.gmemConvertPOC, UInt64(3)),
            (Profiles.gmemAttributes2, .gmemAttributes2, KVMConstants.gmemFlagMmap),
        ] {
            let (_, plan) = try engFreshPlan(Self.splitYAML(engInPlace), on: profile)
            #expect(
                plan.operations == [
                    .createVM(type: .swProtected),
                    .createGuestMemfd(block: "ram", size: 8 * engMiB, flags: flags, backend: .inPlace),
                    .mapHostMemory(block: "ram", memory: .guestMemfd, size: 8 * engMiB),
                    .bindMemslot(slot: 0, mapping: Self.low, memory: .guestMemfd),
                    .bindMemslot(slot: 1, mapping: Self.high, memory: .guestMemfd),
                    .convertGuestMemfd(block: "ram", offset: 2 * engMiB, size: 3 * engMiB, to: .shared, abi: abi),
                    .notify(listener: "vfio0", kind: .map, gpa: 2 * engMiB, size: 2 * engMiB),
                    .notify(listener: "vfio0", kind: .map, gpa: 4 * engGiB, size: engMiB),
                ], "\(profile.name)")

            // At run time (listener registered), the way back: unmap in both windows, then one conversion.
            let applied = try EngApplied(Self.splitYAML(engInPlace), on: profile)
            let toPrivate = try Planner.convert(
                gpa: (2 * engMiB)..<(4 * engMiB), to: .private, observed: applied.state, capabilities: profile)
            #expect(
                toPrivate.operations == [
                    .notify(listener: "vfio0", kind: .unmap, gpa: 2 * engMiB, size: 2 * engMiB),
                    .convertGuestMemfd(block: "ram", offset: 2 * engMiB, size: 2 * engMiB, to: .private, abi: abi),
                ])
        }
    }

    @Test("run-time conversion across the MMIO hole is refused, naming the hole")
    func convertAcrossHole() throws {
        let applied = try EngApplied(Self.splitYAML(engInPlace), on: Profiles.gmemConvertPOC)
        #expect {
            try Planner.convert(
                gpa: 0..<(4 * engGiB + engMiB), to: .private, observed: applied.state,
                capabilities: Profiles.gmemConvertPOC)
        } throws: { error in
            "\(error)".contains("0x400000-0xffffffff has no memslot")
        }
    }

    // MARK: - auto

    /// Per profile and VM type: in-place exactly where that VM type's conversion converts in place.
    @Test("auto resolves per profile and VM type, and the plan says which and why")
    func autoResolution() throws {
        let expectations: [(String, String, ResolvedBackend, String)] = [
            ("linux-6.8", "sw-protected", .legacy(SharedBacking(source: .memfd)), "vm-attributes"),
            ("linux-6.18", "sw-protected", .legacy(SharedBacking(source: .memfd)), "vm-attributes"),
            ("linux-6.18", "tdx", .legacy(SharedBacking(source: .memfd)), "vm-attributes"),
            ("linux-6.18-sev-snp", "sev-snp", .legacy(SharedBacking(source: .memfd)), "vm-attributes"),
            ("linux-6.18-tdx", "tdx", .legacy(SharedBacking(source: .memfd)), "vm-attributes"),
            ("gmem-convert-poc", "sw-protected", .inPlace, "gmem-convert-poc"),
            ("gmem-convert-poc", "tdx", .inPlace, "gmem-convert-poc"),
            ("linux-6.11", "sev-snp", .legacy(SharedBacking(source: .memfd)), "vm-attributes"),
            ("linux-7.4", "sw-protected", .legacy(SharedBacking(source: .memfd)), "vm-attributes"),
            ("linux-7.4-in-place", "sw-protected", .inPlace, "kvm.gmem_in_place_conversion"),
            ("linux-7.4-in-place-tdx", "tdx", .inPlace, "kvm.gmem_in_place_conversion"),
            ("gmem-attributes2", "tdx", .inPlace, "kvm.gmem_in_place_conversion"),
            ("gmem-attributes2-sev-snp", "sev-snp", .inPlace, "kvm.gmem_in_place_conversion"),
        ]
        for (profileName, vm, backend, abi) in expectations {
            let profile = try #require(Profiles.named(profileName))
            let yaml = manifestYAML(
                vm: vm, blocks: [engBlock(backend: engAuto)], mappings: [engMapping(size: Self.size, gpa: 0)],
                shared: [engRange(gpa: Self.sharedGPA, size: Self.sharedSize)])
            let (_, plan) = try engFreshPlan(yaml, on: profile)
            let created = plan.operations.compactMap { op -> ResolvedBackend? in
                if case .createGuestMemfd(_, _, _, let backend) = op { return backend }
                return nil
            }
            #expect(created == [backend], "\(profileName)/\(vm)")
            let reason = try #require(plan.resolutions["ram"], "\(profileName)/\(vm)")
            #expect(reason.hasPrefix("auto: \(backend.name)"), "\(profileName)/\(vm): \(reason)")
            #expect(reason.contains(abi), "\(profileName)/\(vm): \(reason)")
            // In place converts on the guest_memfd; legacy through per-VM attributes.
            let convertsInGmem = plan.operations.contains {
                if case .convertGuestMemfd = $0 { return true }; return false
            }
            let convertsInVM = plan.operations.contains {
                if case .setVMAttributes = $0 { return true }; return false
            }
            #expect(
                convertsInGmem == backend.isInPlace && convertsInVM == !backend.isInPlace,
                "\(profileName)/\(vm): \(plan.operations)")
        }
        // Default VMs (6.18 and the PVM host): nothing converts, auto stays legacy; an all-shared layout.
        for profile in [Profiles.linux618, Profiles.linux618PVM] {
            let yaml = manifestYAML(
                vm: "default", blocks: [engBlock(backend: engAuto)], mappings: [engMapping(size: Self.size, gpa: 0)],
                defaultState: "shared")
            let (desired, plan) = try engFreshPlan(yaml, on: profile)
            #expect(desired.blocks.first?.backend == .legacy(SharedBacking(source: .memfd)), "\(profile.name)")
            #expect(plan.resolutions["ram"]?.contains("shared-only") == true, "\(profile.name): \(plan.resolutions)")
            #expect(!plan.operations.contains { $0.isConversion }, "\(profile.name): \(plan.operations)")
        }
    }

    // MARK: - Re-planning

    @Test(
        "a converged guest re-plans to nothing",
        arguments: [
            ("linux-6.18", engLegacyMemfd), ("linux-6.18", engLegacyHugetlb), ("linux-6.8", engLegacyAnonymous),
            ("gmem-convert-poc", engInPlace), ("gmem-attributes2", engInPlace), ("gmem-attributes2", engAuto),
        ])
    func convergedIsEmpty(profileName: String, backend: String) throws {
        let profile = try #require(Profiles.named(profileName))
        let yaml = manifestYAML(
            blocks: [engBlock(size: "16MiB", backend: backend)],
            mappings: [
                engMapping(size: 8 * engMiB, gpa: 0), engMapping(offset: 8 * engMiB, size: 8 * engMiB, gpa: 4 * engGiB),
            ],
            shared: [engRange(gpa: 6 * engMiB, size: 2 * engMiB), engRange(gpa: 4 * engGiB, size: 2 * engMiB)],
            listeners: ["vfio0"])
        let applied = try EngApplied(yaml, on: profile)
        let again = try applied.provisioner.plan(applied.manifest)
        #expect(again.operations.isEmpty, "\(again.operations)")
        #expect(!again.hasChanges)
        #expect(again.transitions.isEmpty)
        let desired = try DesiredState(manifest: applied.manifest, capabilities: profile)
        #expect(StateDiff(desired: desired, observed: applied.state).entries.isEmpty)
    }

    @Test("changing the layout plans only the changed transitions")
    func layoutChange() throws {
        let profile = Profiles.linux618
        let applied = try EngApplied(Self.singleBlock(engLegacyMemfd), on: profile)
        // Move the shared MiB from 1 MiB to 4 MiB and widen it to 2 MiB.
        let changed = try engManifest(
            Self.singleBlock(engLegacyMemfd, shared: [engRange(gpa: 4 * engMiB, size: 2 * engMiB)]))
        let plan = try applied.provisioner.plan(changed)
        #expect(
            plan.operations == [
                .notify(listener: "vfio0", kind: .unmap, gpa: engMiB, size: engMiB),
                .setVMAttributes(gpa: engMiB, size: engMiB, to: .private),
                .discard(block: "ram", memory: .sharedBacking, offset: engMiB, size: engMiB, method: .punchHole),
                .setVMAttributes(gpa: 4 * engMiB, size: 2 * engMiB, to: .shared),
                .notify(listener: "vfio0", kind: .map, gpa: 4 * engMiB, size: 2 * engMiB),
                .discard(block: "ram", memory: .guestMemfd, offset: 4 * engMiB, size: 2 * engMiB, method: .punchHole),
            ])
        #expect(!plan.notes.contains { $0.contains("rebuilt") })
        let (_, report) = try applied.provisioner.apply(changed)
        #expect(report.succeeded)
        #expect(try engPrivateGPAs(applied.host, applied.state) == [0..<(4 * engMiB), (6 * engMiB)..<Self.size])
        #expect(try applied.provisioner.plan(changed).operations.isEmpty)
    }

    @Test("changing a mapping rebuilds the block and says so")
    func mappingChangeRebuilds() throws {
        let profile = Profiles.linux618
        let applied = try EngApplied(Self.singleBlock(engLegacyMemfd), on: profile)
        let base: UInt64 = 0x10000000
        let moved = manifestYAML(
            blocks: [engBlock(backend: engLegacyMemfd)], mappings: [engMapping(size: Self.size, gpa: base)],
            shared: [engRange(gpa: base + Self.sharedGPA, size: Self.sharedSize)], listeners: ["vfio0"])
        let manifest = try engManifest(moved)
        let plan = try applied.provisioner.plan(manifest)
        let backing = SharedBacking(source: .memfd)
        let newMapping = Mapping(block: "ram", offset: 0, size: Self.size, gpa: base)
        #expect(
            plan.operations == [
                .notify(listener: "vfio0", kind: .unmap, gpa: Self.sharedGPA, size: Self.sharedSize),
                .deleteMemslot(slot: 0, mapping: Self.mapping),
                .destroyBlock(block: "ram"),
                .createSharedBacking(block: "ram", backing: backing, size: Self.size),
                .mapHostMemory(block: "ram", memory: .sharedBacking, size: Self.size),
                .createGuestMemfd(block: "ram", size: Self.size, flags: 0, backend: .legacy(backing)),
                .bindMemslot(slot: 0, mapping: newMapping, memory: .sharedBacking),
                .setVMAttributes(gpa: base, size: Self.size, to: .private),
                .setVMAttributes(gpa: base + Self.sharedGPA, size: Self.sharedSize, to: .shared),
                .notify(listener: "vfio0", kind: .map, gpa: base + Self.sharedGPA, size: Self.sharedSize),
                .discard(
                    block: "ram", memory: .guestMemfd, offset: Self.sharedGPA, size: Self.sharedSize, method: .punchHole
                ),
            ])
        #expect(
            plan.notes.contains { $0.contains("block ram is rebuilt") && $0.contains("contents are lost") },
            "\(plan.notes)")
        let (_, report) = try applied.provisioner.apply(manifest)
        #expect(report.succeeded, "\(String(describing: report.failure))")
        #expect(try applied.provisioner.plan(manifest).operations.isEmpty)
        // The VM's attributes: the old window's private marks stay (the VM outlives the block), the new window
        // is private except the shared MiB.
        let privates = try engPrivateGPAs(applied.host, applied.state)
        #expect(privates.contains(base..<(base + Self.sharedGPA)))
        #expect(privates.contains((base + Self.sharedGPA + Self.sharedSize)..<(base + Self.size)))
    }

    @Test("a VM cannot change type: planning says destroy first")
    func vmTypeChange() throws {
        let applied = try EngApplied(Self.singleBlock(engLegacyMemfd), on: Profiles.linux618)
        let tdx = try engManifest(Self.singleBlock(engLegacyMemfd, vm: "tdx"))
        #expect { try applied.provisioner.plan(tdx) } throws: { "\($0)".contains("gmemctl destroy") }
    }

    // MARK: - destroy

    @Test("destroy: listeners unmap shared ranges, then memslots go, then the block, then the VM")
    func destroy() throws {
        let applied = try EngApplied(Self.splitYAML(engLegacyMemfd), on: Profiles.linux618)
        let plan = Planner.destroy(observed: applied.state)
        #expect(
            plan.operations == [
                .notify(listener: "vfio0", kind: .unmap, gpa: 2 * engMiB, size: 2 * engMiB),
                .notify(listener: "vfio0", kind: .unmap, gpa: 4 * engGiB, size: engMiB),
                .deleteMemslot(slot: 0, mapping: Self.low),
                .deleteMemslot(slot: 1, mapping: Self.high),
                .destroyBlock(block: "ram"),
                .destroyVM,
            ])
        let kernel = applied.host.simulator
        let (_, report) = try applied.provisioner.destroy(guest: applied.manifest.metadata.name)
        #expect(report.succeeded)
        #expect(!applied.host.guestNames().contains(applied.manifest.metadata.name))
        #expect(kernel.openDescriptors == [kernel.deviceDescriptor], "every fd closed")
    }

    @Test("destroy of two blocks: each block's listeners are told before its memslots go")
    func destroyTwoBlocks() throws {
        let yaml = manifestYAML(
            blocks: [
                engBlock("lo", size: "4MiB", backend: engInPlace), engBlock("hi", size: "4MiB", backend: engInPlace),
            ],
            mappings: [
                engMapping("lo", size: 4 * engMiB, gpa: 0), engMapping("hi", size: 4 * engMiB, gpa: 4 * engGiB),
            ],
            shared: [engRange(gpa: 0, size: engMiB), engRange(gpa: 4 * engGiB + engMiB, size: engMiB)], listeners: ["v"]
        )
        let applied = try EngApplied(yaml, on: Profiles.gmemAttributes2)
        let plan = Planner.destroy(observed: applied.state)
        #expect(
            plan.operations == [
                .notify(listener: "v", kind: .unmap, gpa: 0, size: engMiB),
                .deleteMemslot(slot: 0, mapping: Mapping(block: "lo", offset: 0, size: 4 * engMiB, gpa: 0)),
                .destroyBlock(block: "lo"),
                .notify(listener: "v", kind: .unmap, gpa: 4 * engGiB + engMiB, size: engMiB),
                .deleteMemslot(slot: 1, mapping: Mapping(block: "hi", offset: 0, size: 4 * engMiB, gpa: 4 * engGiB)),
                .destroyBlock(block: "hi"),
                .destroyVM,
            ])
    }

    /// gmem-attributes2 creates an all-shared block with INIT_SHARED only to save a conversion; a later
    /// layout with private ranges must convert that range, not rebuild the block (and lose its contents).
    @Test("gmem-attributes2: an all-shared block that gains a private range converts it, no rebuild")
    func attributes2InitSharedIsNotIdentity() throws {
        let profile = Profiles.gmemAttributes2
        let applied = try EngApplied(Self.singleBlock(engInPlace, defaultState: "shared", shared: []), on: profile)
        let mixed = try engManifest(
            Self.singleBlock(
                engInPlace, defaultState: "shared", shared: [],
                listeners: ["vfio0"]
            ).replacingOccurrences(of: "    private: []", with: "    private:\n      - { gpa: 0x0, size: 0x100000 }"))
        let plan = try applied.provisioner.plan(mixed)
        #expect(
            plan.operations == [
                .notify(listener: "vfio0", kind: .unmap, gpa: 0, size: engMiB),
                .convertGuestMemfd(block: "ram", offset: 0, size: engMiB, to: .private, abi: .gmemAttributes2),
            ])
        #expect(!plan.notes.contains { $0.contains("rebuilt") }, "\(plan.notes)")
        #expect(try applied.provisioner.diff(mixed).entries.map(\.kind) == [.range])
        let (_, report) = try applied.provisioner.apply(mixed)
        #expect(report.succeeded)
        #expect(try applied.provisioner.plan(mixed).operations.isEmpty)
    }

    /// In-place mode makes every guest_memfd memslot guest_memfd-only (`kvm_gmem_prepare_memory_region`), on
    /// every VM type: the shared backing of a legacy block would never be what the guest sees, so no plan may
    /// build one. A default VM is no exception: its legacy block binds a guest_memfd too.
    @Test(
        "legacy blocks are refused in in-place mode on every VM type, naming the parameter and the fix",
        arguments: [
            ("linux-7.4-in-place", "sw-protected"), ("linux-7.4-in-place-sev-snp", "sev-snp"),
            ("gmem-attributes2", "sw-protected"), ("linux-7.4-in-place", "default"),
            ("linux-7.4-in-place-tdx", "default"), ("gmem-attributes2", "default"),
        ])
    func legacyRefusedInPlaceMode(profileName: String, vm: String) throws {
        let profile = try #require(Profiles.named(profileName))
        let manifest = try engManifest(
            Self.singleBlock(
                engLegacyAnonymous, vm: vm, defaultState: vm == "default" ? "shared" : "private",
                shared: vm == "default" ? [] : [engRange(gpa: Self.sharedGPA, size: Self.sharedSize)]))
        #expect(throws: DesiredStateError.self) { try DesiredState(manifest: manifest, capabilities: profile) }
        let problems = CapabilityCheck.check(manifest, against: profile).filter { $0.severity == .error }
        let text = problems.map { "\($0.summary) \($0.detail)" }.joined(separator: "\n")
        #expect(text.contains("kvm.gmem_in_place_conversion"), "\(text)")
        #expect(text.contains("backend: in-place"), "\(text)")
    }

    @Test(
        "the same legacy manifest plans with per-VM attributes on linux-7.4 and linux-6.18, never ATTRIBUTES2",
        arguments: ["linux-7.4", "linux-6.18", "linux-6.11", "linux-6.8"])
    func legacyPlansWithVMAttributes(profileName: String) throws {
        let profile = try #require(Profiles.named(profileName))
        let (_, plan) = try engFreshPlan(Self.singleBlock(engLegacyAnonymous), on: profile)
        #expect(
            plan.operations.contains {
                if case .setVMAttributes = $0 { return true }; return false
            })
        #expect(
            !plan.operations.contains {
                if case .convertGuestMemfd = $0 { return true }; return false
            })
    }

    @Test("mechanism: a legacy block never converts through per-gmem attributes")
    func legacyMechanism() {
        let vm = VMTypeCapabilities(
            vmType: .swProtected, guestMemfdFlags: 3, guestMemfd: true, memoryAttributes: 0,
            conversion: .gmemAttributes2)
        let block = LiveBlock(
            name: "ram", size: engMiB, backend: .legacy(SharedBacking(source: .memfd)), guestMemfdFlags: 0)
        #expect(Planner.mechanism(block: block, vm: vm) == nil)
        #expect(
            BackendResolver.creation(backend: .legacy(SharedBacking(source: .memfd)), vm: vm, layout: nil).1 == .shared)
    }

    /// The repository's example of a legacy block on a default VM: fine wherever slots are not forced
    /// guest_memfd-only, refused in in-place mode.
    @Test("examples/shared-legacy.yaml (default VM, legacy memfd) is refused on linux-7.4-in-place only")
    func sharedLegacyExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let yaml = try String(contentsOf: root.appendingPathComponent("examples/shared-legacy.yaml"), encoding: .utf8)
        let manifest = try engManifest(yaml)
        for profile in [Profiles.linux74InPlace, Profiles.linux74InPlaceTDX, Profiles.gmemAttributes2] {
            let errors = CapabilityCheck.check(manifest, against: profile).filter { $0.severity == .error }
            #expect(errors.map(\.path) == ["spec.blocks[0].backend.type"], "\(profile.name): \(errors)")
            #expect(throws: DesiredStateError.self) { try DesiredState(manifest: manifest, capabilities: profile) }
        }
        for profile in [Profiles.linux74, Profiles.linux618, Profiles.linux618PVM] {
            #expect(
                CapabilityCheck.check(manifest, against: profile).filter { $0.severity == .error }.isEmpty,
                "\(profile.name)")
        }
    }

    @Test("auto on a default VM in in-place mode is a shared MMAP|INIT_SHARED guest_memfd; on linux-7.4 a legacy block")
    func autoDefaultVMAcrossModes() throws {
        let yaml = Self.singleBlock(engAuto, vm: "default", defaultState: "shared", shared: [])
        for profile in [Profiles.linux74InPlace, Profiles.gmemAttributes2] {
            let (desired, plan) = try engFreshPlan(yaml, on: profile)
            #expect(desired.blocks.map(\.backend) == [.inPlace], "\(profile.name)")
            #expect(desired.blocks.first?.resolution.contains("kvm.gmem_in_place_conversion=1") == true)
            #expect(
                plan.operations.contains(
                    .createGuestMemfd(
                        block: "ram", size: Self.size,
                        flags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared,
                        backend: .inPlace)), "\(plan.operations)")
            #expect(
                !plan.operations.contains {
                    if case .createSharedBacking = $0 { return true }; return false
                })
        }
        let (off, _) = try engFreshPlan(yaml, on: Profiles.linux74)
        #expect(off.blocks.map(\.backend.isInPlace) == [false])
    }

    @Test("auto on linux-7.4-in-place converts with KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd; on linux-7.4 per VM")
    func autoAcrossModes() throws {
        let yaml = Self.singleBlock(engAuto)
        let (_, inPlace) = try engFreshPlan(yaml, on: Profiles.linux74InPlace)
        #expect(
            inPlace.operations.contains {
                if case .convertGuestMemfd(_, _, _, _, .gmemAttributes2) = $0 { return true }; return false
            })
        #expect(
            !inPlace.operations.contains {
                if case .setVMAttributes = $0 { return true }; return false
            })
        let (_, off) = try engFreshPlan(yaml, on: Profiles.linux74)
        #expect(
            off.operations.contains {
                if case .setVMAttributes = $0 { return true }; return false
            })
        #expect(
            !off.operations.contains {
                if case .convertGuestMemfd = $0 { return true }; return false
            })
    }

    // MARK: - Memslot split

    static func bigGuest(size: UInt64, gpa: UInt64 = 0) -> String {
        manifestYAML(
            vm: "default", blocks: [engBlock(size: engHex(size), backend: engInPlace)],
            mappings: [engMapping(size: size, gpa: gpa)], defaultState: "shared")
    }

    @Test("a 9 TiB mapping is planned as two memslots with a note; apply builds both; plan and diff are then empty")
    func nineTiBSplits() throws {
        let size: UInt64 = 9 << 40
        let yaml = Self.bigGuest(size: size)
        let (desired, plan) = try engFreshPlan(yaml, on: Profiles.linux618)
        let binds = plan.operations.compactMap { op -> Mapping? in
            if case .bindMemslot(_, let mapping, _) = op { return mapping }
            return nil
        }
        #expect(binds.count == 2)
        #expect(binds.allSatisfy { $0.size <= Profiles.linux618.maxMemslotSize })
        #expect(binds.reduce(0) { $0 + $1.size } == size && binds[1].gpa == binds[0].gpa + binds[0].size)
        #expect(desired.mappings == binds)
        #expect(
            plan.notes.contains { $0.contains("takes 2 memslots") && $0.contains("KVM_MEM_MAX_NR_PAGES") },
            "\(plan.notes)")
        let applied = try EngApplied(yaml, on: Profiles.linux618)
        #expect(applied.report.succeeded)
        #expect(applied.state.memslots.count == 2)
        #expect(try applied.provisioner.plan(applied.manifest).operations.isEmpty)
        #expect(try applied.provisioner.diff(applied.manifest).entries.isEmpty)
    }

    @Test("MemslotSplit: exact limit stays one slot, one page more is two; pieces are whole GiBs")
    func splitEdges() {
        let max = Profiles.linux618.maxMemslotSize
        let piece = MemslotSplit.pieceSize(maxSize: max)
        #expect(piece % engGiB == 0 && piece <= max && piece > max - engGiB)
        #expect(MemslotSplit.split(Mapping(block: "b", offset: 0, size: max, gpa: 0), maxSize: max).count == 1)
        let two = MemslotSplit.split(Mapping(block: "b", offset: 4096, size: max + 4096, gpa: engGiB), maxSize: max)
        #expect(
            two.count == 2 && two[0].offset == 4096 && two[1].offset == 4096 + piece && two[1].gpa == engGiB + piece)
    }
}
