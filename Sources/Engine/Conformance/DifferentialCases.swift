import GmemCore
import GmemKVM
import GmemSimulator

/// The differential cases: call sequences whose every step must end the same way on a kernel and on the
/// simulator of its profile; `expecting` adds the outcome the rule documents (so that the two cannot agree on a
/// wrong answer). They were written against Linux 6.18 and checked on its PVM variant; each names the profiles
/// whose kernels share the rule.
public enum DifferentialCases {
    static let page: UInt64 = 4096
    static let mib: UInt64 = 1 << 20
    static let gib: UInt64 = 1 << 30
    static let gpa4G: UInt64 = 0x1_0000_0000

    // guest_memfd creation flags, memslot flags, fallocate modes, madvise advice (Linux values).
    static let mmapFlag: UInt64 = 1, initShared: UInt64 = 2, shared: UInt64 = 3
    static let gmemSlot: UInt32 = 4, logDirty: UInt32 = 1, readonly: UInt32 = 2
    static let keep: Int32 = 0x01, punch: Int32 = 0x03, punchOnly: Int32 = 0x02, zeroRange: Int32 = 0x10
    static let dontneed: Int32 = 4, remove: Int32 = 9, populateRead: Int32 = 22, populateWrite: Int32 = 23,
        collapse: Int32 = 25

    /// A default VM (vm0) with an MMAP|INIT_SHARED guest_memfd (file0) of `size`, mapped shared (map0).
    static func sharedGuest(size: UInt64 = 16 * page) -> [ConformanceStep] {
        [
            .createVM(0, type: 0), .createGmem(0, vm: .vm(0), size: size, flags: shared),
            .mmap(0, fd: .file(0), length: size),
        ]
    }

    /// A gmem slot of vm0 bound to file0.
    static func bind(
        slot: UInt32 = 0, gpa: UInt64 = gpa4G, size: UInt64, offset: UInt64 = 0,
        uaddr: ConformanceAddress = .mapping(0, 0),
        gmem: ConformanceFd = .file(0), flags: UInt32 = gmemSlot, vm: Int = 0
    ) -> ConformanceStep {
        .region(vm: vm, slot: slot, flags: flags, gpa: gpa, size: size, uaddr: uaddr, gmem: gmem, offset: offset)
    }

    static func delete(slot: UInt32, vm: Int = 0) -> ConformanceStep {
        .region(vm: vm, slot: slot, flags: 0, gpa: 0, size: 0, uaddr: .zero)
    }

    public static let all: [ConformanceCase] =
        capabilities + creation + fileOperations + memslots + conversions + hostMemory

    // MARK: - Capabilities and VM creation

    static let probedCapabilities: [UInt32] = [10, 231, 232, 233, 234, 235, 236, 240, 241, 242, 244, 250, 9_999]

    static let capabilities: [ConformanceCase] = [
        ConformanceCase(
            id: "uapi/capabilities-system-scope", rule: "capabilities at system scope",
            source: .kernel(file: "arch/x86/kvm/x86.c", function: "kvm_vm_ioctl_check_extension"),
            profiles: ["linux-6.18-pvm"], requirements: [.profileCapabilities],
            steps: probedCapabilities.map { .checkExtension($0, vm: nil) } + [
                .checkExtension(233, vm: nil).expecting(.value(0)),
                .checkExtension(235, vm: nil).expecting(.value(1)),
                .checkExtension(236, vm: nil).expecting(.value(0)),
                .checkExtension(244, vm: nil).expecting(.value(3)),
                .checkExtension(10, vm: nil).expecting(.value(32764)),
            ]),
        ConformanceCase(
            id: "uapi/capabilities-vm-scope", rule: "capabilities at VM scope",
            source: .kernel(file: "virt/kvm/kvm_main.c", function: "kvm_vm_ioctl_check_extension_generic"),
            profiles: ["linux-6.18-pvm"], requirements: [.profileCapabilities],
            steps: [.createVM(0, type: 0)] + probedCapabilities.map { .checkExtension($0, vm: 0) } + [
                .checkExtension(244, vm: 0).expecting(.value(3)),
                .checkExtension(233, vm: 0).expecting(.value(0)),
                .checkExtension(234, vm: 0).expecting(.value(1)),
                // A closed VM fd answers EBADF.
                .close(.vm(0)),
                .checkExtension(231, vm: 0).expecting(.ebadf),
            ]),
        ConformanceCase(
            id: "uapi/vm-types", rule: "VM types 0-5, 31, 32 and 64",
            source: .kernel(file: "arch/x86/kvm/x86.c", function: "kvm_arch_init_vm"),
            profiles: ["linux-6.18-pvm"],
            steps: [
                .createVM(0, type: 0).expecting(.ok),
                .createVM(1, type: 1).expecting(.einval),
                .createVM(2, type: 2).expecting(.einval),
                .createVM(3, type: 3).expecting(.einval),
                .createVM(4, type: 4).expecting(.einval),
                .createVM(5, type: 5).expecting(.einval),
                .createVM(6, type: 31).expecting(.einval),
                .createVM(7, type: 32).expecting(.einval),
                .createVM(8, type: 64).expecting(.einval),
                .createVM(9, type: 0).expecting(.ok),
                .checkExtension(231, vm: 9).expecting(.value(1)),
            ]),
    ]

    // MARK: - KVM_CREATE_GUEST_MEMFD

    static let creation: [ConformanceCase] = [
        ConformanceCase(
            id: "uapi/gmem-create-flags", rule: "guest_memfd flags 0..3 accepted, 4, 7, 1<<63 rejected",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_create"),
            profiles: ProfileGroup.upstreamFlags,
            steps: [
                .createVM(0, type: 0),
                .createGmem(0, vm: .vm(0), size: page, flags: 0).expecting(.ok),
                .createGmem(1, vm: .vm(0), size: page, flags: 1).expecting(.ok),
                .createGmem(2, vm: .vm(0), size: page, flags: 2).expecting(.ok),
                .createGmem(3, vm: .vm(0), size: page, flags: 3).expecting(.ok),
                .createGmem(4, vm: .vm(0), size: page, flags: 4).expecting(.einval),
                .createGmem(5, vm: .vm(0), size: page, flags: 7).expecting(.einval),
                .createGmem(6, vm: .vm(0), size: page, flags: 1 << 63).expecting(.einval),
                .createGmem(7, vm: .vm(0), size: page, flags: 1 << 8).expecting(.einval),
                // INIT_SHARED without MMAP is accepted; the file still cannot be mapped.
                .mmap(0, fd: .file(2), length: page).expecting(.enodev),
                .mmap(1, fd: .file(3), length: page).expecting(.ok),
                .read(.mapping(1, 0), count: 8).expecting(.filled(0, 8)),
            ]),
        ConformanceCase(
            id: "uapi/gmem-create-sizes", rule: "guest_memfd sizes 0, 4095, 4096, 4097, 8192, 1 GiB, 1<<63",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_create"),
            profiles: ProfileGroup.upstreamFlags,
            steps: [
                .createVM(0, type: 0),
                .createGmem(0, vm: .vm(0), size: 0, flags: 0).expecting(.einval),
                .createGmem(1, vm: .vm(0), size: 4095, flags: 0).expecting(.einval),
                .createGmem(2, vm: .vm(0), size: 4096, flags: 0).expecting(.ok),
                .createGmem(3, vm: .vm(0), size: 4097, flags: 0).expecting(.einval),
                .createGmem(4, vm: .vm(0), size: 8192, flags: shared).expecting(.ok),
                .createGmem(5, vm: .vm(0), size: gib, flags: shared).expecting(.ok),
                .createGmem(6, vm: .vm(0), size: 1 << 63, flags: 0).expecting(.einval),
                // The 1 GiB file can be mapped whole; nothing is resident until touched.
                .mmap(0, fd: .file(5), length: gib),
                .mincore(.mapping(0, 0), length: gib).expecting(.value(0)),
                .write(.mapping(0, gib - page), byte: 0x11, count: 16),
                .read(.mapping(0, gib - page), count: 16).expecting(.filled(0x11, 16)),
            ]),
        ConformanceCase(
            id: "uapi/gmem-create-wrong-fd",
            rule: "guest_memfd requested on /dev/kvm, a memfd, a gmem, a closed and a bad fd",
            source: .kernel(file: "virt/kvm/kvm_main.c", function: "kvm_vm_ioctl"),
            profiles: ProfileGroup.upstreamFlags,
            steps: [
                .createVM(0, type: 0),
                .createGmem(0, vm: .kvm, size: page, flags: 0).expecting(.einval),
                .createMemfd(1, size: page),
                .createGmem(2, vm: .file(1), size: page, flags: 0).expecting(.enotty),
                .createGmem(3, vm: .vm(0), size: page, flags: 0),
                .createGmem(4, vm: .file(3), size: page, flags: 0).expecting(.enotty),
                .createGmem(5, vm: .invalid, size: page, flags: 0).expecting(.ebadf),
                .createVM(1, type: 0),
                .close(.vm(1)),
                .createGmem(6, vm: .vm(1), size: page, flags: 0).expecting(.ebadf),
            ]),
        ConformanceCase(
            id: "uapi/gmem-holds-vm", rule: "a VM outlives its fd while a guest_memfd is open",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_release"),
            profiles: ProfileGroup.upstreamFlags,
            steps: [
                .createVM(0, type: 0),
                .createGmem(0, vm: .vm(0), size: 4 * page, flags: shared),
                .close(.vm(0)).expecting(.ok),
                .fallocate(.file(0), mode: keep, offset: 0, length: 4 * page).expecting(.ok),
                .mmap(0, fd: .file(0), length: 4 * page).expecting(.ok),
                .write(.mapping(0, page), byte: 0x5a, count: 8),
                .read(.mapping(0, page), count: 8).expecting(.filled(0x5a, 8)),
                .close(.file(0)).expecting(.ok),
                // The mapping keeps the file (and its pages) alive.
                .read(.mapping(0, page), count: 8).expecting(.filled(0x5a, 8)),
                .close(.file(0)).expecting(.ebadf),
            ]),
    ]

    // MARK: - guest_memfd file operations

    static let fileOperations: [ConformanceCase] = [
        ConformanceCase(
            id: "uapi/gmem-fallocate-modes", rule: "fallocate modes on a guest_memfd",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_fallocate"),
            profiles: ProfileGroup.upstreamFlags,
            steps: [
                .createVM(0, type: 0),
                .createGmem(0, vm: .vm(0), size: 4 * page, flags: 0),
                .fallocate(.file(0), mode: 0, offset: 0, length: page).expecting(.eopnotsupp),
                .fallocate(.file(0), mode: punchOnly, offset: 0, length: page).expecting(.eopnotsupp),
                .fallocate(.file(0), mode: zeroRange, offset: 0, length: page).expecting(.eopnotsupp),
                .fallocate(.file(0), mode: zeroRange | keep, offset: 0, length: page).expecting(.eopnotsupp),
                .fallocate(.file(0), mode: 0x08, offset: 0, length: page),  // COLLAPSE_RANGE
                .fallocate(.file(0), mode: 0x20, offset: 0, length: page),  // INSERT_RANGE
                .fallocate(.file(0), mode: 0x40 | keep, offset: 0, length: page),  // UNSHARE_RANGE
                .fallocate(.file(0), mode: 0x100, offset: 0, length: page),  // unknown bit
                .fallocate(.file(0), mode: keep, offset: 0, length: 4 * page).expecting(.ok),
                .fallocate(.file(0), mode: punch, offset: 0, length: page).expecting(.ok),
                .fallocate(.file(0), mode: keep, offset: 0, length: page).expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/gmem-fallocate-bounds", rule: "fallocate alignment, EOF and beyond on a guest_memfd",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_fallocate"),
            profiles: ProfileGroup.upstreamFlags,
            steps: sharedGuest(size: 4 * page) + [
                .fallocate(.file(0), mode: keep, offset: 1, length: page).expecting(.einval),
                .fallocate(.file(0), mode: keep, offset: 0, length: page - 1).expecting(.einval),
                .fallocate(.file(0), mode: keep, offset: 0, length: page + 1).expecting(.einval),
                .fallocate(.file(0), mode: punch, offset: page - 1, length: page).expecting(.einval),
                .fallocate(.file(0), mode: punch, offset: 0, length: page - 1).expecting(.einval),
                .fallocate(.file(0), mode: punch, offset: 0, length: 0).expecting(.einval),
                .fallocate(.file(0), mode: keep, offset: 0, length: 0).expecting(.einval),
                .fallocate(.file(0), mode: keep, offset: 4 * page, length: page).expecting(.einval),
                .fallocate(.file(0), mode: keep, offset: 3 * page, length: 2 * page).expecting(.einval),
                .fallocate(.file(0), mode: keep, offset: 5 * page, length: page).expecting(.einval),
                .fallocate(.file(0), mode: keep, offset: 1 << 62, length: 1 << 62),
                .fallocate(.file(0), mode: keep, offset: UInt64(Int64.max) - page + 1, length: page),
                .fallocate(.file(0), mode: punch, offset: 4 * page, length: page).expecting(.ok),
                .fallocate(.file(0), mode: punch, offset: 5 * page, length: page).expecting(.ok),
                .fallocate(.file(0), mode: punch, offset: 3 * page, length: 4 * page).expecting(.ok),
                .mincore(.mapping(0, 0), length: 4 * page).expecting(.value(0)),
                // fallocate allocates folios that are not up to date until a fault: mincore does not count them.
                .fallocate(.file(0), mode: keep, offset: page, length: 2 * page).expecting(.ok),
                .mincore(.mapping(0, 0), length: 4 * page).expecting(.value(0)),
                .fallocate(.file(0), mode: keep, offset: 0, length: 4 * page).expecting(.ok),
                .read(.mapping(0, 0), count: Int(4 * page)).expecting(.filled(0, Int(4 * page))),
                .mincore(.mapping(0, 0), length: 4 * page).expecting(.value(4)),
                .fallocate(.file(0), mode: punch, offset: 3 * page, length: 2 * page).expecting(.ok),
                .mincore(.mapping(0, 0), length: 4 * page).expecting(.value(3)),
            ]),
        ConformanceCase(
            id: "uapi/memfd-fallocate", rule: "fallocate on a memfd, a VM fd and /dev/kvm",
            source: .kernel(file: "mm/shmem.c", function: "shmem_fallocate"),
            profiles: ProfileGroup.upstreamFlags,
            steps: [
                .createVM(0, type: 0),
                .createMemfd(0, size: 4 * page),
                .mmap(0, fd: .file(0), length: 8 * page),
                .fallocate(.file(0), mode: keep, offset: 0, length: 2 * page).expecting(.ok),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(0)),
                .fallocate(.file(0), mode: 0, offset: 4 * page, length: 2 * page).expecting(.ok),  // grows the file
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(0)),
                .read(.mapping(0, 5 * page), count: 4).expecting(.filled(0, 4)),
                .read(.mapping(0, 6 * page), count: 4).expecting(.sigbus),
                .fallocate(.file(0), mode: zeroRange, offset: 0, length: page).expecting(.eopnotsupp),
                .fallocate(.file(0), mode: punchOnly, offset: 0, length: page).expecting(.eopnotsupp),
                .write(.mapping(0, 0), byte: 0x77, count: Int(page)),
                // An unaligned punch zeroes the partial page.
                .fallocate(.file(0), mode: punch, offset: 100, length: 200).expecting(.ok),
                .read(.mapping(0, 0), count: 400).expecting(
                    .readBytes(
                        [UInt8](repeating: 0x77, count: 100) + [UInt8](repeating: 0, count: 200)
                            + [UInt8](repeating: 0x77, count: 100))),
                .fallocate(.file(0), mode: punch, offset: 0, length: page).expecting(.ok),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(1)),
                .fallocate(.vm(0), mode: keep, offset: 0, length: page),
                .fallocate(.kvm, mode: keep, offset: 0, length: page),
                .fallocate(.invalid, mode: keep, offset: 0, length: page).expecting(.ebadf),
            ]),
        ConformanceCase(
            id: "uapi/gmem-mmap", rule: "mmap of a guest_memfd: without MMAP, MAP_PRIVATE, offsets and lengths",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_mmap"),
            profiles: ProfileGroup.upstreamFlags,
            steps: [
                .createVM(0, type: 0),
                .createGmem(0, vm: .vm(0), size: 4 * page, flags: 0),
                .createGmem(1, vm: .vm(0), size: 4 * page, flags: shared),
                .mmap(0, fd: .file(0), length: page).expecting(.enodev),
                .mmap(1, fd: .file(0), length: page, shared: false).expecting(.enodev),
                .mmap(2, fd: .file(1), length: page, shared: false).expecting(.einval),
                .mmap(3, fd: .file(1), length: page, offset: 1),
                .mmap(4, fd: .file(1), length: 0),
                .mmap(5, fd: .file(1), length: page, offset: 2 * page).expecting(.ok),
                .write(.mapping(5, 0), byte: 0x42, count: 8),
                .mmap(6, fd: .file(1), length: 4 * page).expecting(.ok),
                .read(.mapping(6, 2 * page), count: 8).expecting(.filled(0x42, 8)),
                .mmap(7, fd: .vm(0), length: page),
                .mmap(8, fd: .kvm, length: page),
                .mmap(9, fd: .invalid, length: page).expecting(.ebadf),
                .mmap(10, fd: .file(1), length: page, hugePageSize: 2 * mib),
            ]),
        ConformanceCase(
            id: "uapi/gmem-fault-beyond-eof", rule: "mmap beyond EOF, then touch",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_fault_user_mapping"),
            profiles: ProfileGroup.upstreamFlags,
            steps: [
                .createVM(0, type: 0),
                .createGmem(0, vm: .vm(0), size: 2 * page, flags: shared),
                .mmap(0, fd: .file(0), length: 4 * page).expecting(.ok),
                .write(.mapping(0, 0), byte: 0xaa, count: Int(2 * page)).expecting(.ok),
                .read(.mapping(0, 2 * page), count: 1).expecting(.sigbus),
                .write(.mapping(0, 3 * page), byte: 1, count: 1).expecting(.sigbus),
                // An access that starts in range and runs past EOF faults at EOF.
                .write(.mapping(0, 2 * page - 8), byte: 0xbb, count: 16).expecting(.sigbus),
                .read(.mapping(0, 2 * page - 8), count: 8).expecting(.filled(0xbb, 8)),
                .read(.mapping(0, page), count: 8).expecting(.filled(0xaa, 8)),
                .madvise(.mapping(0, 0), length: 4 * page, advice: populateWrite).expecting(.efault),
                .mincore(.mapping(0, 0), length: 4 * page).expecting(.value(2)),
            ]),
        ConformanceCase(
            id: "uapi/gmem-private-to-host", rule: "guest_memfd without INIT_SHARED is private to the host",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_fault_user_mapping"),
            profiles: ProfileGroup.upstreamFlags,
            steps: [
                .createVM(0, type: 0),
                .createGmem(0, vm: .vm(0), size: 4 * page, flags: mmapFlag),
                .mmap(0, fd: .file(0), length: 4 * page).expecting(.ok),
                .read(.mapping(0, 0), count: 1).expecting(.sigbus),
                .write(.mapping(0, page), byte: 1, count: 1).expecting(.sigbus),
                .mincore(.mapping(0, 0), length: 4 * page).expecting(.value(0)),
                .madvise(.mapping(0, 0), length: page, advice: populateRead).expecting(.efault),
                .madvise(.mapping(0, 0), length: page, advice: populateWrite).expecting(.efault),
                .fallocate(.file(0), mode: keep, offset: 0, length: 2 * page).expecting(.ok),
                .mincore(.mapping(0, 0), length: 4 * page).expecting(.value(0)),
                .read(.mapping(0, 0), count: 1).expecting(.sigbus),
                .madvise(.mapping(0, 0), length: page, advice: dontneed).expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/gmem-punch-zeroes", rule: "write, punch, read zeros, rewrite",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_punch_hole"),
            profiles: ProfileGroup.upstreamFlags,
            steps: sharedGuest(size: 4 * page) + [
                .write(.mapping(0, 0), byte: 0xaa, count: Int(4 * page)),
                .mincore(.mapping(0, 0), length: 4 * page).expecting(.value(4)),
                .fallocate(.file(0), mode: punch, offset: page, length: page).expecting(.ok),
                .mincore(.mapping(0, 0), length: 4 * page).expecting(.value(3)),
                .read(.mapping(0, 0), count: Int(4 * page)).expecting(
                    .readBytes(
                        [UInt8](repeating: 0xaa, count: Int(page)) + [UInt8](repeating: 0, count: Int(page))
                            + [UInt8](repeating: 0xaa, count: Int(2 * page)))),
                .mincore(.mapping(0, 0), length: 4 * page).expecting(.value(4)),
                .write(.mapping(0, page + 10), byte: 0x01, count: 3),
                .read(.mapping(0, page + 8), count: 6).expecting(.readBytes([0, 0, 1, 1, 1, 0])),
                .fallocate(.file(0), mode: punch, offset: 0, length: 4 * page).expecting(.ok),
                .mincore(.mapping(0, 0), length: 4 * page).expecting(.value(0)),
                .read(.mapping(0, 3 * page), count: 8).expecting(.filled(0, 8)),
            ]),
        ConformanceCase(
            id: "uapi/gmem-two-mappings", rule: "two mappings of one guest_memfd see the same bytes; munmap",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_mmap"),
            profiles: ProfileGroup.upstreamFlags,
            steps: sharedGuest(size: 4 * page) + [
                .mmap(1, fd: .file(0), length: 2 * page, offset: 2 * page),
                .write(.mapping(0, 2 * page), byte: 0x33, count: 4),
                .read(.mapping(1, 0), count: 4).expecting(.filled(0x33, 4)),
                .munmap(.mapping(1, 0), length: 2 * page).expecting(.ok),
                .read(.mapping(1, 0), count: 4).expecting(.efault),
                .mincore(.mapping(1, 0), length: page).expecting(.enomem),
                .munmap(.mapping(0, page), length: page).expecting(.ok),
                .read(.mapping(0, page), count: 1).expecting(.efault),
                .read(.mapping(0, 2 * page), count: 4).expecting(.filled(0x33, 4)),
                .munmap(.mapping(0, 1), length: page).expecting(.einval),
            ]),
        ConformanceCase(
            id: "uapi/gmem-closed-fd", rule: "guest_memfd read/ioctl-like calls on the wrong objects",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_release"),
            profiles: ProfileGroup.upstreamFlags,
            steps: sharedGuest(size: 2 * page) + [
                .close(.file(0)).expecting(.ok),
                .close(.file(0)).expecting(.ebadf),
                .close(.invalid).expecting(.ebadf),
                .fallocate(.file(0), mode: keep, offset: 0, length: page).expecting(.ebadf),
                // The mapping still holds the file.
                .write(.mapping(0, 0), byte: 9, count: 1).expecting(.ok),
                .read(.mapping(0, 0), count: 1).expecting(.filled(9, 1)),
            ]),
    ]

    // MARK: - KVM_SET_USER_MEMORY_REGION2

    static let memslots: [ConformanceCase] = [
        ConformanceCase(
            id: "uapi/region2-flags",
            rule: "REGION2 flags: GUEST_MEMFD with LOG_DIRTY or READONLY, unknown bits, plain slots",
            source: .kernel(file: "virt/kvm/kvm_main.c", function: "check_memory_region_flags"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                .createMemfd(1, size: 4 * page),
                .mmap(1, fd: .file(1), length: 4 * page),
                bind(size: 16 * page, flags: gmemSlot | logDirty).expecting(.einval),
                bind(size: 16 * page, flags: gmemSlot | readonly).expecting(.einval),
                bind(size: 16 * page, flags: gmemSlot | 8).expecting(.einval),
                .region(vm: 0, slot: 1, flags: 1 << 31, gpa: 0, size: 4 * page, uaddr: .mapping(1, 0)).expecting(
                    .einval),
                .region(vm: 0, slot: 1, flags: logDirty, gpa: 0, size: 4 * page, uaddr: .mapping(1, 0)).expecting(.ok),
                .region(vm: 0, slot: 2, flags: readonly, gpa: 0x10_0000, size: 4 * page, uaddr: .mapping(1, 0))
                    .expecting(.ok),
                .region(
                    vm: 0, slot: 3, flags: logDirty | readonly, gpa: 0x20_0000, size: 4 * page, uaddr: .mapping(1, 0)
                ).expecting(.ok),
                // A non-zero guest_memfd without the flag is ignored.
                .region(vm: 0, slot: 4, flags: 0, gpa: 0x30_0000, size: 4 * page, uaddr: .mapping(1, 0), gmem: .invalid)
                    .expecting(.ok),
                bind(size: 16 * page).expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/region2-alignment", rule: "REGION2 alignment: gpa, size, uaddr, offset; uaddr 0",
            source: .kernel(file: "virt/kvm/kvm_main.c", function: "kvm_set_memory_region"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                bind(gpa: gpa4G + 1, size: 4 * page).expecting(.einval),
                bind(size: 4 * page + 1).expecting(.einval),
                bind(size: page - 1).expecting(.einval),
                bind(size: 4 * page, uaddr: .mapping(0, 1)).expecting(.einval),
                bind(size: 4 * page, offset: 1).expecting(.einval),
                bind(size: 4 * page, offset: page + 8).expecting(.einval),
                bind(size: 4 * page, offset: UInt64.max - page + 1).expecting(.einval),
                bind(gpa: UInt64.max - page + 1, size: 4 * page).expecting(.einval),
                bind(size: 4 * page, uaddr: .zero).expecting(.ok),
                bind(slot: 1, gpa: gpa4G + 4 * page, size: 4 * page, offset: 4 * page, uaddr: .mapping(0, 4 * page))
                    .expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/region2-slot-ids", rule: "REGION2 slot ids and address spaces",
            source: .kernel(file: "virt/kvm/kvm_main.c", function: "kvm_set_memory_region"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                bind(slot: 32764, size: page).expecting(.einval),
                bind(slot: 0xffff, size: page).expecting(.einval),
                bind(slot: 1 << 16, size: page).expecting(.einval),
                bind(slot: 1 << 16 | 3, size: page).expecting(.einval),
                bind(slot: 32763, size: page).expecting(.ok),
                bind(slot: 5, gpa: gpa4G + page, size: page, offset: page, uaddr: .mapping(0, page)).expecting(.ok),
                delete(slot: 32763).expecting(.ok),
                delete(slot: 32764).expecting(.einval),
            ]),
        ConformanceCase(
            id: "uapi/region2-overlap", rule: "REGION2 overlapping guest ranges are EEXIST, adjacent ones are not",
            source: .kernel(file: "virt/kvm/kvm_main.c", function: "kvm_check_memslot_overlap"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                bind(slot: 0, gpa: gpa4G, size: 4 * page).expecting(.ok),
                bind(slot: 1, gpa: gpa4G, size: 4 * page, offset: 4 * page, uaddr: .mapping(0, 4 * page)).expecting(
                    .eexist),
                bind(slot: 1, gpa: gpa4G + 3 * page, size: 4 * page, offset: 4 * page, uaddr: .mapping(0, 4 * page))
                    .expecting(.eexist),
                bind(slot: 1, gpa: gpa4G - page, size: 2 * page, offset: 4 * page, uaddr: .mapping(0, 4 * page))
                    .expecting(.eexist),
                bind(
                    slot: 1, gpa: gpa4G - 8 * page, size: 16 * page - 4 * page, offset: 4 * page,
                    uaddr: .mapping(0, 4 * page)
                ).expecting(.eexist),
                bind(slot: 1, gpa: gpa4G + 4 * page, size: 4 * page, offset: 4 * page, uaddr: .mapping(0, 4 * page))
                    .expecting(.ok),
                bind(slot: 2, gpa: gpa4G - 4 * page, size: 4 * page, offset: 8 * page, uaddr: .mapping(0, 8 * page))
                    .expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/region2-gmem-fd", rule: "REGION2 guest_memfd fd: bad, memfd, VM, /dev/kvm, closed",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_bind"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                .createMemfd(1, size: 16 * page),
                .mmap(1, fd: .file(1), length: 16 * page),
                bind(size: 4 * page, gmem: .invalid).expecting(.ebadf),
                bind(size: 4 * page, uaddr: .mapping(1, 0), gmem: .file(1)).expecting(.einval),
                bind(size: 4 * page, gmem: .vm(0)).expecting(.einval),
                bind(size: 4 * page, gmem: .kvm).expecting(.einval),
                .createGmem(2, vm: .vm(0), size: 4 * page, flags: 0),
                .close(.file(2)),
                bind(size: 4 * page, gmem: .file(2)).expecting(.ebadf),
                bind(size: 4 * page).expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/region2-other-vm-gmem", rule: "REGION2 with another VM's guest_memfd",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_bind"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                .createVM(1, type: 0),
                bind(size: 4 * page, vm: 1).expecting(.einval),
                .createGmem(1, vm: .vm(1), size: 4 * page, flags: shared),
                bind(size: 4 * page, uaddr: .zero, gmem: .file(1)).expecting(.einval),
                bind(size: 4 * page, uaddr: .zero, gmem: .file(1), vm: 1).expecting(.ok),
                bind(size: 4 * page).expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/region2-offset-bounds", rule: "REGION2 offset+size beyond the guest_memfd",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_bind"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                bind(size: 17 * page).expecting(.einval),
                bind(size: 4 * page, offset: 13 * page).expecting(.einval),
                bind(size: page, offset: 16 * page).expecting(.einval),
                bind(size: page, offset: 1 << 62).expecting(.einval),
                bind(size: 4 * page, offset: 12 * page, uaddr: .mapping(0, 12 * page)).expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/region2-gmem-range-twice", rule: "REGION2 the same guest_memfd range twice",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_bind"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                bind(slot: 0, gpa: gpa4G, size: 8 * page).expecting(.ok),
                bind(slot: 1, gpa: 2 * gpa4G, size: 8 * page).expecting(.einval),
                bind(slot: 1, gpa: 2 * gpa4G, size: 4 * page, offset: 7 * page, uaddr: .mapping(0, 7 * page)).expecting(
                    .einval),
                bind(slot: 1, gpa: 2 * gpa4G, size: 8 * page, offset: 8 * page, uaddr: .mapping(0, 8 * page)).expecting(
                    .ok),
                // Another VM binding the same range of its own gmem does not conflict.
                .createVM(1, type: 0),
                .createGmem(1, vm: .vm(1), size: 8 * page, flags: shared),
                bind(slot: 0, gpa: gpa4G, size: 8 * page, uaddr: .zero, gmem: .file(1), vm: 1).expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/region2-gmem-slot-immutable", rule: "REGION2 modifying a guest_memfd slot, even identically",
            source: .kernel(file: "virt/kvm/kvm_main.c", function: "kvm_set_memory_region"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                bind(slot: 0, size: 4 * page).expecting(.ok),
                bind(slot: 0, size: 4 * page).expecting(.einval),
                bind(slot: 0, gpa: 2 * gpa4G, size: 4 * page).expecting(.einval),
                bind(slot: 0, size: 8 * page).expecting(.einval),
                .region(vm: 0, slot: 0, flags: 0, gpa: gpa4G, size: 4 * page, uaddr: .mapping(0, 0)).expecting(.einval),
                .region(vm: 0, slot: 0, flags: logDirty, gpa: gpa4G, size: 4 * page, uaddr: .mapping(0, 0)),
                bind(slot: 1, gpa: gpa4G, size: 4 * page, offset: 4 * page, uaddr: .mapping(0, 4 * page)).expecting(
                    .eexist),
            ]),
        ConformanceCase(
            id: "uapi/region2-plain-slot-move",
            rule: "REGION2 plain slots move and change flags; size changes are refused",
            source: .kernel(file: "virt/kvm/kvm_main.c", function: "kvm_set_memory_region"),
            profiles: ProfileGroup.linux618,
            steps: [
                .createVM(0, type: 0),
                .mmap(0, fd: nil, length: 8 * page, shared: false),
                .region(vm: 0, slot: 0, flags: 0, gpa: 0, size: 4 * page, uaddr: .mapping(0, 0)).expecting(.ok),
                .region(vm: 0, slot: 0, flags: 0, gpa: 0, size: 4 * page, uaddr: .mapping(0, 0)).expecting(.ok),
                .region(vm: 0, slot: 0, flags: logDirty, gpa: 0, size: 4 * page, uaddr: .mapping(0, 0)).expecting(.ok),
                .region(vm: 0, slot: 0, flags: 0, gpa: 0x10_0000, size: 4 * page, uaddr: .mapping(0, 0)).expecting(.ok),
                .region(vm: 0, slot: 0, flags: 0, gpa: 0x10_0000, size: 8 * page, uaddr: .mapping(0, 0)).expecting(
                    .einval),
                .region(vm: 0, slot: 0, flags: 0, gpa: 0x10_0000, size: 4 * page, uaddr: .mapping(0, page)).expecting(
                    .einval),
                .region(vm: 0, slot: 0, flags: readonly, gpa: 0x10_0000, size: 4 * page, uaddr: .mapping(0, 0))
                    .expecting(.einval),
                .region(vm: 0, slot: 1, flags: 0, gpa: 0x10_0000 + page, size: page, uaddr: .mapping(0, 4 * page))
                    .expecting(.eexist),
                .region(vm: 0, slot: 1, flags: 0, gpa: 0, size: 4 * page, uaddr: .mapping(0, 4 * page)).expecting(.ok),
                .region(vm: 0, slot: 1, flags: 0, gpa: 0x10_0000, size: 4 * page, uaddr: .mapping(0, 4 * page))
                    .expecting(.eexist),
            ]),
        ConformanceCase(
            id: "uapi/region2-delete", rule: "REGION2 delete a missing slot, delete then rebind, delete twice",
            source: .kernel(file: "virt/kvm/kvm_main.c", function: "kvm_set_memory_region"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                delete(slot: 7).expecting(.einval),
                bind(slot: 0, size: 8 * page).expecting(.ok),
                delete(slot: 0).expecting(.ok),
                delete(slot: 0).expecting(.einval),
                bind(slot: 1, gpa: 2 * gpa4G, size: 8 * page).expecting(.ok),
                bind(slot: 0, size: 8 * page).expecting(.einval),
                bind(slot: 0, size: 8 * page, offset: 8 * page, uaddr: .mapping(0, 8 * page)).expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/region2-close-gmem", rule: "REGION2 closing the guest_memfd keeps the slot",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_release"),
            profiles: ProfileGroup.linux618,
            steps: [
                .createVM(0, type: 0),
                .createGmem(0, vm: .vm(0), size: 8 * page, flags: shared),
                bind(slot: 0, size: 8 * page, uaddr: .zero).expecting(.ok),
                .close(.file(0)).expecting(.ok),
                // The slot is still there: overlapping is EEXIST, re-issuing it is a modification.
                .createGmem(1, vm: .vm(0), size: 8 * page, flags: shared),
                bind(slot: 1, size: 8 * page, uaddr: .zero, gmem: .file(1)).expecting(.eexist),
                bind(slot: 0, size: 8 * page, uaddr: .zero, gmem: .file(1)).expecting(.einval),
                delete(slot: 0).expecting(.ok),
                bind(slot: 1, size: 8 * page, uaddr: .zero, gmem: .file(1)).expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/region2-close-mapped-gmem", rule: "REGION2 closing a mapped guest_memfd keeps slot and binding",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_release"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest(size: 8 * page) + [
                bind(slot: 0, size: 8 * page).expecting(.ok),
                .write(.mapping(0, 0), byte: 0x66, count: 16),
                .close(.file(0)).expecting(.ok),
                .read(.mapping(0, 0), count: 16).expecting(.filled(0x66, 16)),
                delete(slot: 0).expecting(.ok),
                bind(slot: 0, size: 8 * page, gmem: .file(0)).expecting(.ebadf),
                .close(.vm(0)).expecting(.ok),
                .read(.mapping(0, 0), count: 16).expecting(.filled(0x66, 16)),
            ]),
        ConformanceCase(
            id: "uapi/region2-closed-vm", rule: "REGION2 on /dev/kvm, a guest_memfd and a closed VM",
            source: .kernel(file: "virt/kvm/kvm_main.c", function: "kvm_vm_ioctl"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                .createVM(1, type: 0),
                .close(.vm(1)),
                bind(size: 4 * page, vm: 1).expecting(.ebadf),
            ]),
    ]

    // MARK: - Conversion ioctls (none are built on this host)

    static let conversions: [ConformanceCase] = [
        ConformanceCase(
            id: "uapi/vm-attributes-absent", rule: "KVM_SET_MEMORY_ATTRIBUTES is not built here",
            source: .kernel(file: "virt/kvm/kvm_main.c", function: "kvm_vm_ioctl_set_mem_attributes"),
            profiles: ["linux-6.18-pvm"],
            steps: sharedGuest() + [
                bind(size: 16 * page),
                .setAttributes(vm: .vm(0), address: gpa4G, size: page, attributes: 8).expecting(.enotty),
                .setAttributes(vm: .vm(0), address: gpa4G, size: page, attributes: 0).expecting(.enotty),
                .setAttributes(vm: .vm(0), address: 1, size: 0, attributes: 0, flags: 1).expecting(.enotty),
                .setAttributes(vm: .kvm, address: 0, size: page, attributes: 8),
                .setAttributes(vm: .file(0), address: 0, size: page, attributes: 8).expecting(.enotty),
                .setAttributes(vm: .invalid, address: 0, size: page, attributes: 8).expecting(.ebadf),
                .read(.mapping(0, 0), count: 4).expecting(.filled(0, 4)),
            ]),
        ConformanceCase(
            id: "uapi/gmem-conversion-ioctls-absent", rule: "POC convert and ATTRIBUTES2 on a guest_memfd are ENOTTY",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_ioctl"),
            profiles: ProfileGroup.linux618,
            steps: sharedGuest() + [
                .gmemConvert(.file(0), offset: 0, size: page, toPrivate: true).expecting(.enotty),
                .gmemConvert(.file(0), offset: 0, size: page, toPrivate: false).expecting(.enotty),
                .gmemConvert(.file(0), offset: 1, size: 0, toPrivate: true).expecting(.enotty),
                .attributes2(.file(0), offset: 0, size: page, attributes: 8).expecting(.enotty),
                .attributes2(.file(0), offset: 0, size: page, attributes: 0).expecting(.enotty),
                .attributes2(.file(0), offset: 0, size: page, attributes: 8, flags: 1).expecting(.enotty),
                .gmemConvert(.vm(0), offset: 0, size: page, toPrivate: true),
                .attributes2(.vm(0), offset: 0, size: page, attributes: 8),
                .gmemConvert(.kvm, offset: 0, size: page, toPrivate: true),
                .attributes2(.kvm, offset: 0, size: page, attributes: 8),
                .gmemConvert(.invalid, offset: 0, size: page, toPrivate: true).expecting(.ebadf),
                // Nothing changed: the memory is still shared.
                .write(.mapping(0, 0), byte: 0xcc, count: 4).expecting(.ok),
                .read(.mapping(0, 0), count: 4).expecting(.filled(0xcc, 4)),
            ]),
        ConformanceCase(
            id: "uapi/memfd-conversion-ioctls", rule: "conversion ioctls on a memfd",
            source: .kernel(file: "mm/shmem.c", function: "shmem_file_operations"),
            profiles: ProfileGroup.all,
            steps: [
                .createMemfd(0, size: 4 * page),
                .gmemConvert(.file(0), offset: 0, size: page, toPrivate: true),
                .attributes2(.file(0), offset: 0, size: page, attributes: 8),
            ]),
    ]

    // MARK: - Host memory: madvise, mincore, memfd, hugetlb, a whole in-place guest

    static let hostMemory: [ConformanceCase] = [
        ConformanceCase(
            id: "uapi/madvise-private-anon", rule: "madvise on private anonymous memory",
            source: .kernel(file: "mm/madvise.c", function: "madvise_dontneed_free"),
            profiles: ProfileGroup.all,
            steps: [
                .mmap(0, fd: nil, length: 16 * page, shared: false).expecting(.ok),
                .mincore(.mapping(0, 0), length: 16 * page).expecting(.value(0)),
                .madvise(.mapping(0, 0), length: 16 * page, advice: populateWrite).expecting(.ok),
                .mincore(.mapping(0, 0), length: 16 * page).expecting(.value(16)),
                .write(.mapping(0, 0), byte: 0x12, count: Int(2 * page)),
                .madvise(.mapping(0, 0), length: page, advice: dontneed).expecting(.ok),
                .mincore(.mapping(0, 0), length: 16 * page).expecting(.value(15)),
                .read(.mapping(0, 0), count: 4).expecting(.filled(0, 4)),
                .read(.mapping(0, page), count: 4).expecting(.filled(0x12, 4)),
                .madvise(.mapping(0, 0), length: 16 * page, advice: dontneed).expecting(.ok),
                .mincore(.mapping(0, 0), length: 16 * page).expecting(.value(0)),
                .madvise(.mapping(0, 1), length: page, advice: dontneed).expecting(.einval),
                .madvise(.mapping(0, 0), length: page, advice: 12_345).expecting(.einval),
                .madvise(.mapping(0, 0), length: page, advice: remove).expecting(.einval),
                // A range running into a hole: ENOMEM (the hole is made by unmapping, so no neighbour can fill it).
                .mmap(1, fd: nil, length: 2 * page, shared: false),
                .munmap(.mapping(1, page), length: page).expecting(.ok),
                .madvise(.mapping(1, 0), length: 2 * page, advice: populateWrite).expecting(.enomem),
                .mincore(.mapping(1, 0), length: page).expecting(.value(1)),
            ]),
        ConformanceCase(
            id: "uapi/madvise-shared-anon", rule: "madvise on shared anonymous memory",
            source: .kernel(file: "mm/madvise.c", function: "madvise_remove"),
            profiles: ProfileGroup.all,
            steps: [
                .mmap(0, fd: nil, length: 8 * page, shared: true).expecting(.ok),
                .write(.mapping(0, 0), byte: 0x21, count: Int(2 * page)),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(2)),
                .madvise(.mapping(0, 0), length: 8 * page, advice: dontneed).expecting(.ok),
                .read(.mapping(0, 0), count: 4).expecting(.filled(0x21, 4)),
                .madvise(.mapping(0, 0), length: 8 * page, advice: populateWrite).expecting(.ok),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(8)),
                .madvise(.mapping(0, 0), length: page, advice: remove).expecting(.ok),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(7)),
                .read(.mapping(0, 0), count: 4).expecting(.filled(0, 4)),
            ]),
        ConformanceCase(
            id: "uapi/madvise-memfd", rule: "madvise on memfd mappings, shared and private",
            source: .kernel(file: "mm/madvise.c", function: "madvise_populate"),
            profiles: ProfileGroup.all,
            steps: [
                .createMemfd(0, size: 8 * page),
                .mmap(0, fd: .file(0), length: 8 * page),
                .mmap(1, fd: .file(0), length: 8 * page, shared: false),
                .madvise(.mapping(0, 0), length: 4 * page, advice: populateWrite).expecting(.ok),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(4)),
                .write(.mapping(0, 0), byte: 0x31, count: Int(page)),
                .read(.mapping(1, 0), count: 4).expecting(.filled(0x31, 4)),
                .write(.mapping(1, 0), byte: 0x32, count: 4),
                .read(.mapping(0, 0), count: 4).expecting(.filled(0x31, 4)),
                .madvise(.mapping(1, 0), length: page, advice: dontneed).expecting(.ok),
                .read(.mapping(1, 0), count: 4).expecting(.filled(0x31, 4)),
                .madvise(.mapping(0, 0), length: 8 * page, advice: dontneed).expecting(.ok),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(4)),
                .madvise(.mapping(1, 0), length: page, advice: remove).expecting(.errno(.eacces)),
                .madvise(.mapping(0, 0), length: 2 * page, advice: remove).expecting(.ok),
                // The read through the private view faults page 0 of the file back in.
                .read(.mapping(1, 0), count: 4).expecting(.filled(0, 4)),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(3)),
                // A write population of a private view reads the file pages in before copying them.
                .madvise(.mapping(1, 4 * page), length: 4 * page, advice: populateWrite).expecting(.ok),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(7)),
            ]),
        ConformanceCase(
            id: "uapi/madvise-gmem", rule: "madvise on a guest_memfd mapping",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_mmap"),
            profiles: ProfileGroup.upstreamFlags,
            steps: sharedGuest(size: 8 * page) + [
                .madvise(.mapping(0, 0), length: 4 * page, advice: populateWrite).expecting(.ok),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(4)),
                .write(.mapping(0, 0), byte: 0x44, count: 4),
                .madvise(.mapping(0, 0), length: 8 * page, advice: dontneed).expecting(.ok),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(4)),
                .read(.mapping(0, 0), count: 4).expecting(.filled(0x44, 4)),
                .madvise(.mapping(0, 0), length: 8 * page, advice: collapse).expecting(.einval),
                .madvise(.mapping(0, 0), length: 8 * page, advice: populateRead).expecting(.ok),
                .mincore(.mapping(0, 0), length: 8 * page).expecting(.value(8)),
                .madvise(.mapping(0, 0), length: page, advice: remove),
                .mincore(.mapping(0, 0), length: 8 * page),
            ]),
        ConformanceCase(
            id: "uapi/memfd-sizes", rule: "memfd sizes, reads past EOF, unmapped addresses",
            source: .kernel(file: "mm/memfd.c", function: "memfd_create"),
            profiles: ProfileGroup.all,
            steps: [
                .createMemfd(0, size: 0).expecting(.ok),
                .mmap(0, fd: .file(0), length: page).expecting(.ok),
                .read(.mapping(0, 0), count: 1).expecting(.sigbus),
                .createMemfd(1, size: page + 100).expecting(.ok),
                .mmap(1, fd: .file(1), length: 3 * page),
                .read(.mapping(1, page + 200), count: 4).expecting(.filled(0, 4)),
                .read(.mapping(1, 2 * page), count: 1).expecting(.sigbus),
                .mincore(.mapping(1, 0), length: 3 * page).expecting(.value(1)),
                .createMemfd(2, size: 1 << 63),
            ]),
        // Creating and sizing a hugetlb memfd reserves nothing; mmap reserves from the pool (ENOMEM when the
        // pool is short) and fallocate allocates from it (ENOSPC). The simulator gets this machine's pools
        // (`DiffReport.simulatedMachine`), so the outcome agrees whatever the pool holds; on the development
        // machines both pools are empty and every reservation fails.
        ConformanceCase(
            id: "uapi/hugetlb-memfd-and-anon",
            rule: "memfd and anonymous memory with hugetlb, against this machine's pools",
            source: .kernel(file: "mm/hugetlb.c", function: "hugetlb_reserve_pages"),
            profiles: ProfileGroup.all, requirements: [.hugePages(2 * mib)],
            steps: [
                .createMemfd(0, size: 2 * mib, hugePageSize: 2 * mib).expecting(.ok),
                .createMemfd(1, size: 3 * mib, hugePageSize: 2 * mib).expecting(.einval),
                .createMemfd(2, size: 0, hugePageSize: 2 * mib).expecting(.ok),
                .createMemfd(3, size: 2 * mib, hugePageSize: 4 * mib).expecting(.enodev),
                .createMemfd(4, size: 2 * mib, hugePageSize: 64 * 1024).expecting(.enodev),
                .createMemfd(5, size: gib, hugePageSize: gib),
                .mmap(0, fd: .file(0), length: 2 * mib),
                .mmap(1, fd: .file(0), length: 2 * mib, shared: false),
                .mmap(2, fd: .file(2), length: 4 * mib),
                .mmap(3, fd: nil, length: 2 * mib, shared: false, hugePageSize: 2 * mib),
                .mmap(4, fd: nil, length: 2 * mib, shared: true, hugePageSize: 2 * mib),
                .mmap(5, fd: nil, length: 2 * mib, shared: false, hugePageSize: 4 * mib).expecting(.einval),
                .fallocate(.file(0), mode: 0, offset: 0, length: 2 * mib),
                .fallocate(.file(0), mode: punch, offset: 0, length: 2 * mib).expecting(.ok),
                // A file mapping takes its page size from the file (MAP_HUGETLB goes with anonymous memory only).
                .createMemfd(6, size: 2 * mib),
                .mmap(6, fd: .file(6), length: 2 * mib, hugePageSize: 2 * mib).expecting(.ok),
            ]),
        ConformanceCase(
            id: "uapi/in-place-shared-guest-2m", rule: "in-place shared guest end to end (2 MiB)",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_bind"),
            profiles: ProfileGroup.upstreamFlags,
            steps: sharedGuest(size: 2 * mib) + [
                bind(slot: 0, size: 2 * mib).expecting(.ok),
                .fallocate(.file(0), mode: keep, offset: 0, length: 2 * mib).expecting(.ok),
                .mincore(.mapping(0, 0), length: 2 * mib).expecting(.value(0)),
                .madvise(.mapping(0, 0), length: 2 * mib, advice: populateRead).expecting(.ok),
                .mincore(.mapping(0, 0), length: 2 * mib).expecting(.value(512)),
                .write(.mapping(0, mib), byte: 0x99, count: Int(page)),
                .fallocate(.file(0), mode: punch, offset: 0, length: mib).expecting(.ok),
                .mincore(.mapping(0, 0), length: 2 * mib).expecting(.value(256)),
                .read(.mapping(0, mib - 4), count: 8).expecting(.readBytes([0, 0, 0, 0, 0x99, 0x99, 0x99, 0x99])),
                delete(slot: 0).expecting(.ok),
                .close(.file(0)).expecting(.ok),
                .close(.vm(0)).expecting(.ok),
                .mincore(.mapping(0, 0), length: 2 * mib).expecting(.value(257)),
            ]),
        ConformanceCase(
            id: "uapi/in-place-shared-guest-1g", rule: "in-place shared guest of 1 GiB: populate and punch",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_punch_hole"),
            profiles: ProfileGroup.upstreamFlags,
            steps: sharedGuest(size: gib) + [
                bind(slot: 0, size: gib).expecting(.ok),
                .fallocate(.file(0), mode: keep, offset: 0, length: gib).expecting(.ok),
                .mincore(.mapping(0, 0), length: gib).expecting(.value(0)),
                .madvise(.mapping(0, 0), length: gib, advice: populateWrite).expecting(.ok),
                .mincore(.mapping(0, 0), length: gib).expecting(.value(262_144)),
                .fallocate(.file(0), mode: punch, offset: 0, length: gib).expecting(.ok),
                .mincore(.mapping(0, 0), length: gib).expecting(.value(0)),
            ]),
    ]
}
