import ArgumentParser
import Config
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

struct CapsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caps",
        abstract: "Show what a host offers: VM types, guest_memfd flags, memory attributes, conversion ABI.",
        discussion: """
            On kvm the values are probed (KVM_CHECK_EXTENSION at system scope and on a VM of every accepted type, plus behavioural probes) and matched against the built-in profiles. Unmerged ABIs are looked for only with --kvm-abi.

            Examples:
              gmemctl caps                       # /dev/kvm if it opens, else the simulator
              gmemctl caps --host sim:gmem-attributes2 --output json

            Exit codes: 0 success, 1 the host could not be probed, 64 usage.
            """)

    @OptionGroup var hostOptions: HostOptions
    @Option(help: "Output format: human or json.") var output: OutputFormat = .human

    struct CapsJSON: Encodable {
        var formatVersion = JSONOutput.formatVersion
        var host: String
        var matchesProfile: String?
        var capabilities: Capabilities
    }

    func run() throws {
        let host = try hostOptions.open(persistent: false)
        let caps = host.capabilities
        let match = CapabilityProbe.matchingProfile(caps)?.name
        switch output {
        case .json:
            try JSONOutput.print(CapsJSON(host: host.label, matchesProfile: match, capabilities: caps))
        case .human:
            print(CapabilityText.describe(caps, host: host.label, match: match))
        }
    }
}

struct ProfilesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profiles",
        abstract: "List the built-in kernel profiles (for validate --target and --host sim:PROFILE).",
        discussion: """
            Examples:
              gmemctl profiles
              gmemctl profiles --output json

            Exit codes: 0 success, 64 usage.
            """)

    @Option(help: "Output format: human or json.") var output: OutputFormat = .human

    struct ProfilesJSON: Encodable {
        var formatVersion = JSONOutput.formatVersion
        var profiles: [Capabilities]
    }

    func run() throws {
        switch output {
        case .json:
            try JSONOutput.print(ProfilesJSON(profiles: Profiles.all))
        case .human:
            let width = Profiles.names.map(\.count).max() ?? 0
            for profile in Profiles.all {
                let types = profile.vmTypes.map { "\($0.vmType.rawValue)=\($0.conversion.rawValue)" }.joined(
                    separator: " ")
                print("\(profile.name.padding(to: width))  \(types)")
                print("\(String(repeating: " ", count: width))  \(profile.summary)")
            }
            for alias in Profiles.aliases {
                print("\(alias.alias.padding(to: width))  alias of \(alias.profile)")
            }
        }
    }
}

enum CapabilityText {
    static func describe(_ caps: Capabilities, host: String, match: String?) -> String {
        var lines = ["host: \(host)", "summary: \(caps.summary)"]
        lines.append("matches profile: \(match ?? "none")")
        lines.append(
            "page size: \(caps.pageSize), memslots: \(caps.maxMemslots), pre-fault: \(caps.preFault ? "yes" : "no")")
        lines.append(
            "guest-physical limit: \(caps.physicalAddressBits) bits, memslot limit: \(caps.maxMemslotDescription)")
        for line in caps.evidence { lines.append("evidence: \(line)") }
        let extensions = caps.systemExtensions.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
            separator: " ")
        lines.append("KVM_CHECK_EXTENSION (system): \(extensions)")
        lines.append("VM types:")
        for type in caps.vmTypes {
            lines.append(
                "  \(type.vmType.rawValue) (type \(type.vmType.kvmValue)): guest_memfd \(type.guestMemfd ? "yes" : "no"), flags \(KVMConstants.describeGuestMemfdFlags(type.guestMemfdFlags, in: caps.guestMemfdFlagSet)), attributes 0x\(String(type.memoryAttributes, radix: 16)), conversion \(type.conversion.rawValue)\(type.conversion.convertsInPlace ? " (in place)" : "")"
            )
        }
        let pools = caps.hugePageSizes.map { size in
            "\(formatSize(size))" + (caps.hugePagesFree?[size].map { " (\($0) free)" } ?? "")
        }
        lines.append("hugetlb page sizes: \(pools.isEmpty ? "none" : pools.joined(separator: ", "))")
        return lines.joined(separator: "\n")
    }
}

extension String {
    func padding(to width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
