#ifndef CKVM_H
#define CKVM_H
/* KVM uapi subset for gmemctl (filled in by the real-kernel work). */
#include <stdint.h>
#endif
