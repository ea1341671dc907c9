import Foundation
import GmemCore
// Foundation has a `Host` too; this one is meant.
import protocol GmemCore.Host
import GmemProtocol

/// A host shared by the agent's guest queues. Hosts and kernels were written for one command on one thread;
/// here guests run in parallel, so every host and kernel call is made under one lock. A call is short (an
/// ioctl, a map lookup); the lock serializes calls, not whole operations, so guests still interleave.
public final class SerializedHost: Host, @unchecked Sendable {
    private let inner: Host
    private let lock: NSRecursiveLock
    private let serializedKernel: SerializedKernel

    public init(_ inner: Host) {
        self.inner = inner
        let lock = NSRecursiveLock()
        self.lock = lock
        serializedKernel = SerializedKernel(inner.kernel, lock: lock)
    }

    public var label: String { inner.label }
    public var spec: String { inner.spec }
    public var capabilities: Capabilities { inner.capabilities }
    public var kernel: KernelInterface { serializedKernel }
    public var outlivesProcess: Bool { inner.outlivesProcess }
    /// The kernel for verification: the inner one where it runs a probe guest (the Verifier's vCPU needs the
    /// real kernel, and ioctls on different VMs need no lock), the serialized one otherwise.
    public var verificationKernel: KernelInterface {
        inner.kernel.guestProber != nil ? inner.kernel : serializedKernel
    }

    public func guestNames() -> [String] { lock.withLock { inner.guestNames() } }
    public func guest(named name: String) -> LiveState { lock.withLock { inner.guest(named: name) } }
    public func store(_ state: LiveState) { lock.withLock { inner.store(state) } }
    public func remove(guest name: String) { lock.withLock { inner.remove(guest: name) } }
    public func commit() throws(HostError) {
        lock.lock()
        defer { lock.unlock() }
        try inner.commit()
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
        try locked { () throws(KernelError) in try inner.createMemfd(name: name, size: size, hugePageSize: hugePageSize) }
    }
    func mmap(fd: Int32?, length: UInt64, offset: UInt64, shared: Bool, hugePageSize: UInt64?) throws(KernelError) -> UInt64 {
        try locked { () throws(KernelError) in try inner.mmap(fd: fd, length: length, offset: offset, shared: shared, hugePageSize: hugePageSize) }
    }
    func munmap(address: UInt64, length: UInt64) throws(KernelError) {
        try locked { () throws(KernelError) in try inner.munmap(address: address, length: length) }
    }
    func setUserMemoryRegion2(vm: Int32, _ region: MemoryRegion2) throws(KernelError) {
        try locked { () throws(KernelError) in try inner.setUserMemoryRegion2(vm: vm, region) }
    }
    func setMemoryAttributes(vm: Int32, address: UInt64, size: UInt64, attributes: UInt64, flags: UInt64) throws(KernelError) {
        try locked { () throws(KernelError) in try inner.setMemoryAttributes(vm: vm, address: address, size: size, attributes: attributes, flags: flags) }
    }
    func gmemConvert(gmem: Int32, offset: UInt64, size: UInt64, toPrivate: Bool) throws(KernelError) {
        try locked { () throws(KernelError) in try inner.gmemConvert(gmem: gmem, offset: offset, size: size, toPrivate: toPrivate) }
    }
    func setMemoryAttributes2(gmem: Int32, offset: UInt64, size: UInt64, attributes: UInt64, flags: UInt64) throws(KernelError) {
        try locked { () throws(KernelError) in try inner.setMemoryAttributes2(gmem: gmem, offset: offset, size: size, attributes: attributes, flags: flags) }
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
