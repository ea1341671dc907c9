import GmemCore
import GmemKVM
import GmemSimulator

/// The steps of a conformance case, as data: calls of `KernelInterface` with symbolic fds and addresses, so that
/// one case runs unchanged on `/dev/kvm` and on the simulator of any profile. A step may carry the outcome its
/// rule documents (`expecting`); `StepRunner` performs the steps on one kernel and records what each did.

/// A file descriptor, symbolically: the same sequence resolves to different numbers on each kernel.
public enum ConformanceFd: Sendable, Hashable, CustomStringConvertible {
    /// The n-th VM created by the sequence.
    case vm(Int)
    /// The n-th file (guest_memfd or memfd) created by the sequence.
    case file(Int)
    /// The `/dev/kvm` fd of the kernel.
    case kvm
    /// A number that is open on neither kernel (EBADF).
    case invalid

    public var description: String {
        switch self {
        case .vm(let n): return "vm\(n)"
        case .file(let n): return "file\(n)"
        case .kvm: return "/dev/kvm"
        case .invalid: return "badfd"
        }
    }
}

/// A host address, symbolically.
public enum ConformanceAddress: Sendable, Hashable, CustomStringConvertible {
    /// Mapping n (from an `.mmap` step) plus a byte offset.
    case mapping(Int, UInt64)
    /// Address 0 (`userspace_addr = 0`).
    case zero

    public var description: String {
        switch self {
        case .mapping(let n, let offset): return offset == 0 ? "map\(n)" : "map\(n)+0x\(String(offset, radix: 16))"
        case .zero: return "0"
        }
    }
}

/// One call. Creating steps name the symbolic index they define.
public indirect enum ConformanceStep: Sendable, Hashable, CustomStringConvertible {
    case checkExtension(UInt32, vm: Int?)
    case createVM(Int, type: UInt64)
    case createGmem(Int, vm: ConformanceFd, size: UInt64, flags: UInt64)
    case createMemfd(Int, size: UInt64, hugePageSize: UInt64? = nil)
    /// `fd == nil`: anonymous memory.
    case mmap(
        Int, fd: ConformanceFd?, length: UInt64, offset: UInt64 = 0, shared: Bool = true, hugePageSize: UInt64? = nil)
    case munmap(ConformanceAddress, length: UInt64)
    /// `KVM_SET_USER_MEMORY_REGION2`; `gmem` is written into `guest_memfd` (as its fd number).
    case region(
        vm: Int, slot: UInt32, flags: UInt32, gpa: UInt64, size: UInt64, uaddr: ConformanceAddress,
        gmem: ConformanceFd? = nil,
        offset: UInt64 = 0)
    case fallocate(ConformanceFd, mode: Int32, offset: UInt64, length: UInt64)
    /// Writes `count` bytes of `byte`.
    case write(ConformanceAddress, byte: UInt8, count: Int)
    case read(ConformanceAddress, count: Int)
    case setAttributes(vm: ConformanceFd, address: UInt64, size: UInt64, attributes: UInt64, flags: UInt64 = 0)
    case gmemConvert(ConformanceFd, offset: UInt64, size: UInt64, toPrivate: Bool)
    case attributes2(ConformanceFd, offset: UInt64, size: UInt64, attributes: UInt64, flags: UInt64 = 0)
    case madvise(ConformanceAddress, length: UInt64, advice: Int32)
    case mincore(ConformanceAddress, length: UInt64)
    case close(ConformanceFd)
    /// The step, plus the outcome the uapi reference documents; checked on the real kernel.
    case expect(ConformanceStep, ConformanceOutcome)

    public func expecting(_ outcome: ConformanceOutcome) -> ConformanceStep { .expect(self, outcome) }

    public var description: String {
        func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
        switch self {
        case .checkExtension(let cap, let vm): return "CHECK_EXTENSION(\(cap)) on \(vm.map { "vm\($0)" } ?? "/dev/kvm")"
        case .createVM(let n, let type): return "vm\(n) = CREATE_VM(type \(type))"
        case .createGmem(let n, let vm, let size, let flags):
            return "file\(n) = CREATE_GUEST_MEMFD(\(vm), size \(hex(size)), flags \(hex(flags)))"
        case .createMemfd(let n, let size, let huge):
            return "file\(n) = memfd_create(size \(hex(size))\(huge.map { ", MFD_HUGETLB \(hex($0))" } ?? ""))"
        case .mmap(let n, let fd, let length, let offset, let shared, let huge):
            return
                "map\(n) = mmap(\(fd.map(\.description) ?? "anon"), \(hex(length)), off \(hex(offset)), \(shared ? "SHARED" : "PRIVATE")\(huge.map { ", HUGETLB \(hex($0))" } ?? ""))"
        case .munmap(let address, let length): return "munmap(\(address), \(hex(length)))"
        case .region(let vm, let slot, let flags, let gpa, let size, let uaddr, let gmem, let offset):
            return
                "REGION2(vm\(vm), slot \(hex(UInt64(slot))), flags \(hex(UInt64(flags))), gpa \(hex(gpa)), size \(hex(size)), uaddr \(uaddr)\(gmem.map { ", gmem \($0)+\(hex(offset))" } ?? ""))"
        case .fallocate(let fd, let mode, let offset, let length):
            return "fallocate(\(fd), mode \(hex(UInt64(mode))), \(hex(offset)), \(hex(length)))"
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
public enum ConformanceOutcome: Sendable, Hashable, CustomStringConvertible {
    case ok
    case value(Int64)
    /// Bytes read, run-length encoded (lossless).
    case bytes(String)
    case failed(KernelError.Failure)

    public static func errno(_ value: Errno) -> ConformanceOutcome { .failed(.errno(value)) }
    public static let sigbus = ConformanceOutcome.failed(.sigbus)
    public static let einval = errno(.einval), ebadf = errno(.ebadf), enotty = errno(.enotty), enodev = errno(.enodev)
    public static let eexist = errno(.eexist), eopnotsupp = errno(.eopnotsupp), efault = errno(.efault)
    public static let enomem = errno(.enomem)

    /// Bytes read, as "N x 0xBB" runs.
    public static func readBytes(_ bytes: [UInt8]) -> ConformanceOutcome {
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
    public static func filled(_ byte: UInt8, _ count: Int) -> ConformanceOutcome {
        readBytes([UInt8](repeating: byte, count: count))
    }

    public var description: String {
        switch self {
        case .ok: return "ok"
        case .value(let value): return "= \(value)"
        case .bytes(let text): return text.count > 60 ? String(text.prefix(57)) + "..." : text
        case .failed(.errno(let value)): return value.name
        case .failed(.sigbus): return "SIGBUS"
        }
    }
}

/// Runs a sequence on one kernel, keeping the symbolic tables, and releases everything it opened.
public final class StepRunner {
    public let kernel: KernelInterface
    public let deviceFd: Int32
    /// Never open on either kernel: the simulator numbers from 1000 upwards and never reuses.
    public static let invalidFd: Int32 = 987_654

    private var vms: [Int: Int32] = [:]
    private var files: [Int: Int32] = [:]
    private var mappings: [Int: (address: UInt64, length: UInt64)] = [:]
    /// Mappings that a step unmapped (in part or whole): left out of the end-state probe.
    private var touchedMappings: Set<Int> = []
    private var closed: Set<Int32> = []
    private var opened: [Int32] = []

    public init(kernel: KernelInterface, deviceFd: Int32) {
        self.kernel = kernel
        self.deviceFd = deviceFd
    }

    /// Every step's outcome, then one `mincore` per intact mapping (the end state).
    public func run(_ steps: [ConformanceStep]) -> [(label: String, outcome: ConformanceOutcome)] {
        var results = steps.map { (label: $0.description, outcome: perform($0)) }
        for (index, mapping) in mappings.sorted(by: { $0.key < $1.key }) where !touchedMappings.contains(index) {
            let outcome = capture { () throws(KernelError) in
                ConformanceOutcome.value(
                    Int64(try kernel.residentPages(address: mapping.address, length: mapping.length)))
            }
            results.append((label: "end: resident pages of map\(index)", outcome: outcome))
        }
        return results
    }

    /// Unmaps every mapping and closes every fd the sequence opened and did not close.
    public func release() {
        for mapping in mappings.values { try? kernel.munmap(address: mapping.address, length: mapping.length) }
        for fd in opened.reversed() where !closed.contains(fd) { try? kernel.close(fd) }
        mappings = [:]
        opened = []
    }

    private func fd(_ symbol: ConformanceFd) -> Int32 {
        switch symbol {
        case .vm(let n): return vms[n] ?? Self.invalidFd
        case .file(let n): return files[n] ?? Self.invalidFd
        case .kvm: return deviceFd
        case .invalid: return Self.invalidFd
        }
    }

    private func address(_ symbol: ConformanceAddress) -> UInt64 {
        switch symbol {
        case .mapping(let n, let offset): return (mappings[n]?.address ?? 0) + offset
        case .zero: return 0
        }
    }

    private func capture(_ body: () throws(KernelError) -> ConformanceOutcome) -> ConformanceOutcome {
        do { return try body() } catch { return .failed(error.failure) }
    }

    private func opened(_ fd: Int32) -> Int32 {
        opened.append(fd)
        closed.remove(fd)
        return fd
    }

    private func perform(_ step: ConformanceStep) -> ConformanceOutcome {
        let kernel = self.kernel
        switch step {
        case .expect(let inner, _):
            return perform(inner)
        case .checkExtension(let cap, let vm):
            return capture { () throws(KernelError) in
                .value(try kernel.checkExtension(cap, vm: vm.map { fd(.vm($0)) }))
            }
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
                files[n] = opened(try kernel.createMemfd(name: "gmemctl-conformance", size: size, hugePageSize: huge))
                return .ok
            }
        case .mmap(let n, let file, let length, let offset, let shared, let huge):
            return capture { () throws(KernelError) in
                let address = try kernel.mmap(
                    fd: file.map { fd($0) }, length: length, offset: offset, shared: shared, hugePageSize: huge)
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
            let region = MemoryRegion2(
                slot: slot, flags: flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: address(uaddr),
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
            return capture { () throws(KernelError) in
                .readBytes(try kernel.read(address: address(symbol), count: count))
            }
        case .setAttributes(let vm, let at, let size, let attributes, let flags):
            return capture { () throws(KernelError) in
                try kernel.setMemoryAttributes(
                    vm: fd(vm), address: at, size: size, attributes: attributes, flags: flags)
                return .ok
            }
        case .gmemConvert(let file, let offset, let size, let toPrivate):
            return capture { () throws(KernelError) in
                try kernel.gmemConvert(gmem: fd(file), offset: offset, size: size, toPrivate: toPrivate)
                return .ok
            }
        case .attributes2(let file, let offset, let size, let attributes, let flags):
            return capture { () throws(KernelError) in
                try kernel.setMemoryAttributes2(
                    gmem: fd(file), offset: offset, size: size, attributes: attributes, flags: flags)
                return .ok
            }
        case .madvise(let symbol, let length, let advice):
            return capture { () throws(KernelError) in
                try kernel.madvise(address: address(symbol), length: length, advice: advice)
                return .ok
            }
        case .mincore(let symbol, let length):
            return capture { () throws(KernelError) in
                .value(Int64(try kernel.residentPages(address: address(symbol), length: length)))
            }
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
