import Config
import GmemCore

/// The real kernel through `/dev/kvm`. Live objects belong to this process: they are gone when it exits,
/// so without an agent a KVM host serves one command (`apply --ephemeral`).
public final class KVMHost: Host {
    public let kvm: KVMKernel
    public let capabilities: Capabilities
    private var guests: [String: LiveState] = [:]

    public init(devicePath: String = KVMKernel.defaultDevicePath, optIn: ConversionABI? = nil) throws(KernelError) {
        kvm = try KVMKernel(devicePath: devicePath)
        var probed = try CapabilityProbe.probe(
            kvm, optIn: optIn, hugepageDirectory: HugepagePools.defaultDirectory,
            hostFacts: HostFacts.read())
        if let profile = CapabilityProbe.matchingProfile(probed) {
            probed.summary = "probed from \(devicePath); matches profile \(profile.name)"
        } else {
            probed.summary = "probed from \(devicePath); matches no built-in profile"
        }
        capabilities = probed
    }

    public var spec: String { "kvm" }
    public var label: String { "kvm (\(kvm.devicePath))" }
    public var kernel: KernelInterface { kvm }
    public var outlivesProcess: Bool { false }

    public func guestNames() -> [String] { guests.keys.sorted() }
    public func guest(named name: String) -> LiveState { guests[name] ?? LiveState(name: name) }
    public func store(_ state: LiveState) { guests[state.name] = state }
    public func remove(guest name: String) { guests[name] = nil }
    public func commit() throws(HostError) {}
}
