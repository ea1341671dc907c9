import CKVM
import GmemCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `KVMConstants` copies uapi numbers so the pure core needs no C; every copy must equal CKVM's definition
/// (and Glibc's, for the mm numbers). Needs no /dev/kvm: these are compile-time values.
@Suite struct UAPIConstantTests {
    @Test func capabilityNumbersEqualCKVMs() {
        #expect(KVMConstants.capUserMemory2 == UInt32(KVM_CAP_USER_MEMORY2))
        #expect(KVMConstants.capMemoryFaultInfo == UInt32(KVM_CAP_MEMORY_FAULT_INFO))
        #expect(KVMConstants.capMemoryAttributes == UInt32(KVM_CAP_MEMORY_ATTRIBUTES))
        #expect(KVMConstants.capGuestMemfd == UInt32(KVM_CAP_GUEST_MEMFD))
        #expect(KVMConstants.capVMTypes == UInt32(KVM_CAP_VM_TYPES))
        #expect(KVMConstants.capPreFaultMemory == UInt32(KVM_CAP_PRE_FAULT_MEMORY))
        #expect(KVMConstants.capGuestMemfdFlags == UInt32(KVM_CAP_GUEST_MEMFD_FLAGS))
        #expect(KVMConstants.capNrMemslots == UInt32(KVM_CAP_NR_MEMSLOTS))
        #expect(KVMConstants.capPOCGmemSharedMem == UInt32(CKVM_POC_CAP_GMEM_SHARED_MEM))
        #expect(KVMConstants.capPOCGmemConversion == UInt32(CKVM_POC_CAP_GMEM_CONVERSION))
        #expect(KVMConstants.capPOCGmemHugetlb == UInt32(CKVM_POC_CAP_GMEM_HUGETLB))
        #expect(KVMConstants.capGuestMemfdMemoryAttributes == UInt32(CKVM_V8_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES))
    }

    @Test func flagBitsEqualCKVMs() {
        #expect(KVMConstants.memoryAttributePrivate == UInt64(KVM_MEMORY_ATTRIBUTE_PRIVATE))
        #expect(KVMConstants.memGuestMemfd == UInt32(KVM_MEM_GUEST_MEMFD))
        #expect(KVMConstants.memLogDirtyPages == UInt32(KVM_MEM_LOG_DIRTY_PAGES))
        #expect(KVMConstants.memReadonly == UInt32(KVM_MEM_READONLY))
        #expect(KVMConstants.gmemFlagMmap == UInt64(GUEST_MEMFD_FLAG_MMAP))
        #expect(KVMConstants.gmemFlagInitShared == UInt64(GUEST_MEMFD_FLAG_INIT_SHARED))
        #expect(KVMConstants.pocGmemFlagSupportShared == UInt64(CKVM_POC_GMEM_FLAG_SUPPORT_SHARED))
        #expect(KVMConstants.pocGmemFlagInitPrivate == UInt64(CKVM_POC_GMEM_FLAG_INIT_PRIVATE))
        #expect(KVMConstants.pocGmemFlagHugetlb == UInt64(CKVM_POC_GMEM_FLAG_HUGETLB))
    }

    @Test func mmNumbersEqualGlibcs() {
        #expect(KVMConstants.madvDontneed == Int32(MADV_DONTNEED))
        #expect(KVMConstants.madvRemove == Int32(MADV_REMOVE))
        #expect(KVMConstants.madvPopulateWrite == Int32(MADV_POPULATE_WRITE))
    }

    @Test func errnoTableEqualsGlibcs() {
        let expected: [(Errno, Int32)] = [
            (.eperm, EPERM), (.enoent, ENOENT), (.eintr, EINTR), (.eio, EIO), (.ebadf, EBADF), (.eagain, EAGAIN),
            (.enomem, ENOMEM), (.eacces, EACCES), (.efault, EFAULT), (.ebusy, EBUSY), (.eexist, EEXIST),
            (.enodev, ENODEV), (.einval, EINVAL), (.emfile, EMFILE), (.enotty, ENOTTY), (.efbig, EFBIG),
            (.enospc, ENOSPC), (.espipe, ESPIPE), (.enosys, ENOSYS), (.eoverflow, EOVERFLOW),
            (.eopnotsupp, EOPNOTSUPP), (.ehwpoison, EHWPOISON),
        ]
        for (value, c) in expected { #expect(value.rawValue == c, "\(value.name)") }
        #expect(Errno.named.count == expected.count, "every named errno is checked")
        #expect(
            Errno(parsing: "EINVAL") == .einval && Errno(parsing: "12") == .enomem && Errno(parsing: "EBOGUS") == nil)
        #expect(Errno(rawValue: 200).name == "errno 200")
    }
}
