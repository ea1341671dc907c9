import Config
import ProcessSupport
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// `CapabilityCheck`: what a manifest needs against what a profile offers; every problem names the missing
/// capability or the fix.
@Suite("CapabilityCheck")
struct CapabilityCheckTests {
    static func errors(_ manifest: Manifest, _ caps: Capabilities) -> [Diagnostic] {
        CapabilityCheck.check(manifest, against: caps).filter { $0.severity == .error }
    }

    static let privateInPlace = manifestYAML(
        blocks: [engBlock(backend: engInPlace)], mappings: [engMapping(size: 64 * engMiB, gpa: 0)],
        shared: [engRange(gpa: engMiB, size: engMiB)])

    @Test(
        "a private in-place block fails on linux-6.18 naming the conversion capabilities, and passes where they exist")
    func privateInPlace() throws {
        let manifest = try engManifest(Self.privateInPlace)
        let problems = Self.errors(manifest, Profiles.linux618)
        #expect(problems.count == 1)
        let problem = try #require(problems.first)
        #expect(problem.path == "spec.blocks[0].backend.type")
        #expect(problem.summary.contains("linux-6.18") && problem.summary.contains("in place"), "\(problem.summary)")
        #expect(problem.detail.contains("KVM_CAP_GMEM_CONVERSION"), "\(problem.detail)")
        #expect(problem.detail.contains("KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES"), "\(problem.detail)")
        #expect(problem.detail.contains("vm-attributes"), "names what the host has: \(problem.detail)")
        // The diagnostic points at the manifest line of the backend.
        #expect(problem.range?.file == "test.yaml")
        #expect(problem.range != nil)
        #expect(throws: DesiredStateError.self) {
            try DesiredState(manifest: manifest, capabilities: Profiles.linux618)
        }

        for profile in [Profiles.gmemConvertPOC, Profiles.gmemAttributes2] {
            #expect(Self.errors(manifest, profile).isEmpty, "\(profile.name): \(Self.errors(manifest, profile))")
            #expect(throws: Never.self) { try DesiredState(manifest: manifest, capabilities: profile) }
        }
        // The 6.8 generation has no in-place conversion either.
        #expect(Self.errors(manifest, Profiles.linux68).count == 1)
    }

    @Test("a shared-only in-place block is fine on a 6.18 default VM (MMAP|INIT_SHARED), refused on 6.8")
    func sharedInPlaceOnDefaultVM() throws {
        let manifest = try engManifest(
            manifestYAML(
                vm: "default", blocks: [engBlock(backend: engInPlace)],
                mappings: [engMapping(size: 64 * engMiB, gpa: 0)], defaultState: "shared"))
        #expect(Self.errors(manifest, Profiles.linux618).isEmpty)
        #expect(Self.errors(manifest, Profiles.linux618PVM).isEmpty)
        let problems = Self.errors(manifest, Profiles.linux68)
        #expect(problems.count == 1)
        #expect(problems.first?.detail.contains("KVM_CAP_GUEST_MEMFD is 0") == true, "\(problems)")
    }

    @Test("tdx on linux-6.18-sev-snp fails naming the VM types the host offers")
    func tdxOnSevSnp() throws {
        let manifest = try engManifest(
            manifestYAML(
                vm: "tdx", blocks: [engBlock(backend: engLegacyMemfd)],
                mappings: [engMapping(size: 64 * engMiB, gpa: 0)]))
        let problems = Self.errors(manifest, Profiles.linux618SevSnp)
        #expect(problems.count == 1)
        let problem = try #require(problems.first)
        #expect(problem.path == "spec.vm.type")
        #expect(problem.summary == "VM type tdx is not offered by linux-6.18-sev-snp")
        // KVM_CAP_VM_TYPES = BIT(0) | BIT(4) = 0x11.
        #expect(problem.detail.contains("KVM_CAP_VM_TYPES is 0x11 (default, sev-snp)"), "\(problem.detail)")
        #expect(problem.detail.contains("TDX"), "\(problem.detail)")
        #expect(Self.errors(manifest, Profiles.linux618TDX).isEmpty)
    }

    @Test("a private layout on linux-6.18-pvm: sw-protected is not offered; a default VM cannot make memory private")
    func privateOnPVM() throws {
        let legacy = manifestYAML(
            blocks: [engBlock(backend: engLegacyMemfd)], mappings: [engMapping(size: 64 * engMiB, gpa: 0)])
        let problems = Self.errors(try engManifest(legacy), Profiles.linux618PVM)
        #expect(problems.map(\.path) == ["spec.vm.type"])
        #expect(problems.first?.summary == "VM type sw-protected is not offered by linux-6.18-pvm")
        #expect(problems.first?.detail.contains("KVM_CAP_VM_TYPES is 0x1 (default)") == true, "\(problems)")

        // On a default VM, validation already refuses the private layout (naming the VM type as the fix)...
        let onDefault = manifestYAML(
            vm: "default", blocks: [engBlock(backend: engLegacyMemfd)],
            mappings: [engMapping(size: 64 * engMiB, gpa: 0)])
        let loaded = ManifestLoader.load(yaml: onDefault, file: "test.yaml")
        #expect(!loaded.isValid)
        #expect(loaded.diagnostics.contains { $0.path == "spec.layout.default" && $0.detail.contains("sw-protected") })
        // ...and the capability check refuses it too when handed such a manifest directly, naming the attribute.
        let manifest = Manifest(
            metadata: Metadata(name: "g"),
            spec: Spec(
                vm: VMSpec(type: .default),
                blocks: [
                    Block(
                        name: "ram", size: 64 * engMiB,
                        backend: Backend(type: .legacy, shared: SharedBacking(source: .memfd)))
                ],
                mappings: [Mapping(block: "ram", offset: 0, size: 64 * engMiB, gpa: 0)],
                layout: LayoutSpec(defaultState: .private)))
        let direct = Self.errors(manifest, Profiles.linux618PVM)
        #expect(direct.count == 1)
        #expect(direct.first?.path == "spec.blocks[0].backend")
        #expect(direct.first?.detail.contains("KVM_CAP_MEMORY_ATTRIBUTES is 0x0") == true, "\(direct)")
    }

    @Test("a hugetlb page size the host does not offer is named with the offered sizes")
    func hugetlbPageSize() throws {
        let manifest = try engManifest(
            manifestYAML(
                vm: "default",
                blocks: [
                    engBlock(size: "1GiB", backend: "{ type: legacy, shared: { source: hugetlb, pageSize: 1GiB } }")
                ],
                mappings: [engMapping(size: engGiB, gpa: 0)], defaultState: "shared"))
        let problems = Self.errors(manifest, Profiles.linux618PVM)
        #expect(problems.count == 1)
        let problem = try #require(problems.first)
        #expect(problem.path == "spec.blocks[0].backend.shared.pageSize")
        #expect(problem.summary == "hugetlb page size 1 GiB is not offered by linux-6.18-pvm")
        #expect(problem.detail == "offered sizes: 2 MiB")
        #expect(Self.errors(manifest, Profiles.linux618).isEmpty, "6.18 generic offers 1 GiB pages")
    }

    @Test("a hugetlb pool too small names the sysfs knob and how many pages are missing")
    func hugetlbPool() throws {
        let manifest = try engManifest(
            manifestYAML(
                blocks: [engBlock(backend: engLegacyHugetlb)], mappings: [engMapping(size: 64 * engMiB, gpa: 0)]))
        var caps = Profiles.linux618
        caps.hugePagesFree = [2 * engMiB: 10, engGiB: 0]
        let problems = Self.errors(manifest, caps)
        #expect(problems.count == 1)
        #expect(problems.first?.summary == "block ram needs 32 free 2 MiB huge pages, the pool has 10")
        #expect(
            problems.first?.detail
                == "raise /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages by at least 22 before applying")
        caps.hugePagesFree = [2 * engMiB: 32]
        #expect(Self.errors(manifest, caps).isEmpty)
    }

    @Test("every problem is reported, not the first")
    func allProblems() throws {
        let manifest = try engManifest(
            manifestYAML(
                blocks: [
                    engBlock("a", size: "64MiB", backend: engInPlace),
                    engBlock(
                        "b", size: "1GiB", backend: "{ type: legacy, shared: { source: hugetlb, pageSize: 1GiB } }"),
                ],
                mappings: [engMapping("a", size: 64 * engMiB, gpa: 0), engMapping("b", size: engGiB, gpa: engGiB)]))
        var caps = Profiles.linux618
        caps.hugePageSizes = [2 * engMiB]
        #expect(
            Self.errors(manifest, caps).map(\.path) == [
                "spec.blocks[0].backend.type", "spec.blocks[1].backend.shared.pageSize",
            ])
    }
}

/// Limits and warnings `validate --target` adds for real kernels (docs/kernels.md, "Limits").
@Suite("CapabilityCheck: kernel limits")
struct CapabilityCheckLimitTests {
    @Test("a 1 GiB mapping at 2^52 is refused naming the address width; at 2^48 it passes")
    func physicalAddressLimit() throws {
        let at52 = try engManifest(
            manifestYAML(
                vm: "default", blocks: [engBlock(size: "1GiB", backend: engInPlace)],
                mappings: [engMapping(size: engGiB, gpa: 1 << 52)], defaultState: "shared"))
        let problems = CapabilityCheck.check(at52, against: Profiles.linux618PVM).filter { $0.severity == .error }
        #expect(problems.count == 1)
        #expect(problems.first?.path == "spec.mappings[0]")
        #expect(problems.first?.detail.contains("52-bit") == true, "\(problems)")
        let at48 = try engManifest(
            manifestYAML(
                vm: "default", blocks: [engBlock(size: "1GiB", backend: engInPlace)],
                mappings: [engMapping(size: engGiB, gpa: 1 << 48)], defaultState: "shared"))
        #expect(CapabilityCheck.check(at48, against: Profiles.linux618PVM).isEmpty)
        var narrow = Profiles.linux618
        narrow.physicalAddressBits = 46
        #expect(CapabilityCheck.check(at48, against: narrow).contains { $0.severity == .error })
    }

    @Test("the memslot count counts the pieces of split mappings")
    func memslotCountWithSplit() throws {
        var small = Profiles.linux618
        small.maxMemslots = 1
        let big = try engManifest(
            manifestYAML(
                vm: "default", blocks: [engBlock(size: "9TiB", backend: engInPlace)],
                mappings: [engMapping(size: 9 << 40, gpa: 0)], defaultState: "shared"))
        let problems = CapabilityCheck.check(big, against: small).filter { $0.severity == .error }
        #expect(problems.count == 1 && problems.first?.summary.contains("need 2 memslots") == true, "\(problems)")
        #expect(CapabilityCheck.check(big, against: Profiles.linux618).isEmpty)
    }

    @Test("a hugetlb mapping whose GPA is not aligned to its huge pages is warned about, naming the cost")
    func hugetlbAlignment() throws {
        let yaml = manifestYAML(
            blocks: [engBlock(backend: engLegacyHugetlb)], mappings: [engMapping(size: 4 * engMiB, gpa: engMiB)])
        let warnings = CapabilityCheck.check(try engManifest(yaml), against: Profiles.linux618).filter {
            $0.severity == .warning
        }
        #expect(warnings.count == 1)
        #expect(warnings.first?.path == "spec.mappings[0].gpa")
        #expect(
            warnings.first?.detail.contains("4 KiB pages only") == true
                || warnings.first?.detail.contains("4KiB pages only") == true,
            "\(warnings)")
        let aligned = manifestYAML(
            blocks: [engBlock(backend: engLegacyHugetlb)], mappings: [engMapping(size: 4 * engMiB, gpa: 2 * engMiB)])
        #expect(CapabilityCheck.check(try engManifest(aligned), against: Profiles.linux618).isEmpty)
    }

    /// KVM checks each huge-page level on its own: 1 GiB pages at a GPA aligned to 2 MiB but not 1 GiB are
    /// mapped with 2 MiB pages, not 4 KiB ones.
    @Test func aGibibytePageMappingAlignedTo2MiBKeeps2MiBPages() throws {
        let gib = "{ type: legacy, shared: { source: hugetlb, pageSize: 1GiB } }"
        func detail(gpa: UInt64) throws -> String? {
            let yaml = manifestYAML(
                blocks: [engBlock(size: "2GiB", backend: gib)], mappings: [engMapping(size: 1 << 30, gpa: gpa)])
            let warnings = CapabilityCheck.check(try engManifest(yaml), against: Profiles.linux618).filter {
                $0.severity == .warning
            }
            #expect(warnings.count <= 1)
            return warnings.first?.detail
        }
        #expect(try detail(gpa: 2 * engMiB)?.hasPrefix("KVM can then map it with 2 MiB pages only: 512 times") == true)
        #expect(try detail(gpa: engMiB)?.hasPrefix("KVM can then map it with 4 KiB pages only: 262144 times") == true)
        #expect(try detail(gpa: 4 << 30) == nil)
    }

    @Test("on a default VM an unaligned private range reports its misalignment too")
    func defaultVMUnalignedPrivate() {
        let yaml = manifestYAML(
            vm: "default", blocks: [engBlock(backend: engInPlace)], mappings: [engMapping(size: 64 * engMiB, gpa: 0)],
            defaultState: "shared", private: [engRange(gpa: 0x1800, size: 0x1000)])
        let result = ManifestLoader.load(yaml: yaml, file: "test.yaml")
        let summaries = result.diagnostics.filter { $0.path.hasPrefix("spec.layout.private[0]") }.map(\.summary)
        #expect(summaries.contains { $0.contains("default") }, "\(summaries)")
        #expect(summaries.contains { $0.contains("aligned") }, "\(summaries)")
    }
}
