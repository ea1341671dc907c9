import Config
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// Short names for the errno values the simulated kernel tests expect (values from the one `Errno` table).
enum SimExpectedErrno {
    static let badf = Errno.ebadf, again = Errno.eagain, nomem = Errno.enomem, acces = Errno.eacces
    static let fault = Errno.efault, exist = Errno.eexist, nodev = Errno.enodev, inval = Errno.einval
    static let notty = Errno.enotty, opnotsupp = Errno.eopnotsupp
}

/// The error a kernel call threw, or nil when it succeeded (any other error is recorded as an issue).
func simKernelError<Result>(
    _ body: () throws -> Result, sourceLocation: SourceLocation = #_sourceLocation
) -> KernelError? {
    do {
        _ = try body()
        return nil
    } catch let error as KernelError {
        return error
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The failure of a kernel call, or nil when it succeeded.
func simFailure<Result>(
    _ body: () throws -> Result, sourceLocation: SourceLocation = #_sourceLocation
) -> KernelError.Failure? {
    simKernelError(body, sourceLocation: sourceLocation)?.failure
}

/// The errno of a kernel call, or nil when it succeeded (or raised SIGBUS).
func simErrno<Result>(_ body: () throws -> Result, sourceLocation: SourceLocation = #_sourceLocation) -> Errno? {
    simKernelError(body, sourceLocation: sourceLocation)?.errno
}

/// The error of a kernel call that must fail.
func simError<Result>(_ body: () throws -> Result, sourceLocation: SourceLocation = #_sourceLocation) -> KernelError? {
    let error = simKernelError(body, sourceLocation: sourceLocation)
    if error == nil { Issue.record("expected the call to fail", sourceLocation: sourceLocation) }
    return error
}

let simPage: UInt64 = 4096
let simMiB: UInt64 = 1 << 20
let simGiB: UInt64 = 1 << 30
let simTiB: UInt64 = 1 << 40

/// Common setups on a fresh simulated kernel.
struct SimSetup {
    let kernel: SimulatedKernel

    init(_ capabilities: Capabilities) { kernel = SimulatedKernel(capabilities: capabilities) }

    func vm(_ type: VMType = .default) throws -> Int32 { try kernel.createVM(type: type.kvmValue) }

    /// A guest_memfd of `size` on a new VM of `type`.
    func gmem(_ type: VMType = .default, size: UInt64 = 16 * simPage, flags: UInt64) throws -> (vm: Int32, gmem: Int32)
    {
        let vm = try vm(type)
        return (vm, try kernel.createGuestMemfd(vm: vm, size: size, flags: flags))
    }

    /// An mmap-ed guest_memfd (MAP_SHARED) of `size`.
    func mappedGmem(
        _ type: VMType = .default, size: UInt64 = 16 * simPage, flags: UInt64
    ) throws -> (vm: Int32, gmem: Int32, address: UInt64) {
        let (vm, gmem) = try gmem(type, size: size, flags: flags)
        let address = try kernel.mmap(fd: gmem, length: size, offset: 0, shared: true, hugePageSize: nil)
        return (vm, gmem, address)
    }

    /// A gmem slot of `size` at `gpa` bound to `gmem` at `offset`.
    static func gmemRegion(
        slot: UInt32 = 0, gpa: UInt64 = 0, size: UInt64 = 16 * simPage, gmem: Int32, offset: UInt64 = 0,
        flags: UInt32 = KVMConstants.memGuestMemfd, userspaceAddr: UInt64 = 0
    ) -> MemoryRegion2 {
        MemoryRegion2(
            slot: slot, flags: flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: userspaceAddr,
            guestMemfdOffset: offset, guestMemfd: UInt32(bitPattern: gmem))
    }
}

let upstreamMmapShared = KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared
let pocSharedPrivate = KVMConstants.pocGmemFlagSupportShared | KVMConstants.pocGmemFlagInitPrivate
