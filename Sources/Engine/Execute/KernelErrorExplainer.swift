/// Turns a kernel errno on a gmemctl operation into a sentence that says what went wrong in the user's terms
/// (the errno rules are in docs/kernels.md).
enum KernelErrorExplainer {
    static func explain(_ operation: PlanOperation, _ error: KernelError) -> String {
        let errno = error.errno
        switch operation {
        case .createVM(let type):
            if errno == .einval {
                return "the kernel does not offer VM type \(type.rawValue) (KVM_CAP_VM_TYPES lacks it)"
            }
            return "creating the \(type.rawValue) VM failed"
        case .createGuestMemfd(let block, _, let flags, _):
            if errno == .einval {
                return
                    "the kernel refused guest_memfd flags 0x\(String(flags, radix: 16)) or the size of block \(block)"
            }
            if errno == .enotty { return "this kernel has no guest_memfd (KVM_CREATE_GUEST_MEMFD is unknown)" }
            return "creating the guest_memfd of block \(block) failed"
        case .createSharedBacking(let block, let backing, _):
            if backing.source == .hugetlb && (errno == .enomem || errno == .enospc) {
                return
                    "the hugetlb pool has too few free pages for block \(block) (raise /sys/kernel/mm/hugepages/hugepages-*/nr_hugepages)"
            }
            return "creating the shared backing of block \(block) failed"
        case .mapHostMemory(let block, let memory, _):
            if errno == .enodev {
                return "the guest_memfd of block \(block) cannot be mapped (it was created without MMAP)"
            }
            return "mapping the \(memory.rawValue) memory of block \(block) failed"
        case .bindMemslot(let slot, let mapping, _):
            let what =
                "binding memslot \(slot) (block \(mapping.block) offset \(hex(mapping.offset)) at gpa \(hex(mapping.gpa)), size \(hex(mapping.size)))"
            switch errno {
            case .some(.eexist): return "\(what): the guest range overlaps another memslot"
            case .some(.einval):
                return
                    "\(what): the kernel refused it (unaligned, a guest_memfd range already bound, or guest_memfd memslots unsupported for this VM)"
            case .some(.ebadf): return "\(what): the guest_memfd is not open"
            default: return what + " failed"
            }
        case .deleteMemslot(let slot, _):
            return "deleting memslot \(slot) failed"
        case .setVMAttributes(let gpa, let size, let to):
            if errno == .enotty {
                return "this kernel has no per-VM memory attributes (KVM_SET_MEMORY_ATTRIBUTES is unknown)"
            }
            return "setting \(hex(gpa))+\(hex(size)) \(to.rawValue) failed"
        case .convertGuestMemfd(let block, let offset, let size, let to, _):
            if errno == .eagain {
                let at = error.errorOffset.map { " at offset \(hex($0))" } ?? ""
                return
                    "converting block \(block) \(hex(offset))+\(hex(size)) to \(to.rawValue) stopped\(at): a page is still in use (pinned, e.g. by a device mapping)"
            }
            if errno == .enotty { return "this kernel has no guest_memfd conversion ioctl" }
            return "converting block \(block) \(hex(offset))+\(hex(size)) to \(to.rawValue) failed"
        case .discard(let block, let memory, let offset, let size, _):
            return "discarding \(memory.rawValue) memory of block \(block) at \(hex(offset))+\(hex(size)) failed"
        case .populate(let block, let memory, _, _):
            return "populating \(memory.rawValue) memory of block \(block) failed"
        case .notify(let listener, let kind, _, _):
            return "notifying listener \(listener) (\(kind.rawValue)) failed"
        case .destroyBlock(let block):
            return "releasing block \(block) failed"
        case .destroyVM:
            return "closing the VM failed"
        }
    }
}
