import Config
import Foundation
import GmemCore

/// The agent's wire protocol: newline-delimited JSON, one request per line, each answered by one response
/// line carrying the request's `id`. Every line carries the protocol version `v`. See docs/agent-protocol.md.
public enum AgentProtocol {
    public static let version = 1
    /// A request line longer than this is answered with `line-too-long` and skipped up to its newline.
    public static let maxLineBytes = 16 * 1024 * 1024
}

/// What a client asks for.
public enum AgentOp: String, Sendable, Codable, CaseIterable {
    case hello, plan, apply, diff, get, convert, destroy, events, listen, stop
}

/// A request id: whatever the client chose, a number or a string, echoed in the response.
public enum AgentRequestID: Sendable, Hashable, Codable, CustomStringConvertible {
    case number(Int64)
    case text(String)

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            self = .number(number)
        } else {
            self = .text(try container.decode(String.self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .number(let number): try container.encode(number)
        case .text(let text): try container.encode(text)
        }
    }

    public var description: String {
        switch self {
        case .number(let number): return String(number)
        case .text(let text): return text
        }
    }
}

/// One request line. Fields an op does not use are absent.
public struct AgentRequest: Sendable, Codable {
    public var v: Int
    public var id: AgentRequestID?
    public var op: String
    /// plan/apply/diff: the manifest's YAML text and the file name used in diagnostics.
    public var manifest: String?
    public var file: String?
    /// apply: populate all memory up front; verify the result (host probes, and a vCPU on kvm).
    public var prefault: Bool?
    public var verify: Bool?
    /// get/convert/destroy/events/listen: the guest (`metadata.name`); get without it lists every guest.
    public var name: String?
    /// convert: guest-physical start, size and target state.
    public var gpa: UInt64?
    public var size: UInt64?
    public var to: MemoryState?
    /// events: only events with a larger sequence number; follow: keep streaming.
    public var since: UInt64?
    public var follow: Bool?
    /// listen: the listener name (as in `spec.listeners`).
    public var listener: String?

    public init(op: AgentOp, id: AgentRequestID? = nil) {
        v = AgentProtocol.version
        self.id = id
        self.op = op.rawValue
    }
}

/// Stable, machine-readable error codes.
public enum AgentErrorCode: String, Sendable, Codable {
    case badRequest = "bad-request"
    case unsupportedVersion = "unsupported-version"
    case unknownOp = "unknown-op"
    case lineTooLong = "line-too-long"
    case invalidManifest = "invalid-manifest"
    case notFound = "not-found"
    case failed = "failed"
    case listenerTaken = "listener-taken"
    case stopping = "stopping"
    case forbidden = "forbidden"
}

public struct AgentErrorBody: Sendable, Codable, Error, CustomStringConvertible {
    public var code: AgentErrorCode
    public var message: String
    /// Manifest diagnostics behind the error, where there are any (`invalid-manifest`, capability checks).
    public var diagnostics: [Diagnostic]?

    public init(_ code: AgentErrorCode, _ message: String, diagnostics: [Diagnostic]? = nil) {
        self.code = code
        self.message = message
        self.diagnostics = diagnostics
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// One response line: `{"v":1,"id":..,"ok":true,"result":{..}}` or `{"v":1,"id":..,"ok":false,"error":{..}}`.
public struct AgentResponse<Result: Codable & Sendable>: Sendable, Codable {
    public var v: Int
    public var id: AgentRequestID?
    public var ok: Bool
    public var result: Result?
    public var error: AgentErrorBody?

    public init(id: AgentRequestID?, result: Result) {
        v = AgentProtocol.version
        self.id = id
        ok = true
        self.result = result
    }

    public init(id: AgentRequestID?, error: AgentErrorBody) {
        v = AgentProtocol.version
        self.id = id
        ok = false
        self.error = error
    }
}

/// A line streamed after a request's response: an event of `events --follow`, or one a listener must answer.
public struct AgentEventLine: Sendable, Codable {
    public var v: Int
    public var id: AgentRequestID?
    public var guest: String
    public var event: ListenerEvent

    public init(id: AgentRequestID?, guest: String, event: ListenerEvent) {
        v = AgentProtocol.version
        self.id = id
        self.guest = guest
        self.event = event
    }
}

/// A listener's answer to an event line: `{"v":1,"sequence":N,"accept":true}` or with `"accept":false,"reason":".."`.
public struct ListenerAnswer: Sendable, Codable {
    public var v: Int
    public var sequence: UInt64
    public var accept: Bool
    public var reason: String?

    public init(sequence: UInt64, accept: Bool, reason: String? = nil) {
        v = AgentProtocol.version
        self.sequence = sequence
        self.accept = accept
        self.reason = reason
    }
}

// MARK: Results

public struct HelloResult: Sendable, Codable {
    public var protocolVersion: Int
    /// A random id chosen when the agent starts: a different id means the agent restarted and lost its guests.
    public var instance: String
    /// `kvm` or `sim:PROFILE`, as `--host` takes it.
    public var host: String
    public var hostLabel: String
    public var flagSet: GuestMemfdFlagSet
    public var pid: Int32
    /// ISO 8601.
    public var startedAt: String
    public var guests: [String]
    /// The state file a simulator agent serves (`--state`), so a client restarting it can do so alike.
    public var stateFile: String?

    public init(
        protocolVersion: Int, instance: String, host: String, hostLabel: String, flagSet: GuestMemfdFlagSet,
        pid: Int32, startedAt: String, guests: [String], stateFile: String? = nil
    ) {
        self.protocolVersion = protocolVersion
        self.instance = instance
        self.host = host
        self.hostLabel = hostLabel
        self.flagSet = flagSet
        self.pid = pid
        self.startedAt = startedAt
        self.guests = guests
        self.stateFile = stateFile
    }
}

public struct PlanResult: Sendable, Codable {
    public var hostLabel: String
    public var plan: Plan

    public init(hostLabel: String, plan: Plan) {
        self.hostLabel = hostLabel
        self.plan = plan
    }
}

public struct GuestView: Sendable, Codable {
    public var live: LiveState
    public var observation: GuestObservation

    public init(live: LiveState, observation: GuestObservation) {
        self.live = live
        self.observation = observation
    }
}

public struct ApplyResult: Sendable, Codable {
    public var hostLabel: String
    public var plan: Plan
    public var report: ApplyReport
    public var guest: GuestView
    public var verification: VerificationReport?

    public init(
        hostLabel: String, plan: Plan, report: ApplyReport, guest: GuestView,
        verification: VerificationReport?
    ) {
        self.hostLabel = hostLabel
        self.plan = plan
        self.report = report
        self.guest = guest
        self.verification = verification
    }
}

public struct DiffResult: Sendable, Codable {
    public var hostLabel: String
    public var diff: StateDiff

    public init(hostLabel: String, diff: StateDiff) {
        self.hostLabel = hostLabel
        self.diff = diff
    }
}

public struct GetResult: Sendable, Codable {
    public var hostLabel: String
    public var guests: [GuestView]

    public init(hostLabel: String, guests: [GuestView]) {
        self.hostLabel = hostLabel
        self.guests = guests
    }
}

/// convert and destroy.
public struct RunResult: Sendable, Codable {
    public var hostLabel: String
    public var plan: Plan
    public var report: ApplyReport

    public init(hostLabel: String, plan: Plan, report: ApplyReport) {
        self.hostLabel = hostLabel
        self.plan = plan
        self.report = report
    }
}

public struct EventsResult: Sendable, Codable {
    public var guest: String
    public var events: [ListenerEvent]
    /// With follow, further events arrive as `AgentEventLine`s until the client disconnects.
    public var following: Bool
    /// Set when events after `since` were dropped from the agent's bounded history: the oldest number kept.
    public var droppedBefore: UInt64?
    /// How many events per guest the agent keeps.
    public var kept: Int?

    public init(guest: String, events: [ListenerEvent], following: Bool, droppedBefore: UInt64? = nil, kept: Int? = nil)
    {
        self.guest = guest
        self.events = events
        self.following = following
        self.droppedBefore = droppedBefore
        self.kept = kept
    }
}

public struct ListenResult: Sendable, Codable {
    public var guest: String
    public var listener: String

    public init(guest: String, listener: String) {
        self.guest = guest
        self.listener = listener
    }
}

public struct StopResult: Sendable, Codable {
    public var guests: [String]

    public init(guests: [String]) {
        self.guests = guests
    }
}

/// Encodes protocol lines: compact JSON plus the newline.
public enum AgentLine {
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else {
            return Array(
                #"{"v":1,"ok":false,"error":{"code":"failed","message":"response could not be encoded"}}"#.utf8) + [10]
        }
        return Array(data) + [10]
    }
}

/// The result of a response that has none (errors).
public struct AgentNoResult: Sendable, Codable {
    public init() {}
}
