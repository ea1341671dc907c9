import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator
import Foundation

/// JSON for machines: every document carries `formatVersion`; documents about changes carry `changes`
/// (CI wrappers may swallow exit code 2).
enum JSONOutput {
    static let formatVersion = "1.0"

    static func print<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        Swift.print(String(decoding: data, as: UTF8.self))
    }
}

/// One plan step as JSON.
struct OperationJSON: Encodable {
    var call: String
    var arguments: String
    var step: PlanOperation

    init(_ operation: PlanOperation, flagSet: GuestMemfdFlagSet) {
        call = operation.call
        arguments = operation.arguments(flagSet: flagSet)
        step = operation
    }
}

struct PlanJSON: Encodable {
    var formatVersion = JSONOutput.formatVersion
    var host: String
    var guest: String
    var changes: Bool
    var resolutions: [String: String]
    var transitions: [TransitionJSON]
    var operations: [OperationJSON]
    var notes: [String]

    init(_ plan: Plan, host: GmemCore.Host) { self.init(plan, host: HostView(host)) }

    init(_ plan: Plan, host: HostView) {
        self.host = host.label
        guest = plan.guest
        changes = plan.hasChanges
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
    var completed: Int
    var total: Int
    var retries: Int
    var failure: String?
    var errorOffset: UInt64?
    var notRun: [String]
    var compensations: [ListenerEvent]

    init(_ report: ApplyReport, flagSet: GuestMemfdFlagSet) {
        completed = report.completed.count
        total = report.completed.count + report.notRun.count + (report.failure == nil ? 0 : 1)
        retries = report.retries
        failure = report.failure?.description
        errorOffset = report.failure?.kernelError?.errorOffset
        notRun = report.notRun.map { "\($0.call) \($0.arguments(flagSet: flagSet))" }
        compensations = report.compensations
    }
}
