/* Fault-safe host memory access: a private guest_memfd page (or one beyond EOF) raises SIGBUS on touch, and
 * gmemctl must report that rather than crash. One SIGBUS/SIGSEGV handler is installed once; it jumps back
 * into the probe that faulted (thread-local jump buffer) and forwards every other fault to the handler that
 * was installed before it. */
#define _GNU_SOURCE
#include "ckvm.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

static struct sigaction previous_sigbus;
static struct sigaction previous_sigsegv;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_error;

static __thread sigjmp_buf probe_jump;
static __thread volatile sig_atomic_t probe_active;
static __thread uint64_t probe_fault_address;

static void forward_to_previous(int signo, siginfo_t *info, void *context) {
    struct sigaction *previous = signo == SIGBUS ? &previous_sigbus : &previous_sigsegv;
    if (previous->sa_flags & SA_SIGINFO) {
        previous->sa_sigaction(signo, info, context);
        return;
    }
    if (previous->sa_handler == SIG_DFL || previous->sa_handler == SIG_IGN) {
        /* Restore the default and return: the faulting instruction runs again and the default action
         * (a core dump) happens with the right signal. Ignoring a synchronous fault would loop forever. */
        signal(signo, SIG_DFL);
        return;
    }
    previous->sa_handler(signo);
}

static void fault_handler(int signo, siginfo_t *info, void *context) {
    if (probe_active) {
        probe_active = 0;
        probe_fault_address = (uint64_t)(uintptr_t)info->si_addr;
        siglongjmp(probe_jump, signo);
    }
    forward_to_previous(signo, info, context);
}

static void install_handlers(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = fault_handler;
    /* NODEFER: the handler leaves by siglongjmp, so the signal must not stay blocked (no mask save needed). */
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &previous_sigbus) < 0 || sigaction(SIGSEGV, &action, &previous_sigsegv) < 0)
        install_error = errno;
}

static int ensure_installed(void) {
    pthread_once(&install_once, install_handlers);
    return install_error ? -install_error : 0;
}

/* volatile byte loops: the compiler must not merge, reorder or elide the accesses that may fault. */
static int probe_copy(volatile uint8_t *destination, const volatile uint8_t *source, size_t length) {
    int setup = ensure_installed();
    if (setup < 0)
        return setup;
    int signo = sigsetjmp(probe_jump, 0);
    if (signo != 0)
        return signo == SIGBUS ? CKVM_PROBE_SIGBUS : CKVM_PROBE_SIGSEGV;
    probe_active = 1;
    for (size_t i = 0; i < length; i++)
        destination[i] = source[i];
    probe_active = 0;
    return CKVM_PROBE_OK;
}

int ckvm_probe_read(uint64_t address, void *buffer, size_t length) {
    return probe_copy((volatile uint8_t *)buffer, (const volatile uint8_t *)(uintptr_t)address, length);
}

int ckvm_probe_write(uint64_t address, const void *buffer, size_t length) {
    return probe_copy((volatile uint8_t *)(uintptr_t)address, (const volatile uint8_t *)buffer, length);
}

uint64_t ckvm_probe_last_fault_address(void) { return probe_fault_address; }
