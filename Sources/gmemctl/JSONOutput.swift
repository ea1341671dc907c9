import Config
import Foundation
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

/// JSON for machines, one contract for every command: each document carries `formatVersion`, field names
/// are lowerCamelCase, enums are their string values, and documents about changes carry `changes` (CI
/// wrappers may swallow exit code 2). `gmemctl schema --document NAME` prints each document's schema.
enum JSONOutput {
    static let formatVersion = "1.0"

    static func encoded<T: Encodable>(_ value: T, pretty: Bool = true) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func print<T: Encodable>(_ value: T) throws {
        Swift.print(try encoded(value))
    }
}

/// One plan step: what kind, the kernel call, readable arguments, and the objects it touches.
struct OperationJSON: Encodable {
    var op: String
    var call: String
    var arguments: String
    var block: String?
    var slot: UInt32?
    var listener: String?
    var gpa: UInt64?
    var offset: UInt64?
    var size: UInt64?

    init(_ operation: PlanOperation, flagSet: GuestMemfdFlagSet) {
        call = operation.call
        arguments = operation.arguments(flagSet: flagSet)
        switch operation {
        case .createVM: op = "createVM"
        case .createGuestMemfd(let block, let size, _, _):
            (op, self.block, self.size) = ("createGuestMemfd", block, size)
        case .createSharedBacking(let block, _, let size):
            (op, self.block, self.size) = ("createSharedBacking", block, size)
        case .mapHostMemory(let block, _, let size): (op, self.block, self.size) = ("mapHostMemory", block, size)
        case .bindMemslot(let slot, let mapping, _):
            (op, self.slot, block, gpa, offset, size) = (
                "bindMemslot", slot, mapping.block, mapping.gpa, mapping.offset, mapping.size
            )
        case .deleteMemslot(let slot, let mapping):
            (op, self.slot, block, gpa, offset, size) = (
                "deleteMemslot", slot, mapping.block, mapping.gpa, mapping.offset, mapping.size
            )
        case .setVMAttributes(let gpa, let size, _): (op, self.gpa, self.size) = ("setVMAttributes", gpa, size)
        case .convertGuestMemfd(let block, let offset, let size, _, _):
            (op, self.block, self.offset, self.size) = ("convertGuestMemfd", block, offset, size)
        case .discard(let block, _, let offset, let size, _):
            (op, self.block, self.offset, self.size) = ("discard", block, offset, size)
        case .populate(let block, _, let offset, let size):
            (op, self.block, self.offset, self.size) = ("populate", block, offset, size)
        case .notify(let listener, _, let gpa, let size):
            (op, self.listener, self.gpa, self.size) = ("notify", listener, gpa, size)
        case .destroyBlock(let block): (op, self.block) = ("destroyBlock", block)
        case .destroyVM: op = "destroyVM"
        }
    }
}

/// A live block the plan tears down: always `"replace": true`, and `"destroysData"` when contents are lost.
struct ReplacementJSON: Encodable {
    var block: String
    var replace = true
    var reason: String
    var changes: [String]
    var destroysData: Bool
    var lost: String

    init(_ replacement: BlockReplacement) {
        block = replacement.block
        reason = replacement.reason.rawValue
        changes = replacement.changes
        destroysData = replacement.destroysData
        lost = replacement.lost
    }
}

struct PlanJSON: Encodable {
    var formatVersion = JSONOutput.formatVersion
    var host: String
    var guest: String
    var changes: Bool
    var replacements: [ReplacementJSON]
    var destroysData: Bool
    var resolutions: [String: String]
    var transitions: [TransitionJSON]
    var operations: [OperationJSON]
    var notes: [String]

    init(_ plan: Plan, host: GmemCore.Host) { self.init(plan, host: HostView(host)) }

    init(_ plan: Plan, host: HostView) {
        self.host = host.label
        guest = plan.guest
        changes = plan.hasChanges
        replacements = plan.replacements.map(ReplacementJSON.init)
        destroysData = !plan.destructiveReplacements.isEmpty
        resolutions = plan.resolutions
        transitions = plan.transitions.map(TransitionJSON.init)
        operations = plan.operations.map { OperationJSON($0, flagSet: host.flagSet) }
        notes = plan.notes
    }
}

struct TransitionJSON: Encodable {
    var block: String
    var offset: UInt64
    var size: UInt64
    var from: String?
    var to: String
    var gpaRanges: [[UInt64]]

    init(_ transition: BlockTransition) {
        block = transition.block
        offset = transition.offset
        size = transition.size
        from = transition.from?.rawValue
        to = transition.to.rawValue
        gpaRanges = transition.gpaRanges.map { [$0.lowerBound, $0.upperBound] }
    }
}

struct ReportJSON: Encodable {
    var succeeded: Bool
    var completed: Int
    var total: Int
    var retries: Int
    var failure: String?
    var errorOffset: UInt64?
    var notRun: [String]
    var compensations: [EventJSON]

    init(_ report: ApplyReport, flagSet: GuestMemfdFlagSet, guest: String) {
        succeeded = report.succeeded
        completed = report.completed.count
        total = report.completed.count + report.notRun.count + (report.failure == nil ? 0 : 1)
        retries = report.retries
        failure = report.failure?.description
        errorOffset = report.failure?.kernelError?.errorOffset
        notRun = report.notRun.map { "\($0.call) \($0.arguments(flagSet: flagSet))" }
        compensations = report.compensations.map { EventJSON($0, guest: guest) }
    }
}

/// A listener event (also one line of `events --output json`).
struct EventJSON: Encodable {
    var formatVersion: String?
    var guest: String
    var sequence: UInt64
    var listener: String
    var kind: String
    var gpa: UInt64
    var size: UInt64

    init(_ event: ListenerEvent, guest: String, standalone: Bool = false) {
        formatVersion = standalone ? JSONOutput.formatVersion : nil
        self.guest = guest
        sequence = event.sequence
        listener = event.listener
        kind = event.kind.rawValue
        gpa = event.gpa
        size = event.size
    }
}

/// A guest's live state as JSON: flat fields, backends as `{"type": "legacy", "shared": {...}}`, layouts as runs.
struct LiveJSON: Encodable {
    struct Backend: Encodable {
        struct Shared: Encodable {
            var source: String
            var pageSize: UInt64?
            var prealloc: Bool
        }
        var type: String
        var shared: Shared?

        init(_ backend: ResolvedBackend) {
            type = backend.name
            if case .legacy(let backing) = backend {
                shared = Shared(source: backing.source.rawValue, pageSize: backing.pageSize, prealloc: backing.prealloc)
            }
        }
    }

    struct Run: Encodable {
        var offset: UInt64
        var size: UInt64
        var state: String
    }

    struct Block: Encodable {
        var name: String
        var size: UInt64
        var backend: Backend
        var guestMemfdFlags: UInt64
        var guestMemfd: Int32?
        var guestMemfdAddress: UInt64?
        var sharedFD: Int32?
        var sharedAddress: UInt64?
        var residentBytes: UInt64?
        var layout: [Run]
    }

    struct Memslot: Encodable {
        var slot: UInt32
        var block: String
        var offset: UInt64
        var size: UInt64
        var gpa: UInt64
        var flags: UInt32
        var userspaceAddress: UInt64
    }

    var name: String
    var exists: Bool
    var vmType: String?
    var vmFD: Int32?
    var blocks: [Block]
    var memslots: [Memslot]
    var listeners: [String]
    var eventCount: Int
    var lastFailure: String?

    init(_ state: LiveState, observation: GuestObservation?) {
        name = state.name
        exists = state.exists
        vmType = state.vmType?.rawValue
        vmFD = state.vmFD
        blocks = state.blocks.map { block in
            Block(
                name: block.name, size: block.size, backend: Backend(block.backend),
                guestMemfdFlags: block.guestMemfdFlags,
                guestMemfd: block.guestMemfd, guestMemfdAddress: block.guestMemfdAddress, sharedFD: block.sharedFD,
                sharedAddress: block.sharedAddress,
                residentBytes: observation?.blocks.first { $0.name == block.name }?.residentBytes,
                layout: block.layout.runs.map {
                    Run(
                        offset: $0.range.lowerBound, size: $0.range.upperBound - $0.range.lowerBound,
                        state: $0.value.rawValue)
                })
        }
        memslots = state.memslots.sorted { $0.slot < $1.slot }.map {
            Memslot(
                slot: $0.slot, block: $0.mapping.block, offset: $0.mapping.offset, size: $0.mapping.size,
                gpa: $0.mapping.gpa,
                flags: $0.flags, userspaceAddress: $0.userspaceAddress)
        }
        listeners = state.listeners
        eventCount = state.events.count
        lastFailure = state.lastFailure
    }
}

/// Verification as JSON: one entry per check.
struct VerificationJSON: Encodable {
    struct Check: Encodable {
        var kind: String
        var block: String
        var gpa: UInt64
        var expected: String
        var observed: String
        var passed: Bool
    }
    var passed: Bool
    var checks: [Check]
    var skipped: [String]

    init(_ report: VerificationReport) {
        passed = report.passed
        checks = report.checks.map {
            Check(
                kind: $0.kind.rawValue, block: $0.block, gpa: $0.gpa, expected: "\($0.expected)",
                observed: "\($0.observed)", passed: $0.passed)
        }
        skipped = report.skipped
    }
}
