import Config
import ProcessSupport
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// `StateDiff`: manifest vs what a (simulated) host holds, entry by entry.
@Suite("StateDiff")
struct StateDiffTests {
    static func yaml(
        blocks: [String] = [engBlock(backend: engInPlace)],
        mappings: [String] = [engMapping(size: 64 * engMiB, gpa: 0)],
        shared: [String] = [engRange(gpa: engMiB, size: engMiB)], listeners: [String] = ["vfio0"],
        vm: String = "sw-protected"
    ) -> String {
        manifestYAML(vm: vm, blocks: blocks, mappings: mappings, shared: shared, listeners: listeners)
    }

    @Test("a guest the host does not have: the VM and every block are missing")
    func missingGuest() throws {
        let desired = try engDesired(
            Self.yaml(
                blocks: [
                    engBlock("a", size: "4MiB", backend: engInPlace),
                    engBlock("b", size: "4MiB", backend: engLegacyMemfd),
                ],
                mappings: [
                    engMapping("a", size: 4 * engMiB, gpa: 0), engMapping("b", size: 4 * engMiB, gpa: 4 * engMiB),
                ]),
            on: Profiles.gmemConvertPOC)
        let diff = StateDiff(desired: desired, observed: LiveState(name: "guest"))
        #expect(diff.hasChanges)
        #expect(
            diff.entries == [
                DiffEntry(change: .missing, kind: .vm, name: "guest", expected: "sw-protected"),
                DiffEntry(change: .missing, kind: .block, name: "a", expected: "in-place, 4 MiB, gmem flags 0x3"),
                DiffEntry(change: .missing, kind: .block, name: "b", expected: "legacy, 4 MiB, gmem flags 0x0"),
            ])
    }

    @Test("converged: no entries")
    func converged() throws {
        let applied = try EngApplied(Self.yaml(), on: Profiles.gmemConvertPOC)
        let diff = try applied.provisioner.diff(applied.manifest)
        #expect(!diff.hasChanges)
        #expect(diff.entries.isEmpty)
    }

    @Test("a block the manifest no longer names is extra")
    func extraBlock() throws {
        let two = Self.yaml(
            blocks: [
                engBlock("a", size: "4MiB", backend: engInPlace), engBlock("b", size: "4MiB", backend: engInPlace),
            ],
            mappings: [engMapping("a", size: 4 * engMiB, gpa: 0), engMapping("b", size: 4 * engMiB, gpa: 4 * engMiB)])
        let applied = try EngApplied(two, on: Profiles.gmemConvertPOC)
        let one = try engManifest(
            Self.yaml(
                blocks: [engBlock("a", size: "4MiB", backend: engInPlace)],
                mappings: [engMapping("a", size: 4 * engMiB, gpa: 0)]))
        let diff = try applied.provisioner.diff(one)
        #expect(
            diff.entries == [
                DiffEntry(change: .extra, kind: .block, name: "b", actual: "in-place, 4 MiB, gmem flags 0x3")
            ])
        // The plan removes it, telling the listener first; then nothing is left to do.
        let plan = try applied.provisioner.plan(one)
        #expect(
            plan.operations == [
                .deleteMemslot(slot: 1, mapping: Mapping(block: "b", offset: 0, size: 4 * engMiB, gpa: 4 * engMiB)),
                .destroyBlock(block: "b"),
            ])
        #expect(plan.notes.contains { $0.contains("block b is not in the manifest") })
        _ = try applied.provisioner.apply(one)
        #expect(try applied.provisioner.diff(one).entries.isEmpty)
    }

    @Test("a block whose backend or size changed is reported as changed, with both sides")
    func changedBlock() throws {
        let applied = try EngApplied(
            Self.yaml(blocks: [engBlock(backend: engLegacyMemfd)]), on: Profiles.gmemConvertPOC)
        let inPlace = try engManifest(Self.yaml())
        #expect(
            try applied.provisioner.diff(inPlace).entries == [
                DiffEntry(
                    change: .changed, kind: .block, name: "ram", expected: "in-place, 64 MiB, gmem flags 0x3",
                    actual: "legacy, 64 MiB, gmem flags 0x0")
            ])
        let bigger = try engManifest(Self.yaml(blocks: [engBlock(size: "128MiB", backend: engLegacyMemfd)]))
        #expect(
            try applied.provisioner.diff(bigger).entries == [
                DiffEntry(
                    change: .changed, kind: .block, name: "ram", expected: "legacy, 128 MiB, gmem flags 0x0",
                    actual: "legacy, 64 MiB, gmem flags 0x0")
            ])
    }

    @Test("a moved mapping: the wanted one is missing, the bound one extra")
    func changedMapping() throws {
        let applied = try EngApplied(Self.yaml(), on: Profiles.gmemConvertPOC)
        let moved = try engManifest(
            Self.yaml(
                mappings: [engMapping(size: 64 * engMiB, gpa: engGiB)],
                shared: [engRange(gpa: engGiB + engMiB, size: engMiB)]))
        #expect(
            try applied.provisioner.diff(moved).entries == [
                DiffEntry(
                    change: .missing, kind: .mapping, name: "ram", expected: "offset 0x0 size 64 MiB at gpa 0x40000000"),
                DiffEntry(
                    change: .extra, kind: .mapping, name: "ram", actual: "slot 0: offset 0x0 size 64 MiB at gpa 0x0"),
            ])
    }

    @Test("range drift after run-time conversions names the block offsets and every GPA window")
    func rangeDrift() throws {
        let yaml = Self.yaml(
            blocks: [engBlock(size: "8MiB", backend: engInPlace)],
            mappings: [
                engMapping(size: 4 * engMiB, gpa: 0), engMapping(offset: 4 * engMiB, size: 4 * engMiB, gpa: 4 * engGiB),
            ],
            shared: [engRange(gpa: 2 * engMiB, size: 2 * engMiB), engRange(gpa: 4 * engGiB, size: engMiB)])
        let applied = try EngApplied(yaml, on: Profiles.gmemAttributes2)
        // The guest takes back 3..5 MiB of the block, seen below and above 4 GiB; and shares 6..7 MiB.
        _ = try applied.provisioner.convert(guest: "guest", gpa: (3 * engMiB)..<(4 * engMiB), to: .private)
        _ = try applied.provisioner.convert(guest: "guest", gpa: (4 * engGiB)..<(4 * engGiB + engMiB), to: .private)
        _ = try applied.provisioner.convert(
            guest: "guest", gpa: (4 * engGiB + 2 * engMiB)..<(4 * engGiB + 3 * engMiB), to: .shared)
        let diff = try applied.provisioner.diff(applied.manifest)
        #expect(
            diff.entries == [
                DiffEntry(
                    change: .changed, kind: .range, name: "ram[0x300000-0x4fffff]", expected: "shared",
                    actual: "private",
                    gpaRanges: ["0x300000-0x3fffff", "0x100000000-0x1000fffff"]),
                DiffEntry(
                    change: .changed, kind: .range, name: "ram[0x600000-0x6fffff]", expected: "private",
                    actual: "shared",
                    gpaRanges: ["0x100200000-0x1002fffff"]),
            ])
        // Applying the manifest again repairs exactly that.
        let plan = try applied.provisioner.plan(applied.manifest)
        #expect(
            plan.operations == [
                .convertGuestMemfd(
                    block: "ram", offset: 3 * engMiB, size: 2 * engMiB, to: .shared, abi: .gmemAttributes2),
                .notify(listener: "vfio0", kind: .map, gpa: 3 * engMiB, size: engMiB),
                .notify(listener: "vfio0", kind: .map, gpa: 4 * engGiB, size: engMiB),
                .notify(listener: "vfio0", kind: .unmap, gpa: 4 * engGiB + 2 * engMiB, size: engMiB),
                .convertGuestMemfd(block: "ram", offset: 6 * engMiB, size: engMiB, to: .private, abi: .gmemAttributes2),
            ])
    }

    @Test("listeners: missing and extra")
    func listeners() throws {
        let applied = try EngApplied(Self.yaml(listeners: ["vfio0", "old"]), on: Profiles.gmemConvertPOC)
        let manifest = try engManifest(Self.yaml(listeners: ["vfio0", "new"]))
        #expect(
            try applied.provisioner.diff(manifest).entries == [
                DiffEntry(change: .missing, kind: .listener, name: "new"),
                DiffEntry(change: .extra, kind: .listener, name: "old"),
            ])
        // The plan tells the leaving listener to drop the shared memory (it will not hear of later
        // conversions), tells the new one about it, and registers the new set.
        let plan = try applied.provisioner.plan(manifest)
        #expect(
            plan.operations == [
                .notify(listener: "old", kind: .unmap, gpa: engMiB, size: engMiB),
                .notify(listener: "new", kind: .map, gpa: engMiB, size: engMiB),
            ])
        #expect(plan.listeners == ["vfio0", "new"])
        _ = try applied.provisioner.apply(manifest)
        #expect(applied.state.listeners == ["vfio0", "new"])
        #expect(try applied.provisioner.diff(manifest).entries.isEmpty)
    }

    @Test("a VM of another type is reported as changed")
    func changedVMType() throws {
        let applied = try EngApplied(Self.yaml(), on: Profiles.gmemConvertPOC)
        let desired = try engDesired(Self.yaml(vm: "tdx"), on: Profiles.gmemConvertPOC)
        let diff = StateDiff(desired: desired, observed: applied.state)
        #expect(
            diff.entries.first
                == DiffEntry(change: .changed, kind: .vm, name: "guest", expected: "tdx", actual: "sw-protected"))
    }
}
