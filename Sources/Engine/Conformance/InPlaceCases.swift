import Config
import GmemCore
import GmemKVM
import GmemSimulator

/// Rules of `KVM_SET_MEMORY_ATTRIBUTES2` on a guest_memfd (the in-place conversion series, functions
/// `kvm_gmem_set_attributes` and `kvm_gmem_fault_user_mapping` of `virt/kvm/guest_memfd.c` as applied), for the
/// profiles of a host that converts in place. The cases of a VM type apply to every profile in in-place mode
/// whose VM type converts with `KVM_SET_MEMORY_ATTRIBUTES2` (what the profile offers, not its name).
public enum InPlaceCases {
    static let page: UInt64 = 4096
    static let size: UInt64 = 4 * page
    static let privateAttribute = KVMConstants.memoryAttributePrivate
    static let file = "virt/kvm/guest_memfd.c"

    public static let all: [ConformanceCase] = {
        var byType: [VMType: Set<String>] = [:]
        for profile in Profiles.all where profile.inPlaceMode {
            for type in profile.vmTypes where type.conversion == .gmemAttributes2 {
                byType[type.vmType, default: []].insert(profile.name)
            }
        }
        return VMType.allCases.flatMap { type in byType[type].map { cases(vmType: type, profiles: $0) } ?? [] }
    }()

    static func cases(vmType: VMType, profiles: Set<String>) -> [ConformanceCase] {
        let guest: [ConformanceStep] = [
            .createVM(0, type: vmType.kvmValue).expecting(.ok),
            .createGmem(0, vm: .vm(0), size: size, flags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared)
                .expecting(.ok),
            .mmap(0, fd: .file(0), length: size).expecting(.ok),
        ]
        func make(_ name: String, _ function: String, _ rule: String, _ steps: [ConformanceStep]) -> ConformanceCase {
            ConformanceCase(
                id: "in-place/\(name)/\(vmType.rawValue)", rule: rule,
                source: .inPlaceSeries(file: file, function: function), profiles: profiles,
                requirements: [.vmType(vmType)], steps: guest + steps)
        }
        return [
            make(
                "attributes2-arguments", "kvm_gmem_set_attributes",
                "flags, attributes other than 0 or PRIVATE, size 0, misalignment and ranges beyond the file are EINVAL",
                [
                    .attributes2(.file(0), offset: 0, size: page, attributes: privateAttribute, flags: 1).expecting(
                        .einval),
                    .attributes2(.file(0), offset: 0, size: page, attributes: 1).expecting(.einval),
                    .attributes2(.file(0), offset: 0, size: 0, attributes: privateAttribute).expecting(.einval),
                    .attributes2(.file(0), offset: 1, size: page, attributes: privateAttribute).expecting(.einval),
                    .attributes2(.file(0), offset: 0, size: page + 1, attributes: privateAttribute).expecting(.einval),
                    .attributes2(.file(0), offset: size, size: page, attributes: privateAttribute).expecting(.einval),
                    .attributes2(.file(0), offset: 3 * page, size: 2 * page, attributes: privateAttribute).expecting(
                        .einval),
                    .attributes2(.file(0), offset: UInt64.max - page + 1, size: 2 * page, attributes: privateAttribute)
                        .expecting(.einval),
                ]),
            make(
                "attributes2-private-faults-sigbus", "kvm_gmem_fault_user_mapping",
                "a page converted to private faults the host with SIGBUS; converted back, it is accessible again",
                [
                    .write(.mapping(0, 0), byte: 0x5a, count: Int(size)).expecting(.ok),
                    .attributes2(.file(0), offset: page, size: page, attributes: privateAttribute).expecting(.ok),
                    .read(.mapping(0, page), count: 1).expecting(.sigbus),
                    .write(.mapping(0, page), byte: 1, count: 1).expecting(.sigbus),
                    .read(.mapping(0, 0), count: Int(page)).expecting(.filled(0x5a, Int(page))),
                    .attributes2(.file(0), offset: page, size: page, attributes: privateAttribute).expecting(.ok),
                    .attributes2(.file(0), offset: page, size: page, attributes: 0).expecting(.ok),
                    .write(.mapping(0, page), byte: 2, count: 1).expecting(.ok),
                    .read(.mapping(0, page), count: 1).expecting(.filled(2, 1)),
                ]),
            make(
                "attributes2-default-vm", "kvm_gmem_set_attributes",
                "a guest_memfd of a VM without private memory cannot be converted: EINVAL",
                [
                    .createVM(1, type: VMType.default.kvmValue).expecting(.ok),
                    .createGmem(
                        1, vm: .vm(1), size: size, flags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared
                    )
                    .expecting(.ok),
                    .attributes2(.file(1), offset: 0, size: page, attributes: privateAttribute).expecting(.einval),
                ]),
            make(
                "attributes2-punch-keeps-state", "kvm_gmem_punch_hole",
                "punching a private page keeps it private: the host still faults with SIGBUS",
                [
                    .attributes2(.file(0), offset: 0, size: page, attributes: privateAttribute).expecting(.ok),
                    .fallocate(.file(0), mode: 0x03, offset: 0, length: page).expecting(.ok),
                    .read(.mapping(0, 0), count: 1).expecting(.sigbus),
                ]),
        ]
    }
}
