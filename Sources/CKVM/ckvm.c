#define _GNU_SOURCE
#include "ckvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/memfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- Layout checks against the uapi (sizes, key offsets, ioctl numbers; docs/kernels.md) ------------- */
_Static_assert(sizeof(struct kvm_userspace_memory_region2) == 160, "region2 is 160 B");
_Static_assert(offsetof(struct kvm_userspace_memory_region2, userspace_addr) == 24, "region2.userspace_addr@24");
_Static_assert(offsetof(struct kvm_userspace_memory_region2, guest_memfd_offset) == 32, "region2.gmem_offset@32");
_Static_assert(offsetof(struct kvm_userspace_memory_region2, guest_memfd) == 40, "region2.guest_memfd@40");
_Static_assert(offsetof(struct kvm_userspace_memory_region2, pad2) == 48, "region2.pad2@48");
_Static_assert(sizeof(struct kvm_userspace_memory_region) == 32, "region is 32 B");
_Static_assert(sizeof(struct kvm_memory_attributes) == 32, "attributes is 32 B");
_Static_assert(offsetof(struct kvm_memory_attributes, attributes) == 16, "attributes.attributes@16");
_Static_assert(offsetof(struct kvm_memory_attributes, flags) == 24, "attributes.flags@24");
_Static_assert(sizeof(struct kvm_create_guest_memfd) == 64, "create_guest_memfd is 64 B");
_Static_assert(offsetof(struct kvm_create_guest_memfd, flags) == 8, "create_guest_memfd.flags@8");
_Static_assert(offsetof(struct kvm_create_guest_memfd, reserved) == 16, "create_guest_memfd.reserved@16");
_Static_assert(sizeof(struct kvm_pre_fault_memory) == 64, "pre_fault_memory is 64 B");
_Static_assert(offsetof(struct kvm_pre_fault_memory, flags) == 16, "pre_fault.flags@16");
_Static_assert(sizeof(struct ckvm_gmem_convert) == 64, "POC gmem_convert is 64 B");
_Static_assert(offsetof(struct ckvm_gmem_convert, error_offset) == 16, "gmem_convert.error_offset@16");
_Static_assert(offsetof(struct ckvm_gmem_convert, reserved) == 24, "gmem_convert.reserved@24");
_Static_assert(sizeof(struct ckvm_memory_attributes2) == 128, "memory_attributes2 is 128 B");
_Static_assert(offsetof(struct ckvm_memory_attributes2, flags) == 24, "attributes2.flags@24");
_Static_assert(offsetof(struct ckvm_memory_attributes2, error_offset) == 32, "attributes2.error_offset@32");
_Static_assert(offsetof(struct ckvm_memory_attributes2, reserved) == 40, "attributes2.reserved@40");
_Static_assert(sizeof(struct ckvm_memory_fault) == 24, "memory_fault is 24 B");
_Static_assert(offsetof(struct kvm_run, exit_reason) == 8, "kvm_run.exit_reason@8");
_Static_assert(offsetof(struct kvm_run, io) == 32, "kvm_run union@32 on x86 (memory_fault lives there)");

_Static_assert(KVM_CHECK_EXTENSION == 0x0000AE03, "KVM_CHECK_EXTENSION");
_Static_assert(KVM_CREATE_VM == 0x0000AE01, "KVM_CREATE_VM");
_Static_assert(KVM_SET_USER_MEMORY_REGION == 0x4020AE46, "KVM_SET_USER_MEMORY_REGION");
_Static_assert(KVM_SET_USER_MEMORY_REGION2 == 0x40A0AE49, "KVM_SET_USER_MEMORY_REGION2");
_Static_assert(KVM_SET_MEMORY_ATTRIBUTES == 0x4020AED2, "KVM_SET_MEMORY_ATTRIBUTES");
_Static_assert(KVM_CREATE_GUEST_MEMFD == 0xC040AED4, "KVM_CREATE_GUEST_MEMFD");
_Static_assert(KVM_PRE_FAULT_MEMORY == 0xC040AED5, "KVM_PRE_FAULT_MEMORY");
_Static_assert(CKVM_POC_GMEM_CONVERT_SHARED == 0xC040AF41, "POC KVM_GMEM_CONVERT_SHARED");
_Static_assert(CKVM_POC_GMEM_CONVERT_PRIVATE == 0xC040AF42, "POC KVM_GMEM_CONVERT_PRIVATE");
_Static_assert(CKVM_SET_MEMORY_ATTRIBUTES2 == 0xC080AED2, "2026 KVM_SET_MEMORY_ATTRIBUTES2");

/* ---- Plain wrappers --------------------------------------------------------------------------------- */
#define CKVM_RETURN(expr)            \
    do {                             \
        long ckvm_result_ = (expr);  \
        if (ckvm_result_ < 0)        \
            return -errno;           \
        return ckvm_result_;         \
    } while (0)

int ckvm_open_kvm(const char *path) { CKVM_RETURN(open(path ? path : CKVM_DEV_KVM_PATH, O_RDWR | O_CLOEXEC)); }

long ckvm_ioctl_int(int fd, unsigned long request, unsigned long arg) { CKVM_RETURN(ioctl(fd, request, arg)); }

long ckvm_ioctl_ptr(int fd, unsigned long request, void *arg) { CKVM_RETURN(ioctl(fd, request, arg)); }

int ckvm_create_vm(int kvm_fd, unsigned long type) { CKVM_RETURN(ioctl(kvm_fd, KVM_CREATE_VM, type)); }

long ckvm_check_extension(int fd, unsigned long capability) {
    CKVM_RETURN(ioctl(fd, KVM_CHECK_EXTENSION, capability));
}

int ckvm_create_guest_memfd(int vm_fd, uint64_t size, uint64_t flags) {
    struct kvm_create_guest_memfd args = {.size = size, .flags = flags};
    CKVM_RETURN(ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD, &args));
}

int ckvm_set_region2(int vm_fd, uint32_t slot, uint32_t flags, uint64_t guest_phys_addr, uint64_t memory_size,
                     uint64_t userspace_addr, uint64_t guest_memfd_offset, uint32_t guest_memfd) {
    struct kvm_userspace_memory_region2 region = {
        .slot = slot,
        .flags = flags,
        .guest_phys_addr = guest_phys_addr,
        .memory_size = memory_size,
        .userspace_addr = userspace_addr,
        .guest_memfd_offset = guest_memfd_offset,
        .guest_memfd = guest_memfd,
    };
    CKVM_RETURN(ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION2, &region));
}

int ckvm_set_memory_attributes(int vm_fd, uint64_t address, uint64_t size, uint64_t attributes, uint64_t flags) {
    struct kvm_memory_attributes args = {.address = address, .size = size, .attributes = attributes, .flags = flags};
    CKVM_RETURN(ioctl(vm_fd, KVM_SET_MEMORY_ATTRIBUTES, &args));
}

int ckvm_gmem_convert(int gmem_fd, uint64_t offset, uint64_t size, int to_private, uint64_t *error_offset) {
    struct ckvm_gmem_convert args = {.offset = offset, .size = size};
    unsigned long request = to_private ? CKVM_POC_GMEM_CONVERT_PRIVATE : CKVM_POC_GMEM_CONVERT_SHARED;
    int result = ioctl(gmem_fd, request, &args);
    int saved = errno;
    if (error_offset)
        *error_offset = args.error_offset;
    return result < 0 ? -saved : result;
}

int ckvm_set_memory_attributes2(int gmem_fd, uint64_t offset, uint64_t size, uint64_t attributes, uint64_t flags,
                                uint64_t *error_offset) {
    struct ckvm_memory_attributes2 args = {.offset = offset, .size = size, .attributes = attributes, .flags = flags};
    int result = ioctl(gmem_fd, CKVM_SET_MEMORY_ATTRIBUTES2, &args);
    int saved = errno;
    if (error_offset)
        *error_offset = args.error_offset;
    return result < 0 ? -saved : result;
}

int ckvm_memfd_create(const char *name, unsigned int flags, uint64_t huge_page_size) {
    if (huge_page_size != 0) {
        if ((huge_page_size & (huge_page_size - 1)) != 0)
            return -EINVAL;
        unsigned int size_code = (unsigned int)__builtin_ctzll(huge_page_size);
        flags |= MFD_HUGETLB | (size_code << MFD_HUGE_SHIFT);
    }
    CKVM_RETURN(syscall(SYS_memfd_create, name, flags));
}

int ckvm_ftruncate(int fd, uint64_t size) { CKVM_RETURN(ftruncate(fd, (off_t)size)); }

int64_t ckvm_mmap(uint64_t address, uint64_t length, int prot, int flags, int fd, uint64_t offset) {
    void *mapped = mmap((void *)(uintptr_t)address, length, prot, flags, fd, (off_t)offset);
    if (mapped == MAP_FAILED)
        return -errno;
    return (int64_t)(uintptr_t)mapped;
}

int ckvm_munmap(uint64_t address, uint64_t length) { CKVM_RETURN(munmap((void *)(uintptr_t)address, length)); }

int ckvm_fallocate(int fd, int mode, uint64_t offset, uint64_t length) {
    CKVM_RETURN(fallocate(fd, mode, (off_t)offset, (off_t)length));
}

int ckvm_madvise(uint64_t address, uint64_t length, int advice) {
    CKVM_RETURN(madvise((void *)(uintptr_t)address, length, advice));
}

int64_t ckvm_mincore_count(uint64_t address, uint64_t length) {
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    enum { CHUNK_PAGES = 4096 }; /* bounded vector, so huge mappings need no huge allocation */
    unsigned char vector[CHUNK_PAGES];
    uint64_t start = address & ~(page - 1);
    uint64_t end = address + length;
    int64_t resident = 0;
    while (start < end) {
        uint64_t chunk = end - start;
        if (chunk > (uint64_t)CHUNK_PAGES * page)
            chunk = (uint64_t)CHUNK_PAGES * page;
        if (mincore((void *)(uintptr_t)start, chunk, vector) < 0)
            return -errno;
        uint64_t pages = (chunk + page - 1) / page;
        for (uint64_t i = 0; i < pages; i++)
            resident += vector[i] & 1;
        start += chunk;
    }
    return resident;
}

/* include/uapi/linux/fs.h (6.7+), spelled out because the build host's headers may predate it. */
struct ckvm_page_region {
    uint64_t start;
    uint64_t end;
    uint64_t categories;
};
struct ckvm_pm_scan_arg {
    uint64_t size;
    uint64_t flags;
    uint64_t start;
    uint64_t end;
    uint64_t walk_end;
    uint64_t vec;
    uint64_t vec_len;
    uint64_t max_pages;
    uint64_t category_inverted;
    uint64_t category_mask;
    uint64_t category_anyof_mask;
    uint64_t return_mask;
};
_Static_assert(sizeof(struct ckvm_page_region) == 24, "page_region is 24 B");
_Static_assert(sizeof(struct ckvm_pm_scan_arg) == 96, "pm_scan_arg is 96 B");
_Static_assert(offsetof(struct ckvm_pm_scan_arg, walk_end) == 32, "pm_scan_arg.walk_end@32");
_Static_assert(offsetof(struct ckvm_pm_scan_arg, return_mask) == 88, "pm_scan_arg.return_mask@88");
#define CKVM_PAGEMAP_SCAN _IOWR('f', 16, struct ckvm_pm_scan_arg)
#define CKVM_PAGE_IS_PRESENT (1ULL << 3)

int64_t ckvm_present_bytes(uint64_t address, uint64_t length) {
    enum { REGIONS = 256 }; /* regions are runs of present pages: a full vector only means another round */
    struct ckvm_page_region regions[REGIONS];
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t start = address & ~(page - 1);
    uint64_t end = (address + length + page - 1) & ~(page - 1);
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int64_t present = 0;
    while (start < end) {
        struct ckvm_pm_scan_arg arg = {
            .size = sizeof(arg), .start = start, .end = end, .vec = (uint64_t)(uintptr_t)regions,
            .vec_len = REGIONS, .category_mask = CKVM_PAGE_IS_PRESENT, .return_mask = CKVM_PAGE_IS_PRESENT,
        };
        int found = ioctl(fd, CKVM_PAGEMAP_SCAN, &arg);
        if (found < 0) {
            int error = errno;
            close(fd);
            return -error;
        }
        for (int i = 0; i < found; i++)
            present += (int64_t)(regions[i].end - regions[i].start);
        if (arg.walk_end <= start)
            break; /* no progress: the kernel walked nothing more */
        start = arg.walk_end;
    }
    close(fd);
    return present;
}

int ckvm_close(int fd) { CKVM_RETURN(close(fd)); }

long ckvm_page_size(void) { return sysconf(_SC_PAGESIZE); }

/* ---- vCPU helpers ------------------------------------------------------------------------------------- */
int ckvm_create_vcpu(int vm_fd, unsigned long vcpu_id) { CKVM_RETURN(ioctl(vm_fd, KVM_CREATE_VCPU, vcpu_id)); }

int ckvm_get_vcpu_mmap_size(int kvm_fd) { CKVM_RETURN(ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0)); }

int ckvm_get_regs(int vcpu_fd, struct kvm_regs *regs) { CKVM_RETURN(ioctl(vcpu_fd, KVM_GET_REGS, regs)); }

int ckvm_set_regs(int vcpu_fd, const struct kvm_regs *regs) { CKVM_RETURN(ioctl(vcpu_fd, KVM_SET_REGS, regs)); }

int ckvm_get_sregs(int vcpu_fd, struct kvm_sregs *sregs) { CKVM_RETURN(ioctl(vcpu_fd, KVM_GET_SREGS, sregs)); }

int ckvm_set_sregs(int vcpu_fd, const struct kvm_sregs *sregs) { CKVM_RETURN(ioctl(vcpu_fd, KVM_SET_SREGS, sregs)); }

int ckvm_set_supported_cpuid(int kvm_fd, int vcpu_fd) {
    enum { MAX_ENTRIES = 256 };
    size_t bytes = sizeof(struct kvm_cpuid2) + MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = calloc(1, bytes);
    if (!cpuid)
        return -ENOMEM;
    cpuid->nent = MAX_ENTRIES;
    int result = ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid);
    if (result >= 0)
        result = ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid);
    int saved = errno;
    free(cpuid);
    return result < 0 ? -saved : result;
}

int ckvm_run(int vcpu_fd) { CKVM_RETURN(ioctl(vcpu_fd, KVM_RUN, 0)); }

/* ---- kvm_run accessors ------------------------------------------------------------------------------- */
#define RUN(run) ((const struct kvm_run *)(run))
uint32_t ckvm_run_exit_reason(const void *run) { return RUN(run)->exit_reason; }
uint8_t ckvm_run_io_direction(const void *run) { return RUN(run)->io.direction; }
uint8_t ckvm_run_io_size(const void *run) { return RUN(run)->io.size; }
uint16_t ckvm_run_io_port(const void *run) { return RUN(run)->io.port; }
uint32_t ckvm_run_io_count(const void *run) { return RUN(run)->io.count; }
uint64_t ckvm_run_io_data_offset(const void *run) { return RUN(run)->io.data_offset; }
uint64_t ckvm_run_mmio_phys_addr(const void *run) { return RUN(run)->mmio.phys_addr; }
uint32_t ckvm_run_mmio_len(const void *run) { return RUN(run)->mmio.len; }
uint8_t ckvm_run_mmio_is_write(const void *run) { return RUN(run)->mmio.is_write; }
uint64_t ckvm_run_fail_entry_reason(const void *run) { return RUN(run)->fail_entry.hardware_entry_failure_reason; }
uint32_t ckvm_run_internal_suberror(const void *run) { return RUN(run)->internal.suberror; }

struct ckvm_memory_fault ckvm_run_memory_fault(const void *run) {
    struct ckvm_memory_fault fault;
    memcpy(&fault, (const char *)run + offsetof(struct kvm_run, io), sizeof fault);
    return fault;
}
