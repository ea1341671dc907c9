import ArgumentParser
import Config
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

#if canImport(Glibc)
import Glibc
#endif

/// Where commands act: `--host auto|kvm|sim:PROFILE`, with the simulator's state file and the opt-in for
/// unmerged kernel ABIs.
struct HostOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Host: auto (/dev/kvm when it opens and offers guest_memfd, else the simulator), kvm, or sim:PROFILE (see `gmemctl profiles`).",
            valueName: "host"))
    var host: String = "auto"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Simulator state file (default: $XDG_STATE_HOME/gmemctl/sim-PROFILE.json); the simulator's guests live there between commands.",
            valueName: "path"))
    var state: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Opt in to an unmerged kernel ABI on kvm: gmem-convert-poc or gmem-attributes2 (their capability numbers are unstable, so they are never guessed).",
            valueName: "abi"))
    var kvmABI: String?

    @Option(name: .long, help: .hidden)
    var simFault: [String] = []

    func validate() throws {
        if let kvmABI, ConversionABI(rawValue: kvmABI)?.convertsInPlace != true {
            throw ValidationError("--kvm-abi takes gmem-convert-poc or gmem-attributes2, not \(kvmABI)")
        }
        if host != "auto" && host != "kvm" && !host.hasPrefix("sim:") {
            throw ValidationError("--host takes auto, kvm or sim:PROFILE, not \(host)")
        }
        if host.hasPrefix("sim:"), Profiles.named(String(host.dropFirst(4))) == nil {
            throw ValidationError(
                "unknown profile \(host.dropFirst(4)); known: \(Profiles.names.joined(separator: ", "))")
        }
    }

    /// Opens the host. `persistent` asks for a simulator backed by its state file.
    func open(persistent: Bool = true) throws -> Host {
        switch host {
        case "kvm":
            return try openKVM()
        case "auto":
            var (available, reason) = KVMKernel.canOpen()
            if available {
                let kvm = try openKVM()
                if kvm.capabilities.vmTypes.contains(where: \.guestMemfd) { return kvm }
                reason = "/dev/kvm offers no guest_memfd on any VM type (see `gmemctl caps --host kvm`)"
            }
            let profile = Profiles.linux618PVM
            printNote("using the simulator (sim:\(profile.name)): \(reason)")
            return try openSimulator(profile, persistent: persistent)
        default:
            guard let profile = Profiles.named(String(host.dropFirst(4))) else {
                throw ValidationError("unknown profile \(host.dropFirst(4))")
            }
            return try openSimulator(profile, persistent: persistent)
        }
    }

    /// Whether `--host auto` means the real kernel here: /dev/kvm opens and offers guest_memfd.
    static func autoMeansKVM() -> Bool {
        guard KVMKernel.canOpen().available, let kvm = try? KVMHost(optIn: nil) else { return false }
        return kvm.capabilities.vmTypes.contains(where: \.guestMemfd)
    }

    private func openKVM() throws -> Host {
        do {
            return try KVMHost(optIn: kvmABI.flatMap(ConversionABI.init(rawValue:)))
        } catch {
            throw CLIError.unavailable("cannot use /dev/kvm: \(error)")
        }
    }

    private func openSimulator(_ profile: Capabilities, persistent: Bool) throws -> Host {
        let simulated: SimulatedHost
        if persistent {
            // A state file that is refused (symlinked, corrupt, of another version) makes the host unusable;
            // as a CLIError it reaches the user in the requested format, JSON included.
            do {
                simulated = try SimulatedHost(
                    profile: profile,
                    stateFile: state ?? SimulatedHost.defaultStateFile(profile: profile.name))
            } catch {
                throw CLIError.unavailable(error.description)
            }
        } else {
            simulated = SimulatedHost(profile: profile)
        }
        for text in simFault {
            simulated.simulator.injectFault(try SimFaultSpec.parse(text))
        }
        return simulated
    }
}

/// `--sim-fault CALL:N:ERRNO` (hidden, for tests): fail the Nth call named CALL with ERRNO.
enum SimFaultSpec {
    static func parse(_ text: String) throws -> SimulatedFault {
        let parts = text.split(separator: ":").map(String.init)
        guard parts.count == 3, let occurrence = Int(parts[1]), let errno = Errno(parsing: parts[2]),
            let call = SimulatedCall(rawValue: parts[0])
        else {
            throw ValidationError("--sim-fault takes CALL:N:ERRNO, e.g. KVM_SET_MEMORY_ATTRIBUTES:2:12")
        }
        return SimulatedFault(call: call, occurrence: occurrence, errno: errno)
    }
}
