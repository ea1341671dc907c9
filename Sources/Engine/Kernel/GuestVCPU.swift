import CKVM
import GmemCore

/// One vCPU of a VM made through `KVMKernel`: its fd, its `kvm_run` mapping, and long-mode entry.
/// Long mode is entered directly through `KVM_SET_SREGS` (CR0.PG|PE, CR4.PAE, EFER.LME|LMA, a 64-bit CS),
/// so no real-mode trampoline is needed. The vCPU lives as long as its VM; closing the fd only drops ours.
final class GuestVCPU {
    let fd: Int32
    private let kernel: KVMKernel
    private let runAddress: UInt64
    private let runSize: UInt64
    private let run: UnsafeRawPointer

    init(kernel: KVMKernel, vm: Int32, id: UInt) throws(GuestRunError) {
        self.kernel = kernel
        let fd = ckvm_create_vcpu(vm, id)
        guard fd >= 0 else {
            throw .kernel(
                KernelError(
                    call: "KVM_CREATE_VCPU", arguments: "vm fd \(vm), id \(id)", errno: Errno(negatedReturn: fd)))
        }
        do throws(KernelError) {
            let size = ckvm_get_vcpu_mmap_size(kernel.systemFd)
            guard size > 0 else {
                throw KernelError(
                    call: "KVM_GET_VCPU_MMAP_SIZE", arguments: kernel.devicePath, errno: Errno(negatedReturn: size))
            }
            // The guest's CPUID must advertise long mode before EFER.LME is accepted.
            let cpuid = ckvm_set_supported_cpuid(kernel.systemFd, fd)
            guard cpuid >= 0 else {
                throw KernelError(
                    call: "KVM_SET_CPUID2", arguments: "vcpu fd \(fd)", errno: Errno(negatedReturn: cpuid))
            }
            self.runSize = UInt64(size)
            let address = try kernel.mmap(fd: fd, length: UInt64(size), offset: 0, shared: true, hugePageSize: nil)
            self.runAddress = address
            guard let run = UnsafeRawPointer(bitPattern: UInt(address)) else {
                throw KernelError(call: "mmap", arguments: "kvm_run of vcpu fd \(fd)", errno: .efault)
            }
            self.run = run
        } catch {
            _ = ckvm_close(fd)
            throw .kernel(error)
        }
        self.fd = fd
    }

    deinit {
        try? kernel.munmap(address: runAddress, length: runSize)
        _ = ckvm_close(fd)
    }

    /// Points the vCPU at 64-bit code at `rip` with paging rooted at `cr3` and the GDT at `gdt`.
    func enterLongMode(rip: UInt64, cr3: UInt64, gdt: UInt64, stack: UInt64) throws(GuestRunError) {
        var sregs = kvm_sregs()
        try call(ckvm_get_sregs(fd, &sregs), "KVM_GET_SREGS")
        var code = kvm_segment()
        code.base = 0
        code.limit = 0xFFFF_FFFF
        code.selector = GuestLongModeImage.codeSelector
        code.type = 0xB  // execute/read, accessed
        code.present = 1
        code.dpl = 0
        code.db = 0
        code.s = 1
        code.l = 1
        code.g = 1
        var data = code
        data.selector = GuestLongModeImage.dataSelector
        data.type = 0x3  // read/write, accessed
        data.db = 1
        data.l = 0
        sregs.cs = code
        sregs.ds = data
        sregs.es = data
        sregs.fs = data
        sregs.gs = data
        sregs.ss = data
        sregs.gdt.base = gdt
        sregs.gdt.limit = 3 * 8 - 1
        sregs.cr3 = cr3
        sregs.cr4 = 1 << 5  // PAE
        sregs.cr0 = (1 << 31) | (1 << 0) | (1 << 4) | (1 << 5)  // PG | PE | ET | NE
        sregs.efer = (1 << 8) | (1 << 10)  // LME | LMA
        try call(
            ckvm_set_sregs(fd, &sregs), "KVM_SET_SREGS",
            "cr0=0x\(String(sregs.cr0, radix: 16)), cr3=0x\(String(cr3, radix: 16)), efer=LME|LMA")

        var regs = kvm_regs()
        regs.rip = rip
        regs.rsp = stack
        regs.rflags = 0x2
        try call(ckvm_set_regs(fd, &regs), "KVM_SET_REGS", "rip=0x\(String(rip, radix: 16))")
    }

    /// The exit of one `KVM_RUN`, decoded from `kvm_run`.
    enum Exit {
        case portOut(port: UInt16, bytes: [UInt8])
        case halt
        case memoryFault(ckvm_memory_fault)
        case other(reason: UInt32, detail: String)
    }

    func runOnce() throws(GuestRunError) -> Exit {
        var result = ckvm_run(fd)
        while result == -Errno.eintr.rawValue { result = ckvm_run(fd) }  // EINTR: a signal arrived, run again
        let reason = ckvm_run_exit_reason(run)
        if result < 0 {
            // A memory-fault exit is reported as -EFAULT/-EHWPOISON with exit_reason 39 (else the reason is stale).
            if (result == -Errno.efault.rawValue || result == -Errno.ehwpoison.rawValue)
                && reason == UInt32(KVM_EXIT_MEMORY_FAULT)
            {
                return .memoryFault(ckvm_run_memory_fault(run))
            }
            throw .kernel(KernelError(call: "KVM_RUN", arguments: "vcpu fd \(fd)", errno: Errno(negatedReturn: result)))
        }
        switch reason {
        case UInt32(KVM_EXIT_IO) where ckvm_run_io_direction(run) == UInt8(KVM_EXIT_IO_OUT):
            let length = Int(ckvm_run_io_size(run)) * Int(ckvm_run_io_count(run))
            let data = run + Int(ckvm_run_io_data_offset(run))
            let bytes = (0..<length).map { data.load(fromByteOffset: $0, as: UInt8.self) }
            return .portOut(port: ckvm_run_io_port(run), bytes: bytes)
        case UInt32(KVM_EXIT_HLT):
            return .halt
        default:
            return .other(reason: reason, detail: detail(of: reason))
        }
    }

    private func detail(of reason: UInt32) -> String {
        switch reason {
        case UInt32(KVM_EXIT_IO):
            return "port 0x\(String(ckvm_run_io_port(run), radix: 16)) in, size \(ckvm_run_io_size(run))"
        case UInt32(KVM_EXIT_MMIO):
            let kind = ckvm_run_mmio_is_write(run) != 0 ? "write" : "read"
            return
                "MMIO \(kind) at GPA 0x\(String(ckvm_run_mmio_phys_addr(run), radix: 16)), \(ckvm_run_mmio_len(run)) bytes (no memslot there, or a gmem-only slot bound with userspace_addr 0 on a shadow-paging host)"
        case UInt32(KVM_EXIT_FAIL_ENTRY):
            return "hardware entry failure reason 0x\(String(ckvm_run_fail_entry_reason(run), radix: 16))"
        case UInt32(KVM_EXIT_INTERNAL_ERROR):
            return "internal error suberror \(ckvm_run_internal_suberror(run))"
        case UInt32(KVM_EXIT_SHUTDOWN):
            return
                "triple fault (page tables or code unreachable? gmem-only slots on shadow-paging hosts need userspace_addr set)"
        default:
            return ""
        }
    }

    /// The current RIP, for error messages (0 if it cannot be read).
    var rip: UInt64 {
        var regs = kvm_regs()
        return ckvm_get_regs(fd, &regs) >= 0 ? regs.rip : 0
    }

    private func call(_ result: Int32, _ name: String, _ arguments: String = "") throws(GuestRunError) {
        guard result < 0 else { return }
        throw .kernel(
            KernelError(
                call: name, arguments: "vcpu fd \(fd)" + (arguments.isEmpty ? "" : ", \(arguments)"),
                errno: Errno(negatedReturn: result)))
    }
}
