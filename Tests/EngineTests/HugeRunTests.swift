import Config
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// Runs of 2^63 bytes and more handed straight to the planner, diff and get (observe). `validate` refuses such
/// manifests and the state decoder such state files, but nothing downstream may trap if one arrives anyway:
/// `Range<UInt64>.count` is an `Int` and traps from 2^63 on, so every length is `upperBound - lowerBound`.
/// A trap kills the test run, which is this suite's failure.
@Suite struct HugeRunTests {
    static let twoTo63: UInt64 = 1 << 63
    /// One block of 2^64 - 2 MiB.
    static let blockSize: UInt64 = 0 &- (1 << 21)
    /// Two windows, each below 2^63, that merge into one run of the whole block (contiguous in offset and GPA).
    static let mappings = [
        Mapping(block: "ram", offset: 0, size: twoTo63 - (1 << 20), gpa: 0),
        Mapping(
            block: "ram", offset: twoTo63 - (1 << 20), size: blockSize - (twoTo63 - (1 << 20)),
            gpa: twoTo63 - (1 << 20)),
    ]

    /// gmem-attributes2 (in-place conversion) with the whole 64-bit guest-physical space and memslots as large
    /// as the windows, so no limit check stands between the runs and the arithmetic.
    static var profile: Capabilities {
        get throws {
            var profile = try #require(Profiles.named("gmem-attributes2"))
            profile.physicalAddressBits = 64
            return profile
        }
    }

    static func desired(_ state: MemoryState) throws -> DesiredState {
        let vm = try #require(try profile.vmType(.tdx))
        var layout = Layout()
        layout.assign(state, to: 0..<blockSize)
        return DesiredState(
            name: "huge", vmType: .tdx,
            blocks: [
                DesiredBlock(
                    name: "ram", size: blockSize, backend: .inPlace, guestMemfdFlags: 3,
                    initialState: .private, resolution: "in-place")
            ],
            mappings: mappings, manifestMappings: mappings, blockLayouts: ["ram": layout], listeners: ["vfio0"],
            conversion: vm.conversion, addressMap: AddressMap(mappings: mappings))
    }

    /// A guest as a crafted state file would describe it: the whole block private, bound in two memslots.
    static var live: LiveState {
        var live = LiveState(name: "huge")
        live.vmType = .tdx
        live.vmFD = 3
        var block = LiveBlock(name: "ram", size: blockSize, backend: .inPlace, guestMemfdFlags: 3)
        block.guestMemfd = 4
        block.guestMemfdAddress = 0x7F00_0000_0000
        block.layout.assign(.private, to: 0..<blockSize)
        live.blocks = [block]
        live.memslots = mappings.enumerated().map { index, mapping in
            LiveMemslot(
                slot: UInt32(index), mapping: mapping, flags: 4,
                userspaceAddress: 0x7F00_0000_0000 &+ mapping.offset)
        }
        live.listeners = ["vfio0"]
        return live
    }

    @Test func theRunIsLongerThanAnIntCounts() throws {
        let runs = Self.live.blocks[0].layout.runs
        #expect(runs.count == 1)
        #expect(runs[0].range.byteCount > UInt64(Int.max), "the test is about runs Range.count cannot hold")
    }

    @Test func planningAHugeGuestFromNothingDoesNotTrap() throws {
        let plan = try Planner.plan(
            desired: try Self.desired(.private), observed: LiveState(name: "huge"),
            capabilities: try Self.profile)
        #expect(plan.hasChanges)
    }

    @Test func convertingAHugeRunPlansOneTransitionOfItsFullLength() throws {
        let plan = try Planner.plan(
            desired: try Self.desired(.shared), observed: Self.live,
            capabilities: try Self.profile)
        let transitions = plan.transitions.filter { $0.block == "ram" }
        #expect(transitions.reduce(UInt64(0)) { $0 + $1.size } == Self.blockSize, "\(transitions)")
        #expect(transitions.allSatisfy { $0.to == .shared })
    }

    @Test func runTimeConversionOfMoreThanTwoToTheSixtyThreeDoesNotTrap() throws {
        let range = UInt64(0)..<Self.twoTo63 + (1 << 30)
        let plan = try Planner.convert(gpa: range, to: .shared, observed: Self.live, capabilities: try Self.profile)
        #expect(plan.transitions.reduce(UInt64(0)) { $0 + $1.size } == range.byteCount)
    }

    @Test func diffAndGetOfAHugeGuestDoNotTrap() throws {
        let drift = StateDiff(desired: try Self.desired(.shared), observed: Self.live)
        #expect(!drift.entries.isEmpty, "all-shared wanted, all-private held")
        let same = StateDiff(desired: try Self.desired(.private), observed: Self.live)
        #expect(same.entries.isEmpty, "\(same.entries)")
        // `get`: the kernel knows none of these descriptors; observing says so instead of trapping.
        _ = Observer.observe(Self.live, kernel: SimulatedKernel(capabilities: try Self.profile))
    }

    @Test func destroyingAHugeGuestDoesNotTrap() throws {
        let plan = Planner.destroy(observed: Self.live)
        #expect(plan.hasChanges)
    }
}
