import Config
import GmemCore
import GmemKVM
import GmemSimulator

/// The kernel's own selftest `tools/testing/selftests/kvm/guest_memfd_test.c` (torvalds/linux at commit
/// 01f492e1817e858d1712f2489d0afbaa552f417b), ported case by case. Like the selftest, each file case runs for
/// every VM type a profile offers and for each guest_memfd flag set that type accepts (0, MMAP,
/// MMAP|INIT_SHARED), on a guest_memfd of 4 pages; a case is named after the selftest function it mirrors.
/// Where the selftest only asserts that a call fails, the expected errno is the one the kernel function returns.
public enum SelftestCases {
    public static let file = "tools/testing/selftests/kvm/guest_memfd_test.c"

    /// Selftest cases that the simulator cannot model, each with the reason (the report lists them as such).
    public static let notModelled: [(testCase: String, reason: String)] = [
        ("test_file_read_write", "read(2)/write(2)/pread/pwrite on a file are not calls of the kernel interface"),
        ("test_file_size", "fstat(2) is not a call of the kernel interface"),
        ("test_mbind", "NUMA memory policies are not modelled (the selftest itself skips on one node)"),
        ("test_numa_allocation", "NUMA placement is not modelled (the selftest itself skips on one node)"),
        ("test_uffd_minor", "userfaultfd is not modelled (newer versions of the selftest, Linux 7.1 on)"),
        ("test_uffd_missing", "userfaultfd is not modelled (newer versions of the selftest, Linux 7.1 on)"),
        ("test_guest_memfd_guest", "needs a vCPU running guest code; the simulator has no vCPU"),
    ]

    /// `test_fault_sigbus` is the helper of fault_overflow and fault_private; `test_guest_memfd`, the driver that
    /// loops over flag sets, is ported as a case of its own (the VM type and the flags it reports).

    static let page: UInt64 = 4096
    static let size: UInt64 = 4 * page
    static let pmdSize: UInt64 = 2 << 20
    static let keep: Int32 = 0x01, punch: Int32 = 0x03
    static let madvHugepage: Int32 = 14, madvDontneed: Int32 = 4, madvCollapse: Int32 = 25

    /// Every case, each applying to the profiles whose VM types and flags produce it.
    public static let all: [ConformanceCase] = {
        var byID: [String: ConformanceCase] = [:]
        var order: [String] = []
        for profile in Profiles.all where profile.guestMemfdFlagSet != .poc2025 {
            // Like the selftest (TEST_REQUIRE at system scope), every VM type of a kernel with guest_memfd: on
            // 6.8-6.17 a default VM takes a guest_memfd although it cannot bind one (and reports 0 on the VM).
            let kernelHasGuestMemfd = profile.systemExtension(KVMConstants.capGuestMemfd) != 0
            for type in profile.vmTypes where type.guestMemfd || kernelHasGuestMemfd {
                for generated in cases(vmType: type.vmType, validFlags: type.guestMemfdFlags) {
                    if byID[generated.id] == nil {
                        byID[generated.id] = generated
                        order.append(generated.id)
                    }
                    byID[generated.id]?.profiles.insert(profile.name)
                }
            }
        }
        return order.compactMap { byID[$0] }
    }()

    static func flagName(_ flags: UInt64) -> String {
        switch flags {
        case 0: return "flags-0"
        case KVMConstants.gmemFlagMmap: return "mmap"
        default: return "mmap-init-shared"
        }
    }

    /// The cases of one VM type whose guest_memfd accepts `validFlags` (the selftest's `test_guest_memfd`).
    static func cases(vmType: VMType, validFlags: UInt64) -> [ConformanceCase] {
        let requirements: [CaseRequirement] = vmType == .default ? [] : [.vmType(vmType)]
        let vm: [ConformanceStep] = [.createVM(0, type: vmType.kvmValue).expecting(.ok)]
        func make(_ name: String, _ variant: String, _ rule: String, _ steps: [ConformanceStep]) -> ConformanceCase {
            ConformanceCase(
                id: "selftest/guest_memfd_test/\(name)/\(vmType.rawValue)/\(variant)", rule: rule,
                source: .selftest(file: file, testCase: "test_\(name)"), profiles: [],
                requirements: requirements, steps: vm + steps)
        }
        var result = [
            // The driver: like the selftest's TEST_REQUIRE(KVM_CAP_GUEST_MEMFD), it needs a guest_memfd.
            make(
                "guest_memfd", "valid-\(validFlags)",
                "a VM of the type takes a guest_memfd and reports its guest_memfd flags",
                [
                    .createGmem(0, vm: .vm(0), size: page, flags: 0).expecting(.ok),
                    .checkExtension(KVMConstants.capGuestMemfdFlags, vm: 0).expecting(.value(Int64(validFlags))),
                ]),
            make(
                "guest_memfd_flags", "valid-\(validFlags)",
                "KVM_CREATE_GUEST_MEMFD accepts each flag the VM reports and refuses every other bit with EINVAL",
                (0..<64).map { bit in
                    let flag: UInt64 = 1 << UInt64(bit)
                    return .createGmem(bit, vm: .vm(0), size: page, flags: flag)
                        .expecting(flag & validFlags != 0 ? .ok : .einval)
                }),
            make(
                "create_guest_memfd_multiple", "flags-0", "two guest_memfds of one VM are created independently",
                [
                    .createGmem(0, vm: .vm(0), size: page, flags: 0).expecting(.ok),
                    .createGmem(1, vm: .vm(0), size: 2 * page, flags: 0).expecting(.ok),
                    .close(.file(1)).expecting(.ok), .close(.file(0)).expecting(.ok),
                ]),
        ]
        var flagSets: [UInt64] = [0]
        if validFlags & KVMConstants.gmemFlagMmap != 0 { flagSets.append(KVMConstants.gmemFlagMmap) }
        if validFlags & KVMConstants.gmemFlagInitShared != 0 {
            flagSets.append(KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared)
        }
        for flags in flagSets {
            result += fileCases(flags: flags).map { make($0.name, flagName(flags), $0.rule, $0.steps) }
        }
        return result
    }

    /// The selftest's `__test_guest_memfd(vm, flags)`: the cases on one guest_memfd (file0 of 4 pages).
    static func fileCases(flags: UInt64) -> [(name: String, rule: String, steps: [ConformanceStep])] {
        let gmem: ConformanceStep = .createGmem(0, vm: .vm(0), size: size, flags: flags).expecting(.ok)
        let mmap = flags & KVMConstants.gmemFlagMmap != 0
        let initShared = flags & KVMConstants.gmemFlagInitShared != 0
        var cases: [(name: String, rule: String, steps: [ConformanceStep])] = [
            (
                "create_guest_memfd_invalid_sizes", "a size that is not a multiple of the page size is EINVAL",
                (1..<Int(page)).map { .createGmem($0, vm: .vm(0), size: UInt64($0), flags: flags).expecting(.einval) }
            )
        ]
        if mmap {
            if initShared {
                cases.append(
                    (
                        "mmap_supported", "a shared mapping reads what was written; a punched page reads zeros",
                        [
                            gmem,
                            .mmap(0, fd: .file(0), length: size).expecting(.ok),
                            .write(.mapping(0, 0), byte: 0xaa, count: Int(size)).expecting(.ok),
                            .read(.mapping(0, 0), count: Int(size)).expecting(.filled(0xaa, Int(size))),
                            .fallocate(.file(0), mode: punch, offset: 0, length: page).expecting(.ok),
                            .read(.mapping(0, 0), count: Int(page)).expecting(.filled(0, Int(page))),
                            .read(.mapping(0, page), count: Int(size - page)).expecting(
                                .filled(0xaa, Int(size - page))),
                            .write(.mapping(0, 0), byte: 0xaa, count: Int(page)).expecting(.ok),
                            .read(.mapping(0, 0), count: Int(size)).expecting(.filled(0xaa, Int(size))),
                            .munmap(.mapping(0, 0), length: size).expecting(.ok),
                        ]
                    ))
                cases.append(
                    (
                        "fault_overflow", "an access beyond the end of the file is SIGBUS; the bytes before it stay",
                        [
                            gmem,
                            .mmap(0, fd: .file(0), length: 4 * size).expecting(.ok),
                            .write(.mapping(0, 0), byte: 0xaa, count: Int(4 * size)).expecting(.sigbus),
                            .read(.mapping(0, size), count: 1).expecting(.sigbus),
                            .read(.mapping(0, 0), count: Int(size)).expecting(.filled(0xaa, Int(size))),
                            .munmap(.mapping(0, 0), length: 4 * size).expecting(.ok),
                        ]
                    ))
                // The selftest aligns the mapping to the PMD size with MAP_FIXED; the kernel interface maps
                // where the kernel chooses, which does not change the rule: MADV_COLLAPSE is refused.
                cases.append(
                    (
                        "collapse",
                        "MADV_HUGEPAGE is accepted, MADV_COLLAPSE is EINVAL, a refault after DONTNEED works",
                        [
                            .createGmem(0, vm: .vm(0), size: pmdSize, flags: flags).expecting(.ok),
                            .mmap(0, fd: .file(0), length: pmdSize).expecting(.ok),
                            .read(.mapping(0, 0), count: Int(pmdSize)).expecting(.filled(0, Int(pmdSize))),
                            .madvise(.mapping(0, 0), length: pmdSize, advice: madvHugepage).expecting(.ok),
                            .madvise(.mapping(0, 0), length: pmdSize, advice: madvCollapse).expecting(.einval),
                            .madvise(.mapping(0, 0), length: pmdSize, advice: madvDontneed).expecting(.ok),
                            .read(.mapping(0, 0), count: 1).expecting(.filled(0, 1)),
                            .munmap(.mapping(0, 0), length: pmdSize).expecting(.ok),
                        ]
                    ))
            } else {
                cases.append(
                    (
                        "fault_private", "without INIT_SHARED every page is private: any host access is SIGBUS",
                        [
                            gmem,
                            .mmap(0, fd: .file(0), length: size).expecting(.ok),
                            .write(.mapping(0, 0), byte: 0xaa, count: Int(size)).expecting(.sigbus),
                            .read(.mapping(0, 0), count: 1).expecting(.sigbus),
                            .munmap(.mapping(0, 0), length: size).expecting(.ok),
                        ]
                    ))
            }
            cases.append(
                (
                    "mmap_cow", "a MAP_PRIVATE (copy-on-write) mapping is refused with EINVAL",
                    [gmem, .mmap(0, fd: .file(0), length: size, shared: false).expecting(.einval)]
                ))
        } else {
            cases.append(
                (
                    "mmap_not_supported", "a guest_memfd without MMAP cannot be mapped: ENODEV",
                    [
                        gmem,
                        .mmap(0, fd: .file(0), length: page).expecting(.enodev),
                        .mmap(1, fd: .file(0), length: size).expecting(.enodev),
                    ]
                ))
        }
        cases.append(
            (
                "fallocate", "fallocate allocates inside the file only; punching at or beyond EOF succeeds",
                [
                    gmem,
                    .fallocate(.file(0), mode: keep, offset: 0, length: size).expecting(.ok),
                    .fallocate(.file(0), mode: punch, offset: page - 1, length: page).expecting(.einval),
                    .fallocate(.file(0), mode: keep, offset: size, length: page).expecting(.einval),
                    .fallocate(.file(0), mode: keep, offset: size + page, length: page).expecting(.einval),
                    .fallocate(.file(0), mode: punch, offset: size, length: page).expecting(.ok),
                    .fallocate(.file(0), mode: punch, offset: size + page, length: page).expecting(.ok),
                    .fallocate(.file(0), mode: punch, offset: page, length: page - 1).expecting(.einval),
                    .fallocate(.file(0), mode: punch, offset: page, length: page).expecting(.ok),
                    .fallocate(.file(0), mode: keep, offset: page, length: page).expecting(.ok),
                ]
            ))
        let punches: [(UInt64, UInt64)] = [
            (0, 1), (0, page - 1), (0, page + 1), (1, 1), (1, page - 1), (1, page), (1, page + 1),
            (page, 1), (page, page - 1), (page, page + 1),
        ]
        cases.append(
            (
                "invalid_punch_hole", "PUNCH_HOLE with an offset or length that is not page aligned is EINVAL",
                [gmem]
                    + punches.map { .fallocate(.file(0), mode: punch, offset: $0.0, length: $0.1).expecting(.einval) }
            ))
        return cases
    }
}
