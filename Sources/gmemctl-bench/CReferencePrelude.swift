/// What the C reference programs of the benchmarks share: the headers and the KVM uapi they define themselves
/// (the build machine may lack current kernel headers), timing and errors, and the guest both build and tear
/// down exactly as gmemctl does.
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

            static uint64_t now_ns(void) {
                struct timespec t;
                clock_gettime(CLOCK_MONOTONIC, &t);
                return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
            }

            /* The program's name in error messages; main sets it first. */
            static const char *program = "reference";

            static void die(const char *what) {
                fprintf(stderr, "%s: %s: %s\n", program, what, strerror(errno));
                exit(1);
            }

            /* Both references are run as `NAME SIZE_BYTES REPETITIONS`: names the program for die(), reads the
             * arguments (exit 64 on bad usage) and returns /dev/kvm opened. */
            static int start(int argc, char **argv, const char *name, uint64_t *size, int *repetitions) {
                program = name;
                if (argc != 3) { fprintf(stderr, "usage: %s SIZE_BYTES REPETITIONS\n", name); exit(64); }
                *size = strtoull(argv[1], NULL, 0);
                *repetitions = atoi(argv[2]);
                int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
                if (kvm < 0) die("open /dev/kvm");
                return kvm;
            }

            /* An empty in-place shared guest as gmemctl apply builds it: a VM, an MMAP|INIT_SHARED guest_memfd, its
             * host mapping, and memslot 0 at 4 GiB over it. */
            struct guest {
                int vm, gmem;
                void *host;
                struct kvm_userspace_memory_region2 region;
            };

            static struct guest build_guest(int kvm, uint64_t size) {
                struct guest g;
                g.vm = ioctl(kvm, KVM_CREATE_VM, 0);
                if (g.vm < 0) die("KVM_CREATE_VM");
                struct kvm_create_guest_memfd create = { .size = size, .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED };
                g.gmem = ioctl(g.vm, KVM_CREATE_GUEST_MEMFD, &create);
                if (g.gmem < 0) die("KVM_CREATE_GUEST_MEMFD");
                g.host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g.gmem, 0);
                if (g.host == MAP_FAILED) die("mmap");
                struct kvm_userspace_memory_region2 region = {
                    .slot = 0, .flags = KVM_MEM_GUEST_MEMFD, .guest_phys_addr = 0x100000000ull, .memory_size = size,
                    .userspace_addr = (uint64_t)(uintptr_t)g.host, .guest_memfd_offset = 0, .guest_memfd = (uint32_t)g.gmem,
                };
                g.region = region;
                if (ioctl(g.vm, KVM_SET_USER_MEMORY_REGION2, &g.region) < 0) die("KVM_SET_USER_MEMORY_REGION2");
                return g;
            }

            /* Teardown as gmemctl destroy does it: delete the memslot, unmap, close the guest_memfd, close the VM. */
            static void destroy_guest(struct guest *g, uint64_t size) {
                g->region.memory_size = 0;
                g->region.userspace_addr = 0;
                if (ioctl(g->vm, KVM_SET_USER_MEMORY_REGION2, &g->region) < 0) die("delete memslot");
                if (munmap(g->host, size) < 0) die("munmap");
                if (close(g->gmem) < 0) die("close gmem");
                if (close(g->vm) < 0) die("close vm");
            }

        """#
}
