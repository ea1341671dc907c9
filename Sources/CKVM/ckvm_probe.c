/* Fault-safe host memory access without signal handlers. A private guest_memfd page (or one beyond a file's
 * EOF) raises SIGBUS on touch, and gmemctl must report that rather than crash. Instead of catching the signal
 * (a process-wide handler that every other library in the process would have to live with), the kernel is
 * asked to fault the range in first: madvise(MADV_POPULATE_READ/WRITE) (Linux 5.14+) runs the same fault path
 * as a touch and reports what the touch would have raised:
 *   EFAULT, EHWPOISON  a touch would raise SIGBUS (VM_FAULT_SIGBUS: private guest_memfd page, beyond EOF)
 *   ENOMEM             nothing is mapped there (a touch would raise SIGSEGV)
 *   EINVAL             the mapping does not allow the access (PROT_NONE, a write to a read-only mapping) or
 *                      cannot be populated (VM_IO/VM_PFNMAP): reported as SIGSEGV, the probe cannot vouch for it
 * Once populated the copy does not fault, unless the mapping changes between the madvise and the copy (another
 * thread truncating, converting or unmapping it): gmemctl serializes its host calls, so none of its own do.
 * Kernels without the advice get -EOPNOTSUPP: gmemctl needs guest_memfd (6.8+) anyway, and a clear refusal
 * is better than a handler installed behind the back of the process. */
#define _GNU_SOURCE
#include "ckvm.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
/* The values are the uapi's (asm-generic/mman-common.h); the fallbacks above must match them. */
_Static_assert(MADV_POPULATE_READ == 22, "MADV_POPULATE_READ is 22");
_Static_assert(MADV_POPULATE_WRITE == 23, "MADV_POPULATE_WRITE is 23");
_Static_assert(sizeof(uintptr_t) == sizeof(uint64_t), "host addresses are 64-bit");
/* The Swift side matches on these values. */
_Static_assert(CKVM_PROBE_OK == 0 && CKVM_PROBE_SIGBUS == 1 && CKVM_PROBE_SIGSEGV == 2, "probe results");

static pthread_once_t support_once = PTHREAD_ONCE_INIT;
static int populate_supported;

static __thread uint64_t probe_fault_address;

static void check_support(void) {
    /* A zero-length madvise validates the advice and does nothing else: 0 where the kernel knows it. */
    populate_supported = madvise(NULL, 0, MADV_POPULATE_READ) == 0 && madvise(NULL, 0, MADV_POPULATE_WRITE) == 0;
}

static int page_size(void) {
    long size = sysconf(_SC_PAGESIZE);
    return size > 0 ? (int)size : 4096;
}

/* madvise on whole pages, retried when interrupted: 0 or the errno. */
static int populate(uintptr_t start, uintptr_t end, int advice) {
    while (madvise((void *)start, end - start, advice) < 0) {
        if (errno != EINTR)
            return errno;
    }
    return 0;
}

static int classify(int error) {
    switch (error) {
    case EFAULT:
    case EHWPOISON:
        return CKVM_PROBE_SIGBUS;
    case ENOMEM:
    case EINVAL:
        return CKVM_PROBE_SIGSEGV;
    default:
        return -error;
    }
}

/* Faults [address, address+length) in for `advice`: CKVM_PROBE_OK, a fault result with the thread's fault
 * address set to the first byte of the first page that failed, or -errno. */
static int prepare(uint64_t address, size_t length, int advice) {
    if (length == 0)
        return CKVM_PROBE_OK;
    pthread_once(&support_once, check_support);
    if (!populate_supported)
        return -EOPNOTSUPP;
    uintptr_t page = (uintptr_t)page_size();
    uintptr_t start = (uintptr_t)address & ~(page - 1);
    uintptr_t last = (uintptr_t)address + length - 1;
    if (last < (uintptr_t)address || last > UINTPTR_MAX - page) {
        /* The range wraps past the top of the address space: nothing can be mapped at its end. */
        probe_fault_address = address;
        return CKVM_PROBE_SIGSEGV;
    }
    uintptr_t end = (last & ~(page - 1)) + page;
    int error = populate(start, end, advice);
    if (error == 0)
        return CKVM_PROBE_OK;
    /* Only after a failure: page by page (bounded by the request) to name the first page that fails, and
     * classify by that page's error (the whole range's first error is the same page's, barring a race). */
    for (uintptr_t at = start; at < end; at += page) {
        int page_error = populate(at, at + page, advice);
        if (page_error != 0) {
            probe_fault_address = at < (uintptr_t)address ? address : (uint64_t)at;
            return classify(page_error);
        }
    }
    /* Every page populated on the second look: the mapping changed in between. Report the first failure. */
    probe_fault_address = address;
    return classify(error);
}

int ckvm_probe_read(uint64_t address, void *buffer, size_t length) {
    int result = prepare(address, length, MADV_POPULATE_READ);
    if (result == CKVM_PROBE_OK && length > 0)
        memcpy(buffer, (const void *)(uintptr_t)address, length);
    return result;
}

int ckvm_probe_write(uint64_t address, const void *buffer, size_t length) {
    int result = prepare(address, length, MADV_POPULATE_WRITE);
    if (result == CKVM_PROBE_OK && length > 0)
        memcpy((void *)(uintptr_t)address, buffer, length);
    return result;
}

uint64_t ckvm_probe_last_fault_address(void) { return probe_fault_address; }
