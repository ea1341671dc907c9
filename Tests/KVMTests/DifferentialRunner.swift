import GmemCore
import GmemKVM
import GmemSimulator

/// Differential testing: one sequence of `KernelInterface` calls, written as data with symbolic fds and
/// addresses, runs on the real kernel (`KVMKernel`) and on `SimulatedKernel(capabilities: .linux618PVM)`;
/// every step's outcome (success with its value, the errno, or SIGBUS) and the end state (residency of every
/// mapping still in place) must be the same on both. On a mismatch the whole sequence is printed as a table.

/// A file descriptor, symbolically: the same sequence resolves to different numbers on each kernel.
enum DiffFd: Sendable, Hashable, CustomStringConvertible {
    /// The n-th VM created by the sequence.
    case vm(Int)
    /// The n-th file (guest_memfd or memfd) created by the sequence.
    case file(Int)
    /// The `/dev/kvm` fd of the kernel.
    case kvm
    /// A number that is open on neither kernel (EBADF).
    case invalid

    var description: String {
        switch self {
        case .vm(let n): return "vm\(n)"
        case .file(let n): return "file\(n)"
        case .kvm: return "/dev/kvm"
        case .invalid: return "badfd"
        }
    }
}

/// A host address, symbolically.
enum DiffAddress: Sendable, Hashable, CustomStringConvertible {
    /// Mapping n (from an `.mmap` step) plus a byte offset.
    case mapping(Int, UInt64)
    /// Address 0 (`userspace_addr = 0`).
    case zero

    var description: String {
        switch self {
        case .mapping(let n, let offset): return offset == 0 ? "map\(n)" : "map\(n)+0x\(String(offset, radix: 16))"
        case .zero: return "0"
        }
    }
}

/// One call. Creating steps name the symbolic index they define.
indirect enum DiffStep: Sendable, Hashable, CustomStringConvertible {
    case checkExtension(UInt32, vm: Int?)
    case createVM(Int, type: UInt64)
    case createGmem(Int, vm: DiffFd, size: UInt64, flags: UInt64)
    case createMemfd(Int, size: UInt64, hugePageSize: UInt64? = nil)
    /// `fd == nil`: anonymous memory.
    case mmap(Int, fd: DiffFd?, length: UInt64, offset: UInt64 = 0, shared: Bool = true, hugePageSize: UInt64? = nil)
    case munmap(DiffAddress, length: UInt64)
    /// `KVM_SET_USER_MEMORY_REGION2`; `gmem` is written into `guest_memfd` (as its fd number).
    case region(vm: Int, slot: UInt32, flags: UInt32, gpa: UInt64, size: UInt64, uaddr: DiffAddress, gmem: DiffFd? = nil,
                offset: UInt64 = 0)
    case fallocate(DiffFd, mode: Int32, offset: UInt64, length: UInt64)
    /// Writes `count` bytes of `byte`.
    case write(DiffAddress, byte: UInt8, count: Int)
    case read(DiffAddress, count: Int)
    case setAttributes(vm: DiffFd, address: UInt64, size: UInt64, attributes: UInt64, flags: UInt64 = 0)
    case gmemConvert(DiffFd, offset: UInt64, size: UInt64, toPrivate: Bool)
    case attributes2(DiffFd, offset: UInt64, size: UInt64, attributes: UInt64, flags: UInt64 = 0)
    case madvise(DiffAddress, length: UInt64, advice: Int32)
    case mincore(DiffAddress, length: UInt64)
    case close(DiffFd)
    /// The step, plus the outcome the uapi reference documents; checked on the real kernel.
    case expect(DiffStep, DiffOutcome)

    func expecting(_ outcome: DiffOutcome) -> DiffStep { .expect(self, outcome) }

    var description: String {
        func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
        switch self {
        case .checkExtension(let cap, let vm): return "CHECK_EXTENSION(\(cap)) on \(vm.map { "vm\($0)" } ?? "/dev/kvm")"
        case .createVM(let n, let type): return "vm\(n) = CREATE_VM(type \(type))"
        case .createGmem(let n, let vm, let size, let flags): return "file\(n) = CREATE_GUEST_MEMFD(\(vm), size \(hex(size)), flags \(hex(flags)))"
        case .createMemfd(let n, let size, let huge):
            return "file\(n) = memfd_create(size \(hex(size))\(huge.map { ", MFD_HUGETLB \(hex($0))" } ?? ""))"
        case .mmap(let n, let fd, let length, let offset, let shared, let huge):
            return "map\(n) = mmap(\(fd.map(\.description) ?? "anon"), \(hex(length)), off \(hex(offset)), \(shared ? "SHARED" : "PRIVATE")\(huge.map { ", HUGETLB \(hex($0))" } ?? ""))"
        case .munmap(let address, let length): return "munmap(\(address), \(hex(length)))"
        case .region(let vm, let slot, let flags, let gpa, let size, let uaddr, let gmem, let offset):
            return "REGION2(vm\(vm), slot \(hex(UInt64(slot))), flags \(hex(UInt64(flags))), gpa \(hex(gpa)), size \(hex(size)), uaddr \(uaddr)\(gmem.map { ", gmem \($0)+\(hex(offset))" } ?? ""))"
        case .fallocate(let fd, let mode, let offset, let length): return "fallocate(\(fd), mode \(hex(UInt64(mode))), \(hex(offset)), \(hex(length)))"
        case .write(let address, let byte, let count): return "write(\(address), \(count) x \(hex(UInt64(byte))))"
        case .read(let address, let count): return "read(\(address), \(count))"
        case .setAttributes(let vm, let address, let size, let attributes, let flags):
            return "SET_MEMORY_ATTRIBUTES(\(vm), \(hex(address)), \(hex(size)), attr \(attributes), flags \(flags))"
        case .gmemConvert(let fd, let offset, let size, let toPrivate):
            return "GMEM_CONVERT_\(toPrivate ? "PRIVATE" : "SHARED")(\(fd), \(hex(offset)), \(hex(size)))"
        case .attributes2(let fd, let offset, let size, let attributes, let flags):
            return "SET_MEMORY_ATTRIBUTES2(\(fd), \(hex(offset)), \(hex(size)), attr \(attributes), flags \(flags))"
        case .madvise(let address, let length, let advice): return "madvise(\(address), \(hex(length)), \(advice))"
        case .mincore(let address, let length): return "mincore(\(address), \(hex(length)))"
        case .close(let fd): return "close(\(fd))"
        case .expect(let step, _): return step.description
        }
    }
}

/// What one step did: success (with its value where it has one) or its failure.
enum DiffOutcome: Sendable, Hashable, CustomStringConvertible {
    case ok
    case value(Int64)
    /// Bytes read, run-length encoded (lossless).
    case bytes(String)
    case failed(KernelError.Failure)

    static func errno(_ value: Errno) -> DiffOutcome { .failed(.errno(value)) }
    static let sigbus = DiffOutcome.failed(.sigbus)
    static let einval = errno(.einval), ebadf = errno(.ebadf), enotty = errno(.enotty), enodev = errno(.enodev)
    static let eexist = errno(.eexist), eopnotsupp = errno(.eopnotsupp), efault = errno(.efault)
    static let enomem = errno(.enomem)

    /// Bytes read, as "N x 0xBB" runs.
    static func readBytes(_ bytes: [UInt8]) -> DiffOutcome {
        var runs: [String] = []
        var index = 0
        while index < bytes.count {
            var end = index + 1
            while end < bytes.count && bytes[end] == bytes[index] { end += 1 }
            runs.append("\(end - index)x\(String(bytes[index], radix: 16))")
            index = end
        }
        return .bytes(runs.isEmpty ? "empty" : runs.joined(separator: " "))
    }

    /// Pattern of a read that returns `count` bytes of `byte`.
    static func filled(_ byte: UInt8, _ count: Int) -> DiffOutcome { readBytes([UInt8](repeating: byte, count: count)) }

    var description: String {
        switch self {
        case .ok: return "ok"
        case .value(let value): return "= \(value)"
        case .bytes(let text): return text.count > 60 ? String(text.prefix(57)) + "..." : text
        case .failed(.errno(let value)): return value.name
        case .failed(.sigbus): return "SIGBUS"
        }
    }
}

/// A named sequence of steps.
struct DiffSequence: Sendable, CustomStringConvertible {
    var name: String
    var steps: [DiffStep]
    var description: String { name }
}

/// Runs a sequence on one kernel, keeping the symbolic tables, and releases everything it opened.
final class DiffRunner {
    let kernel: KernelInterface
    let deviceFd: Int32
    /// Never open on either kernel: the simulator numbers from 1000 upwards and never reuses.
    static let invalidFd: Int32 = 987_654

    private var vms: [Int: Int32] = [:]
    private var files: [Int: Int32] = [:]
    private var mappings: [Int: (address: UInt64, length: UInt64)] = [:]
    /// Mappings that a step unmapped (in part or whole): left out of the end-state probe.
    private var touchedMappings: Set<Int> = []
    private var closed: Set<Int32> = []
    private var opened: [Int32] = []

    init(kernel: KernelInterface, deviceFd: Int32) {
        self.kernel = kernel
        self.deviceFd = deviceFd
    }

    /// Every step's outcome, then one `mincore` per intact mapping (the end state).
    func run(_ steps: [DiffStep]) -> [(label: String, outcome: DiffOutcome)] {
        var results = steps.map { (label: $0.description, outcome: perform($0)) }
        for index in mappings.keys.sorted() where !touchedMappings.contains(index) {
            let mapping = mappings[index]!
            let outcome = capture { () throws(KernelError) in DiffOutcome.value(Int64(try kernel.residentPages(address: mapping.address, length: mapping.length))) }
            results.append((label: "end: resident pages of map\(index)", outcome: outcome))
        }
        return results
    }

    /// Unmaps every mapping and closes every fd the sequence opened and did not close.
    func release() {
        for mapping in mappings.values { try? kernel.munmap(address: mapping.address, length: mapping.length) }
        for fd in opened.reversed() where !closed.contains(fd) { try? kernel.close(fd) }
        mappings = [:]
        opened = []
    }

    private func fd(_ symbol: DiffFd) -> Int32 {
        switch symbol {
        case .vm(let n): return vms[n] ?? Self.invalidFd
        case .file(let n): return files[n] ?? Self.invalidFd
        case .kvm: return deviceFd
        case .invalid: return Self.invalidFd
        }
    }

    private func address(_ symbol: DiffAddress) -> UInt64 {
        switch symbol {
        case .mapping(let n, let offset): return (mappings[n]?.address ?? 0) + offset
        case .zero: return 0
        }
    }

    private func capture(_ body: () throws(KernelError) -> DiffOutcome) -> DiffOutcome {
        do { return try body() } catch { return .failed(error.failure) }
    }

    private func opened(_ fd: Int32) -> Int32 {
        opened.append(fd)
        closed.remove(fd)
        return fd
    }

    private func perform(_ step: DiffStep) -> DiffOutcome {
        let kernel = self.kernel
        switch step {
        case .expect(let inner, _):
            return perform(inner)
        case .checkExtension(let cap, let vm):
            return capture { () throws(KernelError) in .value(try kernel.checkExtension(cap, vm: vm.map { fd(.vm($0)) })) }
        case .createVM(let n, let type):
            return capture { () throws(KernelError) in
                vms[n] = opened(try kernel.createVM(type: type))
                return .ok
            }
        case .createGmem(let n, let vm, let size, let flags):
            return capture { () throws(KernelError) in
                files[n] = opened(try kernel.createGuestMemfd(vm: fd(vm), size: size, flags: flags))
                return .ok
            }
        case .createMemfd(let n, let size, let huge):
            return capture { () throws(KernelError) in
                files[n] = opened(try kernel.createMemfd(name: "gmemctl-kvmtests-diff", size: size, hugePageSize: huge))
                return .ok
            }
        case .mmap(let n, let file, let length, let offset, let shared, let huge):
            return capture { () throws(KernelError) in
                let address = try kernel.mmap(fd: file.map { fd($0) }, length: length, offset: offset, shared: shared, hugePageSize: huge)
                mappings[n] = (address, length)
                return .ok
            }
        case .munmap(let symbol, let length):
            if case .mapping(let n, _) = symbol { touchedMappings.insert(n) }
            return capture { () throws(KernelError) in
                try kernel.munmap(address: address(symbol), length: length)
                return .ok
            }
        case .region(let vm, let slot, let flags, let gpa, let size, let uaddr, let gmem, let offset):
            let region = MemoryRegion2(slot: slot, flags: flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: address(uaddr),
                                       guestMemfdOffset: offset, guestMemfd: gmem.map { UInt32(bitPattern: fd($0)) } ?? 0)
            return capture { () throws(KernelError) in
                try kernel.setUserMemoryRegion2(vm: fd(.vm(vm)), region)
                return .ok
            }
        case .fallocate(let file, let mode, let offset, let length):
            return capture { () throws(KernelError) in
                try kernel.fallocate(fd: fd(file), mode: mode, offset: offset, length: length)
                return .ok
            }
        case .write(let symbol, let byte, let count):
            return capture { () throws(KernelError) in
                try kernel.write(address: address(symbol), bytes: [UInt8](repeating: byte, count: count))
                return .ok
            }
        case .read(let symbol, let count):
            return capture { () throws(KernelError) in .readBytes(try kernel.read(address: address(symbol), count: count)) }
        case .setAttributes(let vm, let at, let size, let attributes, let flags):
            return capture { () throws(KernelError) in
                try kernel.setMemoryAttributes(vm: fd(vm), address: at, size: size, attributes: attributes, flags: flags)
                return .ok
            }
        case .gmemConvert(let file, let offset, let size, let toPrivate):
            return capture { () throws(KernelError) in
                try kernel.gmemConvert(gmem: fd(file), offset: offset, size: size, toPrivate: toPrivate)
                return .ok
            }
        case .attributes2(let file, let offset, let size, let attributes, let flags):
            return capture { () throws(KernelError) in
                try kernel.setMemoryAttributes2(gmem: fd(file), offset: offset, size: size, attributes: attributes, flags: flags)
                return .ok
            }
        case .madvise(let symbol, let length, let advice):
            return capture { () throws(KernelError) in
                try kernel.madvise(address: address(symbol), length: length, advice: advice)
                return .ok
            }
        case .mincore(let symbol, let length):
            return capture { () throws(KernelError) in .value(Int64(try kernel.residentPages(address: address(symbol), length: length))) }
        case .close(let symbol):
            let number = fd(symbol)
            return capture { () throws(KernelError) in
                try kernel.close(number)
                closed.insert(number)
                return .ok
            }
        }
    }
}

/// The comparison of one sequence on both kernels.
struct DiffReport {
    struct Row {
        var index: Int
        var label: String
        var kernel: DiffOutcome
        var simulator: DiffOutcome
        var documented: DiffOutcome?
        var matches: Bool { kernel == simulator }
        var meetsDocumentation: Bool { documented.map { $0 == kernel } ?? true }
    }

    var name: String
    var rows: [Row]

    var mismatches: [Row] { rows.filter { !$0.matches } }
    var documentationDeviations: [Row] { rows.filter { !$0.meetsDocumentation } }

    /// This machine's kernel profile, with this machine's hugetlb pools laid over it: which huge page sizes
    /// exist (a CPU property: 1 GiB needs pdpe1gb) and how many pages are free are facts of the host, not
    /// of the kernel generation, so the profile cannot know them. Read once per comparison.
    static var simulatedMachine: Capabilities {
        var capabilities = Profiles.linux618PVM
        let pools = HugepagePools.read(directory: HugepagePools.defaultDirectory)
        if !pools.isEmpty {
            capabilities.hugePageSizes = pools.keys.sorted()
            capabilities.hugePagesFree = pools
        }
        return capabilities
    }

    /// Runs `sequence` on the real kernel and on a fresh simulator of this machine's profile.
    static func compare(_ sequence: DiffSequence) throws -> DiffReport {
        let real = try KVMKernel()
        let realRunner = DiffRunner(kernel: real, deviceFd: real.systemFd)
        let realResults = realRunner.run(sequence.steps)
        realRunner.release()

        let simulated = SimulatedKernel(capabilities: simulatedMachine)
        let simRunner = DiffRunner(kernel: simulated, deviceFd: simulated.deviceDescriptor)
        let simResults = simRunner.run(sequence.steps)
        simRunner.release()

        var documented: [DiffOutcome?] = sequence.steps.map { if case .expect(_, let outcome) = $0 { return outcome } else { return nil } }
        documented += [DiffOutcome?](repeating: nil, count: max(0, realResults.count - documented.count))
        var rows: [Row] = []
        for index in 0..<max(realResults.count, simResults.count) {
            let realRow = index < realResults.count ? realResults[index] : nil
            let simRow = index < simResults.count ? simResults[index] : nil
            rows.append(Row(index: index + 1, label: realRow?.label ?? simRow?.label ?? "?",
                            kernel: realRow?.outcome ?? .bytes("(no step)"), simulator: simRow?.outcome ?? .bytes("(no step)"),
                            documented: index < documented.count ? documented[index] : nil))
        }
        return DiffReport(name: sequence.name, rows: rows)
    }

    /// The step-by-step table: every step, both outcomes, the documented one, and a marker on each difference.
    var table: String {
        func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
        let labelWidth = min(100, rows.map(\.label.count).max() ?? 10)
        var lines = ["sequence \(name):",
                     "  #   \(pad("step", labelWidth))  \(pad("kernel", 22))  \(pad("simulator", 22))  documented"]
        for row in rows {
            let marker = !row.matches ? "<<< MISMATCH" : (!row.meetsDocumentation ? "<<< kernel differs from kvm-uapi.md" : "")
            lines.append("  \(pad(String(row.index), 3)) \(pad(row.label, labelWidth))  \(pad(row.kernel.description, 22))  "
                         + "\(pad(row.simulator.description, 22))  \(pad(row.documented?.description ?? "", 10)) \(marker)")
        }
        return lines.joined(separator: "\n")
    }
}
