/// What the C reference programs of the benchmarks share: the headers and the KVM uapi they define themselves
/// (the build machine may lack current kernel headers), so both issue exactly the syscalls gmemctl does.
enum CReferencePrelude {
    static let kvm = #"""
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <stdint.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/ioctl.h>
        #include <sys/mman.h>
        #include <time.h>
        #include <unistd.h>

        #define KVMIO 0xAE
        #define KVM_CREATE_VM _IO(KVMIO, 0x01)
        struct kvm_userspace_memory_region2 {
            uint32_t slot, flags;
            uint64_t guest_phys_addr, memory_size, userspace_addr, guest_memfd_offset;
            uint32_t guest_memfd, pad1;
            uint64_t pad2[14];
        };
        struct kvm_create_guest_memfd { uint64_t size, flags, reserved[6]; };
        #define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
        #define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)
        #define KVM_MEM_GUEST_MEMFD (1u << 2)
        #define GUEST_MEMFD_FLAG_MMAP (1ull << 0)
        #define GUEST_MEMFD_FLAG_INIT_SHARED (1ull << 1)

        """#
}
