import Config
import Foundation
import GmemCore

// Foundation has a `Host` too; this one is meant.
import protocol GmemCore.Host

/// The built-in simulator. Its whole state (the simulated kernel and every guest's tracked state) lives in
/// a state file, so the simulator also serves as the embedded default between CLI invocations.
public final class SimulatedHost: Host {
    public let simulator: SimulatedKernel
    public let capabilities: Capabilities
    public let stateFile: String?
    private var guests: [String: LiveState]

    /// What the state file holds.
    struct StateFile: Codable {
        var formatVersion: Int
        var profile: String
        var kernel: SimulatedKernelState
        var guests: [String: LiveState]
    }

    /// A fresh simulator of `profile`, not persisted.
    public init(profile: Capabilities) {
        simulator = SimulatedKernel(capabilities: profile)
        capabilities = profile
        stateFile = nil
        guests = [:]
    }

    /// The formats of state file this build reads (and the one it writes).
    public static let stateFormatVersions = [1]

    /// Loads the simulator from `stateFile`, or starts a fresh one of `profile` if the file does not exist.
    /// The state file stays locked until this host is released, so the whole load-change-commit of one
    /// command excludes every other command on the same file.
    public init(profile: Capabilities, stateFile: String) throws(HostError) {
        self.stateFile = stateFile
        capabilities = profile
        let store = try StateFileStore(path: stateFile)
        self.store = store
        guard let bytes = try store.load() else {
            simulator = SimulatedKernel(capabilities: profile)
            guests = [:]
            return
        }
        let saved = try Self.decode(bytes, file: stateFile)
        guard saved.profile == profile.name else {
            throw HostError(
                "simulator state \(stateFile) belongs to profile \(saved.profile), not \(profile.name); use --host sim:\(saved.profile) or another --state file"
            )
        }
        simulator = SimulatedKernel(state: saved.kernel)
        guests = saved.guests
    }

    public var spec: String { "sim:\(capabilities.name)" }

    private var store: StateFileStore?

    /// The state file's contents, checked before anything trusts them: a known format version, a kernel
    /// state that holds together, and guests whose blocks, memslots and descriptors match it.
    static func decode(_ bytes: [UInt8], file: String) throws(HostError) -> StateFile {
        let way = "move it away (it is only the simulator's memory of its guests) or use another --state"
        struct Version: Decodable { var formatVersion: Int? }
        let data = Data(bytes)
        guard let version = try? JSONDecoder().decode(Version.self, from: data) else {
            throw HostError("simulator state \(file) is not a state file (not a JSON object); \(way)")
        }
        guard let number = version.formatVersion, stateFormatVersions.contains(number) else {
            let found = version.formatVersion.map { "format version \($0)" } ?? "no format version"
            throw HostError(
                "simulator state \(file) has \(found); this gmemctl reads format version "
                    + stateFormatVersions.map(String.init).joined(separator: ", ") + "; \(way)")
        }
        let saved: StateFile
        do {
            saved = try JSONDecoder().decode(StateFile.self, from: data)
        } catch {
            throw HostError("simulator state \(file) is corrupt: \(Self.describe(error)); \(way)")
        }
        if let problem = saved.kernel.integrityProblem() ?? guestProblem(saved) {
            throw HostError("simulator state \(file) is inconsistent: \(problem); \(way)")
        }
        return saved
    }

    /// The first guest whose tracked state contradicts itself or the kernel state.
    static func guestProblem(_ saved: StateFile) -> String? {
        let kernel = saved.kernel
        func check(_ fd: Int32?, is kinds: [SimulatedDescriptorKind], _ what: String) -> String? {
            guard let fd else { return nil }
            guard let kind = kernel.kind(of: fd) else { return "\(what) is descriptor \(fd), which is not open" }
            return kinds.contains(kind)
                ? nil : "\(what) is descriptor \(fd), which is \(kind.rawValue), not \(kinds[0].rawValue)"
        }
        for (name, guest) in saved.guests {
            guard guest.name == name else { return "guest `\(name)` is filed under another name (`\(guest.name)`)" }
            if let problem = check(guest.vmFD, is: [.vm], "the VM of guest `\(name)`") { return problem }
            var sizes: [String: UInt64] = [:]
            for block in guest.blocks {
                let what = "block `\(block.name)` of guest `\(name)`"
                guard block.size <= Manifest.guestAddressLimit else {
                    return "\(what) is larger than \(Manifest.guestAddressLimitName)"
                }
                guard sizes.updateValue(block.size, forKey: block.name) == nil else { return "\(what) appears twice" }
                if let last = block.layout.runs.last, last.range.upperBound > block.size {
                    return "\(what) tracks state up to offset \(last.range.upperBound), past its size \(block.size)"
                }
                if let problem = check(block.guestMemfd, is: [.guestMemfd], "the guest_memfd of \(what)")
                    ?? check(block.sharedFD, is: [.file], "the shared memfd of \(what)")
                {
                    return problem
                }
            }
            for memslot in guest.memslots {
                let mapping = memslot.mapping
                let what = "memslot \(memslot.slot) of guest `\(name)`"
                guard let size = sizes[mapping.block] else {
                    return "\(what) maps block `\(mapping.block)`, which the guest does not have"
                }
                guard SimulatedKernelState.fits(mapping.gpa, mapping.size, Manifest.guestAddressLimit),
                    SimulatedKernelState.fits(mapping.offset, mapping.size, size)
                else {
                    return "\(what) runs past its block or the guest address space"
                }
            }
        }
        return nil
    }

    /// A decoding error in a sentence: what and where, without Foundation's debug dump.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func at(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return path.isEmpty ? context.debugDescription : "\(context.debugDescription) at \(path)"
        }
        switch error {
        case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context),
            .keyNotFound(_, let context):
            return at(context)
        @unknown default:
            return "\(error)"
        }
    }

    public var label: String { "sim:\(capabilities.name)" + (stateFile.map { " (state \($0))" } ?? "") }
    public var kernel: KernelInterface { simulator }
    public var outlivesProcess: Bool { stateFile != nil }

    public func guestNames() -> [String] { guests.keys.sorted() }
    public func guest(named name: String) -> LiveState { guests[name] ?? LiveState(name: name) }
    public func store(_ state: LiveState) { guests[state.name] = state }
    public func remove(guest name: String) { guests[name] = nil }

    public func commit() throws(HostError) {
        try prepareCommit()?.write()
    }

    public func prepareCommit() throws(HostError) -> HostCommit? {
        guard let stateFile, let store else { return nil }
        // Values only (copy-on-write): capturing is cheap, encoding and writing happen in `write`.
        let file = StateFile(
            formatVersion: Self.stateFormatVersions[0], profile: capabilities.name, kernel: simulator.snapshot(),
            guests: guests)
        let target = UncheckedStore(store)
        return HostCommit { () throws(HostError) in
            let data: Data
            do {
                data = try JSONEncoder().encode(file)
            } catch {
                throw HostError("cannot encode simulator state \(stateFile): \(error)")
            }
            try target.store.save([UInt8](data))
        }
    }

    /// Default state file: `$XDG_STATE_HOME/gmemctl/sim-PROFILE.json`, else `~/.local/state/gmemctl/...`.
    public static func defaultStateFile(profile: String) -> String {
        let environment = ProcessInfo.processInfo.environment
        let base =
            environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSTemporaryDirectory()) + "/.local/state")
        return "\(base)/gmemctl/sim-\(profile).json"
    }
}

/// The state file store handed to a deferred write; writes of one host are run one at a time (the shared
/// host's writer queue), which is what makes this safe.
private struct UncheckedStore: @unchecked Sendable {
    let store: StateFileStore
    init(_ store: StateFileStore) { self.store = store }
}
