import GmemCore

/// Runs a tiny 64-bit guest on a vCPU of a VM made through `KVMKernel`, to see memory the way the guest
/// sees it: for each target GPA the guest reads the byte there, reports it with `out 0x10, al` (a port-I/O
/// exit), optionally writes a marker byte, and finally executes `hlt`.
///
/// The runner brings its own memory: a small anonymous memslot ("scratch", default 64 KiB at GPA 0x10000,
/// slot 32763) for the GDT, page tables and code, so the caller's memslots stay untouched. The caller picks
/// a scratch GPA and slot id that its own layout leaves free. Targets may lie anywhere below 512 GiB outside
/// the scratch range (below 1 MiB and at/above 4 GiB alike; long mode, identity-mapped with 2 MiB pages).
///
/// Shadow-paging hosts (PVM, see docs/kernels.md): the caller's gmem-only slots must be bound with the host's
/// mmap of the guest_memfd as `userspace_addr`, not 0: otherwise the guest's page walks through them
/// triple-fault (`KVM_EXIT_SHUTDOWN`) and its data accesses exit as MMIO (`KVM_EXIT_MMIO`, seen here).
///
/// The vCPU is created once and reused for every probe; it lives until the VM is destroyed, so create one
/// runner per VM (or give each its own `vcpuID`). The scratch memslot is deleted on deinit.
public final class GuestRunner {
    public static let defaultScratchGPA: UInt64 = 0x10000
    public static let defaultScratchSize: UInt64 = 0x10000
    public static let defaultScratchSlot: UInt32 = 32763

    public let vm: Int32
    public let scratchGPA: UInt64
    public let scratchSize: UInt64
    public let scratchSlot: UInt32
    private let kernel: KVMKernel
    private let scratchHostAddress: UInt64
    private let vcpu: GuestVCPU
    private var image: GuestLongModeImage

    public init(
        kernel: KVMKernel, vm: Int32, scratchGPA: UInt64 = GuestRunner.defaultScratchGPA,
        scratchSize: UInt64 = GuestRunner.defaultScratchSize, scratchSlot: UInt32 = GuestRunner.defaultScratchSlot,
        vcpuID: UInt = 0
    ) throws(GuestRunError) {
        guard scratchGPA % 0x1000 == 0, scratchSize % 0x1000 == 0 else {
            throw .invalidScratch(gpa: scratchGPA, size: scratchSize, reason: "GPA and size must be 4 KiB aligned")
        }
        guard scratchSize >= GuestLongModeImage.minimumScratchSize else {
            throw .invalidScratch(
                gpa: scratchGPA, size: scratchSize,
                reason: "needs at least 0x\(String(GuestLongModeImage.minimumScratchSize, radix: 16)) bytes")
        }
        guard scratchGPA + scratchSize <= GuestLongModeImage.reachLimit else {
            throw .invalidScratch(gpa: scratchGPA, size: scratchSize, reason: "must lie below 512 GiB")
        }
        self.kernel = kernel
        self.vm = vm
        self.scratchGPA = scratchGPA
        self.scratchSize = scratchSize
        self.scratchSlot = scratchSlot
        self.image = GuestLongModeImage(scratchGPA: scratchGPA, scratchSize: scratchSize)

        let hostAddress: UInt64
        do {
            hostAddress = try kernel.mmap(fd: nil, length: scratchSize, offset: 0, shared: false, hugePageSize: nil)
        } catch { throw .kernel(error) }
        do {
            try kernel.setUserMemoryRegion2(
                vm: vm,
                MemoryRegion2(
                    slot: scratchSlot, flags: 0, guestPhysAddr: scratchGPA,
                    memorySize: scratchSize, userspaceAddr: hostAddress))
        } catch {
            try? kernel.munmap(address: hostAddress, length: scratchSize)
            throw .kernel(error)
        }
        self.scratchHostAddress = hostAddress
        do {
            self.vcpu = try GuestVCPU(kernel: kernel, vm: vm, id: vcpuID)
            var base = image.basePatches()
            base += image.mapRegions(containing: [scratchGPA]).patches
            try apply(base)
        } catch {
            Self.release(
                kernel: kernel, vm: vm, slot: scratchSlot, gpa: scratchGPA, hostAddress: hostAddress, size: scratchSize)
            throw error
        }
    }

    deinit {
        Self.release(
            kernel: kernel, vm: vm, slot: scratchSlot, gpa: scratchGPA, hostAddress: scratchHostAddress,
            size: scratchSize)
    }

    /// Deletes the scratch memslot (size 0), then unmaps its memory.
    private static func release(
        kernel: KVMKernel, vm: Int32, slot: UInt32, gpa: UInt64, hostAddress: UInt64, size: UInt64
    ) {
        try? kernel.setUserMemoryRegion2(
            vm: vm, MemoryRegion2(slot: slot, flags: 0, guestPhysAddr: gpa, memorySize: 0, userspaceAddr: 0))
        try? kernel.munmap(address: hostAddress, length: size)
    }

    /// Runs the guest over `targets` in order and returns the byte it read at each one.
    public func probe(_ targets: [GuestProbeTarget]) throws(GuestRunError) -> [UInt8] {
        for target in targets {
            if target.gpa >= GuestLongModeImage.reachLimit {
                throw .unreachableTarget(gpa: target.gpa, reason: "the runner identity-maps only the first 512 GiB")
            }
            if target.gpa >= scratchGPA && target.gpa < scratchGPA + scratchSize {
                throw .unreachableTarget(gpa: target.gpa, reason: "inside the runner's own scratch memory")
            }
        }
        let code = GuestLongModeImage.code(for: targets)
        guard UInt64(code.count) <= GuestLongModeImage.codeCapacity else {
            throw .tooManyTargets(
                requested: targets.count, reason: "the code does not fit the runner's code area; probe in batches")
        }
        let mapping = image.mapRegions(containing: targets.map(\.gpa))
        try apply(mapping.patches)
        if mapping.missingCapacity {
            throw .tooManyTargets(
                requested: targets.count,
                reason:
                    "they span more 1 GiB regions than the scratch has page directories for (\(image.pageDirectoryCapacity))"
            )
        }
        try apply([GuestLongModeImage.Patch(offset: GuestLongModeImage.codeOffset, bytes: code)])
        try vcpu.enterLongMode(rip: image.codeGPA, cr3: image.pml4GPA, gdt: image.gdtGPA, stack: scratchGPA + 0x1000)
        return try collectReports(expected: targets.count)
    }

    /// Tuple form of `probe`: `(gpa, writeMarker)` pairs, every target written.
    public func probe(_ targets: [(gpa: UInt64, writeMarker: UInt8)]) throws(GuestRunError) -> [UInt8] {
        try probe(targets.map { GuestProbeTarget(gpa: $0.gpa, writeMarker: $0.writeMarker) })
    }

    private func collectReports(expected: Int) throws(GuestRunError) -> [UInt8] {
        var bytes: [UInt8] = []
        // Each target is one exit and `hlt` one more; anything beyond that is a runaway guest.
        for _ in 0...(expected + 1) {
            switch try vcpu.runOnce() {
            case .portOut(let port, let data) where port == GuestLongModeImage.reportPort && bytes.count < expected:
                bytes += data
            case .portOut(let port, let data):
                throw .unexpectedExit(
                    reason: 2, name: GuestExitName.name(2), rip: vcpu.rip,
                    detail:
                        "out to port 0x\(String(port, radix: 16)) (\(data.count) bytes) after \(bytes.count) of \(expected) reports"
                )
            case .halt where bytes.count == expected:
                return bytes
            case .halt:
                throw .unexpectedExit(
                    reason: 5, name: GuestExitName.name(5), rip: vcpu.rip,
                    detail: "halted after \(bytes.count) of \(expected) reports")
            case .memoryFault(let fault):
                throw .memoryFault(gpa: fault.gpa, size: fault.size, flags: fault.flags, rip: vcpu.rip)
            case .other(let reason, let detail):
                throw .unexpectedExit(reason: reason, name: GuestExitName.name(reason), rip: vcpu.rip, detail: detail)
            }
        }
        throw .unexpectedExit(reason: 2, name: GuestExitName.name(2), rip: vcpu.rip, detail: "the guest did not halt")
    }

    private func apply(_ patches: [GuestLongModeImage.Patch]) throws(GuestRunError) {
        for patch in patches {
            do { try kernel.write(address: scratchHostAddress + patch.offset, bytes: patch.bytes) } catch {
                throw .kernel(error)
            }
        }
    }
}

extension KVMKernel: GuestProber {
    public var guestProber: GuestProber? { self }
    public var probeScratchSize: UInt64 { GuestRunner.defaultScratchSize }

    public func probeInGuest(
        vm: Int32, scratchGPA: UInt64, scratchSlot: UInt32,
        targets: [(gpa: UInt64, writeMarker: UInt8)]
    ) throws(GuestRunError) -> [UInt8] {
        let runner = try GuestRunner(kernel: self, vm: vm, scratchGPA: scratchGPA, scratchSlot: scratchSlot)
        return try runner.probe(targets)
    }
}
