import Config

/// Where operations are carried out: the real kernel or the simulator. A host holds the live state of any
/// number of guests, keyed by manifest name.
public protocol Host: AnyObject {
    /// For messages: `kvm (/dev/kvm)`, `sim:linux-6.18 (state /path)`.
    var label: String { get }
    var capabilities: Capabilities { get }
    var kernel: KernelInterface { get }
    /// The kernel the verifier uses; `kernel` unless the host wraps it (the agent's serialized host hands
    /// out the real kernel, whose probe guest needs no lock).
    var verificationKernel: KernelInterface { get }
    /// The host as `--host` names it: `kvm`, `sim:PROFILE`.
    var spec: String { get }
    /// Whether live objects outlive this process (the simulator's state file does; real KVM objects die with
    /// the process that holds them).
    var outlivesProcess: Bool { get }

    func guestNames() -> [String]
    /// The tracked state of a guest (an empty, non-existent state if the host has none).
    func guest(named name: String) -> LiveState
    func store(_ state: LiveState)
    func remove(guest name: String)
    /// Makes the current state durable (the simulator writes its state file).
    func commit() throws(HostError)
    /// `commit` in two halves: the state captured now, and its write, to run later and elsewhere (a shared
    /// host captures under its lock and writes outside it). Nil: the host has nothing to write.
    func prepareCommit() throws(HostError) -> HostCommit?
}

/// A captured state and the write that makes it durable.
public struct HostCommit: Sendable {
    public let write: @Sendable () throws(HostError) -> Void

    public init(write: @escaping @Sendable () throws(HostError) -> Void) {
        self.write = write
    }
}

public struct HostError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension Host {
    public var verificationKernel: KernelInterface { kernel }
    public func prepareCommit() throws(HostError) -> HostCommit? { nil }

    /// A runtime for one guest on this host; store its state back with `store(runtime.state)`.
    public func runtime(for name: String) -> GuestRuntime {
        GuestRuntime(kernel: kernel, capabilities: capabilities, state: guest(named: name))
    }
}
