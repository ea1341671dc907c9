import Foundation
import GmemCore
import GmemProtocol
import Synchronization

// Foundation has a `Host` too; this one is meant.
import protocol GmemCore.Host

/// A host shared by the agent's guest queues. Hosts were written for one command on one thread; here guests
/// run in parallel. The guest table is read and written under a short lock. Kernel calls take that lock only
/// where the kernel needs it (the simulator's one in-memory state); the real kernel's calls run unlocked,
/// so one guest's long populate never stalls another's requests. State-file writes are taken off the
/// request path: the state is captured under the lock and written by a background writer, newest first.
public final class SharedHost: Host, @unchecked Sendable {
    private let inner: Host
    private let lock: NSRecursiveLock
    private let sharedKernel: KernelInterface
    private let writer = DispatchQueue(label: "gmemctl.agent.state-writer")
    private let pendingWrite = Mutex<HostCommit?>(nil)
    private let writeFailure = Mutex<HostError?>(nil)

    public init(_ inner: Host) {
        self.inner = inner
        let lock = NSRecursiveLock()
        self.lock = lock
        sharedKernel = inner.kernel.allowsConcurrentCalls ? inner.kernel : SerializedKernel(inner.kernel, lock: lock)
    }

    public var label: String { inner.label }
    public var spec: String { inner.spec }
    public var capabilities: Capabilities { inner.capabilities }
    public var kernel: KernelInterface { sharedKernel }
    public var outlivesProcess: Bool { inner.outlivesProcess }
    /// The kernel for verification: the inner one where it runs a probe guest (the Verifier's vCPU needs the
    /// real kernel), the shared one otherwise.
    public var verificationKernel: KernelInterface {
        inner.kernel.guestProber != nil ? inner.kernel : sharedKernel
    }

    public func guestNames() -> [String] { lock.withLock { inner.guestNames() } }
    public func guest(named name: String) -> LiveState { lock.withLock { inner.guest(named: name) } }
    public func store(_ state: LiveState) { lock.withLock { inner.store(state) } }
    public func remove(guest name: String) { lock.withLock { inner.remove(guest: name) } }

    /// Captures the state under the lock and leaves the write to the writer. A write that failed is
    /// reported by the next commit.
    public func commit() throws(HostError) {
        if let failure = writeFailure.withLock({ $0.take() }) { throw failure }
        lock.lock()
        let captured: HostCommit?
        do {
            captured = try inner.prepareCommit()
        } catch {
            lock.unlock()
            throw error
        }
        guard let captured else {
            // A host that cannot split its commit (none here today) commits under the lock.
            defer { lock.unlock() }
            try inner.commit()
            return
        }
        // Queued under the lock, so the writer never takes an older state after a newer one.
        let isFirst = pendingWrite.withLock { pending in
            defer { pending = captured }
            return pending == nil
        }
        lock.unlock()
        guard isFirst else { return }  // a write is queued already; it will take this newer state
        writer.async { self.writePending() }
    }

    /// Waits until every captured state is written (the agent calls it before it exits).
    public func flush() throws(HostError) {
        writer.sync {}
        if let failure = writeFailure.withLock({ $0.take() }) { throw failure }
    }

    private func writePending() {
        guard let next = pendingWrite.withLock({ $0.take() }) else { return }
        do {
            try next.write()
        } catch {
            writeFailure.withLock { $0 = error }
        }
    }
}

/// Every `KernelInterface` call of the wrapped kernel, made under the host's lock.
final class SerializedKernel: KernelInterface, @unchecked Sendable {
    private let inner: KernelInterface
    private let lock: NSRecursiveLock

    init(_ inner: KernelInterface, lock: NSRecursiveLock) {
        self.inner = inner
        self.lock = lock
    }

    private func locked<T>(_ body: () throws(KernelError) -> T) throws(KernelError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    var pageSize: UInt64 { inner.pageSize }

    func checkExtension(_ capability: UInt32, vm: Int32?) throws(KernelError) -> Int64 {
        try locked { () throws(KernelError) in try inner.checkExtension(capability, vm: vm) }
    }
    func createVM(type: UInt64) throws(KernelError) -> Int32 {
        try locked { () throws(KernelError) in try inner.createVM(type: type) }
    }
    func createGuestMemfd(vm: Int32, size: UInt64, flags: UInt64) throws(KernelError) -> Int32 {
        try locked { () throws(KernelError) in try inner.createGuestMemfd(vm: vm, size: size, flags: flags) }
    }
    func createMemfd(name: String, size: UInt64, hugePageSize: UInt64?) throws(KernelError) -> Int32 {
        try locked { () throws(KernelError) in try inner.createMemfd(name: name, size: size, hugePageSize: hugePageSize)
        }
    }
    func mmap(
        fd: Int32?, length: UInt64, offset: UInt64, shared: Bool, hugePageSize: UInt64?
    ) throws(KernelError) -> UInt64 {
        try locked { () throws(KernelError) in
            try inner.mmap(fd: fd, length: length, offset: offset, shared: shared, hugePageSize: hugePageSize)
        }
    }
    func munmap(address: UInt64, length: UInt64) throws(KernelError) {
        try locked { () throws(KernelError) in try inner.munmap(address: address, length: length) }
    }
    func setUserMemoryRegion2(vm: Int32, _ region: MemoryRegion2) throws(KernelError) {
        try locked { () throws(KernelError) in try inner.setUserMemoryRegion2(vm: vm, region) }
    }
    func setMemoryAttributes(
        vm: Int32, address: UInt64, size: UInt64, attributes: UInt64, flags: UInt64
    ) throws(KernelError) {
        try locked { () throws(KernelError) in
            try inner.setMemoryAttributes(vm: vm, address: address, size: size, attributes: attributes, flags: flags)
        }
    }
    func gmemConvert(gmem: Int32, offset: UInt64, size: UInt64, toPrivate: Bool) throws(KernelError) {
        try locked { () throws(KernelError) in
            try inner.gmemConvert(gmem: gmem, offset: offset, size: size, toPrivate: toPrivate)
        }
    }
    func setMemoryAttributes2(
        gmem: Int32, offset: UInt64, size: UInt64, attributes: UInt64, flags: UInt64
    ) throws(KernelError) {
        try locked { () throws(KernelError) in
            try inner.setMemoryAttributes2(gmem: gmem, offset: offset, size: size, attributes: attributes, flags: flags)
        }
    }
    func fallocate(fd: Int32, mode: Int32, offset: UInt64, length: UInt64) throws(KernelError) {
        try locked { () throws(KernelError) in try inner.fallocate(fd: fd, mode: mode, offset: offset, length: length) }
    }
    func madvise(address: UInt64, length: UInt64, advice: Int32) throws(KernelError) {
        try locked { () throws(KernelError) in try inner.madvise(address: address, length: length, advice: advice) }
    }
    func read(address: UInt64, count: Int) throws(KernelError) -> [UInt8] {
        try locked { () throws(KernelError) in try inner.read(address: address, count: count) }
    }
    func write(address: UInt64, bytes: [UInt8]) throws(KernelError) {
        try locked { () throws(KernelError) in try inner.write(address: address, bytes: bytes) }
    }
    func residentPages(address: UInt64, length: UInt64) throws(KernelError) -> UInt64 {
        try locked { () throws(KernelError) in try inner.residentPages(address: address, length: length) }
    }
    func residentBytes(address: UInt64, length: UInt64) throws(KernelError) -> ResidentReading {
        try locked { () throws(KernelError) in try inner.residentBytes(address: address, length: length) }
    }
    func close(_ fd: Int32) throws(KernelError) {
        try locked { () throws(KernelError) in try inner.close(fd) }
    }
}
