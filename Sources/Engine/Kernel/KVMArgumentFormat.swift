/// Renders kernel-call arguments for `KernelError.arguments`: addresses in hex, flag words as names, so a
/// failure reads like the call that was made (`flags=MMAP|INIT_SHARED`, not `flags=3`).
package enum KVMArgumentFormat {
    package static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    /// `A|B|0x40` for a flag word: known bits by name, leftover bits in hex, `0` for none.
    package static func flags(_ value: UInt64, names: [(bit: UInt64, name: String)]) -> String {
        var parts: [String] = []
        var rest = value
        for (bit, name) in names where value & bit == bit && bit != 0 {
            parts.append(name)
            rest &= ~bit
        }
        if rest != 0 { parts.append(hex(rest)) }
        return parts.isEmpty ? "0" : parts.joined(separator: "|")
    }

    package static func guestMemfdFlags(_ value: UInt64) -> String {
        flags(value, names: [(KVMConstants.gmemFlagMmap, "MMAP"), (KVMConstants.gmemFlagInitShared, "INIT_SHARED")])
    }

    package static func memslotFlags(_ value: UInt32) -> String {
        flags(
            UInt64(value),
            names: [
                (1 << 0, "LOG_DIRTY_PAGES"), (1 << 1, "READONLY"), (UInt64(KVMConstants.memGuestMemfd), "GUEST_MEMFD"),
            ])
    }

    package static func memoryAttributes(_ value: UInt64) -> String {
        flags(value, names: [(KVMConstants.memoryAttributePrivate, "PRIVATE")])
    }

    package static func fallocateMode(_ mode: Int32) -> String {
        // FALLOC_FL_KEEP_SIZE = 1, PUNCH_HOLE = 2, COLLAPSE_RANGE = 8, ZERO_RANGE = 0x10, INSERT_RANGE = 0x20.
        flags(
            UInt64(UInt32(bitPattern: mode)),
            names: [
                (0x01, "KEEP_SIZE"), (0x02, "PUNCH_HOLE"), (0x08, "COLLAPSE_RANGE"), (0x10, "ZERO_RANGE"),
                (0x20, "INSERT_RANGE"),
            ])
    }

    package static func madviseAdvice(_ advice: Int32) -> String {
        let names: [Int32: String] = [
            0: "MADV_NORMAL", 3: "MADV_WILLNEED", 4: "MADV_DONTNEED", 8: "MADV_FREE", 9: "MADV_REMOVE",
            14: "MADV_HUGEPAGE", 15: "MADV_NOHUGEPAGE", 22: "MADV_POPULATE_READ", 23: "MADV_POPULATE_WRITE",
            25: "MADV_COLLAPSE",
        ]
        return names[advice] ?? "advice \(advice)"
    }

    package static func capability(_ capability: UInt32) -> String {
        let names: [UInt32: String] = [
            231: "KVM_CAP_USER_MEMORY2", 232: "KVM_CAP_MEMORY_FAULT_INFO", 233: "KVM_CAP_MEMORY_ATTRIBUTES",
            234: "KVM_CAP_GUEST_MEMFD", 235: "KVM_CAP_VM_TYPES", 236: "KVM_CAP_PRE_FAULT_MEMORY",
            244: "KVM_CAP_GUEST_MEMFD_FLAGS",
        ]
        return names[capability] ?? "capability \(capability)"
    }

    package static func vmType(_ type: UInt64) -> String {
        let names: [UInt64: String] = [
            0: "KVM_X86_DEFAULT_VM", 1: "KVM_X86_SW_PROTECTED_VM", 2: "KVM_X86_SEV_VM", 3: "KVM_X86_SEV_ES_VM",
            4: "KVM_X86_SNP_VM", 5: "KVM_X86_TDX_VM",
        ]
        return names[type] ?? "type \(type)"
    }

    package static func region(_ region: MemoryRegion2) -> String {
        var text = "slot=\(region.slot & 0xFFFF)"
        if region.slot >> 16 != 0 { text += " as=\(region.slot >> 16)" }
        text +=
            ", flags=\(memslotFlags(region.flags)), gpa=\(hex(region.guestPhysAddr)), size=\(hex(region.memorySize))"
        text += ", uaddr=\(hex(region.userspaceAddr))"
        if region.flags & KVMConstants.memGuestMemfd != 0 {
            text += ", guest_memfd=\(region.guestMemfd), gmem_offset=\(hex(region.guestMemfdOffset))"
        }
        return text
    }
}
