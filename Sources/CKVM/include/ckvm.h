#ifndef CKVM_H
#define CKVM_H
/*
 * KVM uapi subset for gmemctl, for every guest_memfd ABI generation (docs/kernels.md), plus thin
 * syscall wrappers. No policy lives here: every wrapper makes one call and returns its result, or -errno on
 * failure, so Swift never needs to read errno.
 *
 * The system <linux/kvm.h> is from Linux 6.1: it provides the old structs (kvm_regs, kvm_sregs, kvm_run);
 * everything newer is defined below under #ifndef guards, with the value the released kernel uses.
 * Unmerged ABIs (2025 POC, 2026 series) get CKVM_-prefixed names because their numbers collide with
 * released ones.
 *
 * Swift imports only literal macros, so every ioctl number (built with _IOW/_IOWR) is also exported as a
 * `static const` named CKVM_IOCTL_*.
 */
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>
#include <linux/ioctl.h>

/* ------------------------------------------------------------------------------------------------------ */
/* Upstream Linux 6.8 .. 6.18                                                                             */
/* ------------------------------------------------------------------------------------------------------ */

/* Capabilities (KVM_CHECK_EXTENSION). 237..246 are listed to make collisions with unmerged ABIs visible. */
#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO 232
#endif
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif
#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY 236
#endif
#ifndef KVM_CAP_X86_APIC_BUS_CYCLES_NS
#define KVM_CAP_X86_APIC_BUS_CYCLES_NS 237
#endif
#ifndef KVM_CAP_X86_GUEST_MODE
#define KVM_CAP_X86_GUEST_MODE 238
#endif
#ifndef KVM_CAP_ARM_WRITABLE_IMP_ID_REGS
#define KVM_CAP_ARM_WRITABLE_IMP_ID_REGS 239
#endif
#ifndef KVM_CAP_ARM_EL2
#define KVM_CAP_ARM_EL2 240
#endif
#ifndef KVM_CAP_ARM_EL2_E2H0
#define KVM_CAP_ARM_EL2_E2H0 241
#endif
#ifndef KVM_CAP_RISCV_MP_STATE_RESET
#define KVM_CAP_RISCV_MP_STATE_RESET 242
#endif
#ifndef KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED
#define KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED 243
#endif
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#define KVM_CAP_GUEST_MEMFD_FLAGS 244
#endif
#ifndef KVM_CAP_ARM_SEA_TO_USER
#define KVM_CAP_ARM_SEA_TO_USER 245
#endif
#ifndef KVM_CAP_S390_USER_OPEREXEC
#define KVM_CAP_S390_USER_OPEREXEC 246
#endif

/* x86 VM types (KVM_CREATE_VM argument). */
#ifndef KVM_X86_DEFAULT_VM
#define KVM_X86_DEFAULT_VM 0
#endif
#ifndef KVM_X86_SW_PROTECTED_VM
#define KVM_X86_SW_PROTECTED_VM 1
#endif
#ifndef KVM_X86_SEV_VM
#define KVM_X86_SEV_VM 2
#endif
#ifndef KVM_X86_SEV_ES_VM
#define KVM_X86_SEV_ES_VM 3
#endif
#ifndef KVM_X86_SNP_VM
#define KVM_X86_SNP_VM 4
#endif
#ifndef KVM_X86_TDX_VM
#define KVM_X86_TDX_VM 5
#endif

/* Memslot flags, attributes, guest_memfd creation flags, exits. */
#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1U << 2)
#endif
#ifndef KVM_MEMORY_ATTRIBUTE_PRIVATE
#define KVM_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)
#endif
#ifndef GUEST_MEMFD_FLAG_MMAP
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)
#endif
#ifndef GUEST_MEMFD_FLAG_INIT_SHARED
#define GUEST_MEMFD_FLAG_INIT_SHARED (1ULL << 1)
#endif
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif
#ifndef KVM_EXIT_TDX
#define KVM_EXIT_TDX 40
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_PRIVATE
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#endif

/* Linux 6.8: struct kvm_userspace_memory_region2 (160 B). The first 32 B equal kvm_userspace_memory_region. */
#ifndef KVM_SET_USER_MEMORY_REGION2
struct kvm_userspace_memory_region2 {
    __u32 slot;
    __u32 flags;
    __u64 guest_phys_addr;
    __u64 memory_size;
    __u64 userspace_addr;
    __u64 guest_memfd_offset;
    __u32 guest_memfd;
    __u32 pad1;
    __u64 pad2[14];
};
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif

/* Linux 6.8: per-VM memory attributes (32 B). */
#ifndef KVM_SET_MEMORY_ATTRIBUTES
struct kvm_memory_attributes {
    __u64 address;
    __u64 size;
    __u64 attributes;
    __u64 flags;
};
#define KVM_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, struct kvm_memory_attributes)
#endif

/* Linux 6.8: guest_memfd creation (64 B). */
#ifndef KVM_CREATE_GUEST_MEMFD
struct kvm_create_guest_memfd {
    __u64 size;
    __u64 flags;
    __u64 reserved[6];
};
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)
#endif

/* Linux 6.11: pre-fault (64 B, vCPU ioctl). */
#ifndef KVM_PRE_FAULT_MEMORY
struct kvm_pre_fault_memory {
    __u64 gpa;
    __u64 size;
    __u64 flags;
    __u64 padding[5];
};
#define KVM_PRE_FAULT_MEMORY _IOWR(KVMIO, 0xd5, struct kvm_pre_fault_memory)
#endif

/* kvm_run.memory_fault (6.8): a union member at kvm_run+32 on x86; the 6.1 header lacks it. */
struct ckvm_memory_fault {
    __u64 flags;
    __u64 gpa;
    __u64 size;
};

/* ------------------------------------------------------------------------------------------------------ */
/* 2025 proof of concept (1G-page RFC v2 + QEMU POC). Unmerged; caps collide with upstream ARM/RISC-V.     */
/* ------------------------------------------------------------------------------------------------------ */
#define CKVM_POC_CAP_GMEM_SHARED_MEM 240   /* == KVM_CAP_ARM_EL2 upstream */
#define CKVM_POC_CAP_GMEM_CONVERSION 241   /* == KVM_CAP_ARM_EL2_E2H0 upstream */
#define CKVM_POC_CAP_GMEM_HUGETLB 242      /* == KVM_CAP_RISCV_MP_STATE_RESET upstream */
#define CKVM_POC_GMEM_FLAG_SUPPORT_SHARED (1ULL << 0)
#define CKVM_POC_GMEM_FLAG_INIT_PRIVATE (1ULL << 1)
#define CKVM_POC_GMEM_FLAG_HUGETLB (1ULL << 2)
/* Hugetlb page size code (log2 of the size) in flag bits 58..63: 2 MiB = 21 << 58, 1 GiB = 30 << 58. */
#define CKVM_POC_GMEM_HUGETLB_FLAG_SHIFT 58
#define CKVM_POC_GMEM_HUGETLB_FLAG_MASK 0x3f
#define CKVM_POC_GMEM_IO 0xAF

struct ckvm_gmem_convert {
    __u64 offset;
    __u64 size;
    __u64 error_offset; /* out, must be 0 on input */
    __u64 reserved[5];
};
#define CKVM_POC_GMEM_CONVERT_SHARED _IOWR(CKVM_POC_GMEM_IO, 0x41, struct ckvm_gmem_convert)
#define CKVM_POC_GMEM_CONVERT_PRIVATE _IOWR(CKVM_POC_GMEM_IO, 0x42, struct ckvm_gmem_convert)

/* ------------------------------------------------------------------------------------------------------ */
/* 2026 in-place conversion series. Cap numbers drifted between versions; v8 is the reference.            */
/* ------------------------------------------------------------------------------------------------------ */
#define CKVM_V8_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES 250
#define CKVM_V6_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES 249 /* v6/v7; == S390_HPAGE_2G in v8's base */
#define CKVM_V4_CAP_MEMORY_ATTRIBUTES2 248
#define CKVM_V4_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES 249
#define CKVM_RFC1_CAP_MEMORY_ATTRIBUTES2 245          /* == KVM_CAP_ARM_SEA_TO_USER upstream */
#define CKVM_RFC1_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES 246 /* == KVM_CAP_S390_USER_OPEREXEC upstream */
/* v4 content modes (dropped in v6). */
#define CKVM_V4_SET_MEMORY_ATTRIBUTES2_MODE_UNSPECIFIED 0
#define CKVM_V4_SET_MEMORY_ATTRIBUTES2_MODE_ZERO (1ULL << 0)
#define CKVM_V4_SET_MEMORY_ATTRIBUTES2_MODE_PRESERVE (1ULL << 1)

struct ckvm_memory_attributes2 {
    union {
        __u64 address; /* VM-fd form (RFC v2..v4) */
        __u64 offset;  /* guest_memfd form (v6+) */
    };
    __u64 size;
    __u64 attributes;
    __u64 flags;
    __u64 error_offset; /* out, written only on failure */
    __u64 reserved[11];
};
/* Same nr as KVM_SET_MEMORY_ATTRIBUTES, different size and direction. */
#define CKVM_SET_MEMORY_ATTRIBUTES2 _IOWR(KVMIO, 0xd2, struct ckvm_memory_attributes2)

/* ------------------------------------------------------------------------------------------------------ */
/* ioctl numbers Swift can see                                                                            */
/* ------------------------------------------------------------------------------------------------------ */
static const unsigned long CKVM_IOCTL_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_IOCTL_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_IOCTL_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_IOCTL_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_IOCTL_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CKVM_IOCTL_RUN = KVM_RUN;
static const unsigned long CKVM_IOCTL_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_IOCTL_SET_USER_MEMORY_REGION2 = KVM_SET_USER_MEMORY_REGION2;
static const unsigned long CKVM_IOCTL_SET_MEMORY_ATTRIBUTES = KVM_SET_MEMORY_ATTRIBUTES;
static const unsigned long CKVM_IOCTL_CREATE_GUEST_MEMFD = KVM_CREATE_GUEST_MEMFD;
static const unsigned long CKVM_IOCTL_PRE_FAULT_MEMORY = KVM_PRE_FAULT_MEMORY;
static const unsigned long CKVM_IOCTL_POC_GMEM_CONVERT_SHARED = CKVM_POC_GMEM_CONVERT_SHARED;
static const unsigned long CKVM_IOCTL_POC_GMEM_CONVERT_PRIVATE = CKVM_POC_GMEM_CONVERT_PRIVATE;
static const unsigned long CKVM_IOCTL_SET_MEMORY_ATTRIBUTES2 = CKVM_SET_MEMORY_ATTRIBUTES2;

/* ------------------------------------------------------------------------------------------------------ */
/* Wrappers. Each returns the call's result (>= 0) or -errno.                                             */
/* ------------------------------------------------------------------------------------------------------ */
#define CKVM_DEV_KVM_PATH "/dev/kvm"

/* open(path, O_RDWR | O_CLOEXEC); path NULL means /dev/kvm. */
int ckvm_open_kvm(const char *path);
long ckvm_ioctl_int(int fd, unsigned long request, unsigned long arg);
long ckvm_ioctl_ptr(int fd, unsigned long request, void *arg);
int ckvm_create_vm(int kvm_fd, unsigned long type);
long ckvm_check_extension(int fd, unsigned long capability);
int ckvm_create_guest_memfd(int vm_fd, uint64_t size, uint64_t flags);
int ckvm_set_region2(int vm_fd, uint32_t slot, uint32_t flags, uint64_t guest_phys_addr, uint64_t memory_size,
                     uint64_t userspace_addr, uint64_t guest_memfd_offset, uint32_t guest_memfd);
int ckvm_set_memory_attributes(int vm_fd, uint64_t address, uint64_t size, uint64_t attributes, uint64_t flags);
/* 2025 POC; *error_offset receives what the kernel wrote back (0 if nothing). */
int ckvm_gmem_convert(int gmem_fd, uint64_t offset, uint64_t size, int to_private, uint64_t *error_offset);
/* 2026 series, on a guest_memfd; *error_offset as above. */
int ckvm_set_memory_attributes2(int gmem_fd, uint64_t offset, uint64_t size, uint64_t attributes, uint64_t flags,
                                uint64_t *error_offset);
/* memfd_create(name, flags | MFD_HUGETLB + size code when huge_page_size != 0); -EINVAL for a size that is
 * not a power of two. */
int ckvm_memfd_create(const char *name, unsigned int flags, uint64_t huge_page_size);
int ckvm_ftruncate(int fd, uint64_t size);
/* Returns the mapped address (user addresses are below 2^63, so never negative) or -errno. */
int64_t ckvm_mmap(uint64_t address, uint64_t length, int prot, int flags, int fd, uint64_t offset);
int ckvm_munmap(uint64_t address, uint64_t length);
int ckvm_fallocate(int fd, int mode, uint64_t offset, uint64_t length);
int ckvm_madvise(uint64_t address, uint64_t length, int advice);
/* mincore over [address, address+length): number of resident pages, or -errno. */
int64_t ckvm_mincore_count(uint64_t address, uint64_t length);
/* Bytes of [address, address+length) present in this process's page tables, by the PAGEMAP_SCAN ioctl on
 * /proc/self/pagemap (Linux 6.7+): the kernel skips unpopulated page tables, so the cost grows with what is
 * resident, not with the length (mincore looks up every page). -ENOTTY/-EINVAL where the ioctl is missing. */
int64_t ckvm_present_bytes(uint64_t address, uint64_t length);
int ckvm_close(int fd);
long ckvm_page_size(void);

/* Fault-safe memory access without signal handlers: the range is faulted in first with
 * madvise(MADV_POPULATE_READ/WRITE), then copied. Returns CKVM_PROBE_OK, CKVM_PROBE_SIGBUS where a touch would
 * raise SIGBUS (nothing is copied), CKVM_PROBE_SIGSEGV where nothing accessible is mapped, or -EOPNOTSUPP on
 * kernels without the advice (before 5.14). */
enum ckvm_probe_result {
    CKVM_PROBE_OK = 0,
    CKVM_PROBE_SIGBUS = 1,
    CKVM_PROBE_SIGSEGV = 2,
};
int ckvm_probe_read(uint64_t address, void *buffer, size_t length);
int ckvm_probe_write(uint64_t address, const void *buffer, size_t length);
/* The first address of the first page that failed in this thread's last failed probe. */
uint64_t ckvm_probe_last_fault_address(void);

/* vCPU helpers. */
int ckvm_create_vcpu(int vm_fd, unsigned long vcpu_id);
int ckvm_get_vcpu_mmap_size(int kvm_fd);
int ckvm_get_regs(int vcpu_fd, struct kvm_regs *regs);
int ckvm_set_regs(int vcpu_fd, const struct kvm_regs *regs);
int ckvm_get_sregs(int vcpu_fd, struct kvm_sregs *sregs);
int ckvm_set_sregs(int vcpu_fd, const struct kvm_sregs *sregs);
/* KVM_GET_SUPPORTED_CPUID on /dev/kvm then KVM_SET_CPUID2 on the vCPU (lets the guest use long mode). */
int ckvm_set_supported_cpuid(int kvm_fd, int vcpu_fd);
int ckvm_run(int vcpu_fd);

/* kvm_run accessors (run = the vCPU's mmap). */
uint32_t ckvm_run_exit_reason(const void *run);
uint8_t ckvm_run_io_direction(const void *run);
uint8_t ckvm_run_io_size(const void *run);
uint16_t ckvm_run_io_port(const void *run);
uint32_t ckvm_run_io_count(const void *run);
uint64_t ckvm_run_io_data_offset(const void *run);
uint64_t ckvm_run_mmio_phys_addr(const void *run);
uint32_t ckvm_run_mmio_len(const void *run);
uint8_t ckvm_run_mmio_is_write(const void *run);
uint64_t ckvm_run_fail_entry_reason(const void *run);
uint32_t ckvm_run_internal_suberror(const void *run);
struct ckvm_memory_fault ckvm_run_memory_fault(const void *run);

#endif
